"""The spec's grammar for repository names, tags and digests."""

from __future__ import annotations

import re

from .exceptions import DigestInvalid, NameInvalid, TagInvalid

# distribution-spec: <name> components joined by "/", each [a-z0-9]+ with ".", "_", "__"
# or runs of "-" between alphanumerics.
NAME_PATTERN = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG_PATTERN = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_PATTERN = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
# Algorithms we can verify, with the exact encoding each requires.
DIGEST_ALGORITHMS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
# With a registry host name in front, a reference stays under 256 characters.
NAME_MAX_LENGTH = 255


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise NameInvalid."""
    if len(name) > NAME_MAX_LENGTH:
        raise NameInvalid(f"repository name is longer than {NAME_MAX_LENGTH} characters")
    if not NAME_PATTERN.fullmatch(name):
        raise NameInvalid(
            "invalid repository name: lowercase letters, digits and separators (. _ __ -) "
            "in path components joined by /",
            detail={"name": name},
        )
    return name


def check_tag(tag: str) -> str:
    """Return ``tag`` if it matches the spec's tag pattern, else raise TagInvalid."""
    if not TAG_PATTERN.fullmatch(tag):
        raise TagInvalid(
            "invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", detail={"tag": tag}
        )
    return tag


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is well formed and of an algorithm we verify."""
    if not DIGEST_PATTERN.fullmatch(digest):
        raise DigestInvalid("malformed digest", detail={"digest": digest})
    algorithm, encoded = digest.split(":", 1)
    encoding = DIGEST_ALGORITHMS.get(algorithm)
    if encoding is None:
        raise DigestInvalid(
            f"unsupported digest algorithm {algorithm!r}", detail={"digest": digest}
        )
    if not encoding.fullmatch(encoded):
        raise DigestInvalid(f"malformed {algorithm} digest", detail={"digest": digest})
    return digest


def is_digest(reference: str) -> bool:
    """True when a manifest reference is a digest rather than a tag."""
    return ":" in reference


def reference_name(repository_name: str, reference: str) -> str:
    """A manifest as people write it: ``name:tag`` or ``name@digest``."""
    return f"{repository_name}{'@' if is_digest(reference) else ':'}{reference}"
