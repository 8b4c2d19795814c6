"""Exceptions raised by blob stores."""


class StorageError(Exception):
    """A blob store could not do what was asked."""


class BlobMissing(StorageError):
    """No blob is stored under this digest."""


class UploadMissing(StorageError):
    """No upload data is stored under this session id."""


class DigestMismatch(StorageError):
    """The uploaded bytes do not hash to the digest they were to be committed under."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"content hashes to {actual}, not {expected}")
        self.expected = expected
        self.actual = actual
