"""A small OCI distribution client for replication: requests-based and streaming.

Blobs travel as iterators of chunks from one response into the next request's
body; nothing is held whole in memory or written to a temporary file.
Authentication follows docker: a 401 with a Bearer challenge is answered by
fetching a token from the realm (with Basic credentials when there are any),
a Basic challenge by sending the credentials.  Every call has a timeout.

Errors: ``TransientError`` (connection errors, timeouts, a body cut off, 5xx: worth
retrying), ``AuthError`` (credentials refused), ``TLSError`` (a certificate refused: retrying
cannot help), ``RemoteError`` for any other refusal.  No ``requests`` exception escapes, not
even from a blob's chunks read after the call returned.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3

CHUNK = 1 << 20
TIMEOUT = (5.0, 60.0)  # connect, read
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class ReplicationError(Exception):
    """Something a replication task reports as its error text."""


class TransientError(ReplicationError):
    """A failure worth retrying: connection trouble, a timeout, a 5xx."""


class AuthError(ReplicationError):
    """The remote registry refused the credentials."""


class TLSError(ReplicationError):
    """The TLS handshake failed: the certificate was not trusted, or TLS is not spoken."""


class RemoteError(ReplicationError):
    """The remote registry answered with an error."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DeleteUnsupported(RemoteError):
    """The remote registry does not delete manifests (or tags) as asked: 405, UNSUPPORTED."""


class _Sized:
    """A chunk iterator with a known length, so requests sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def _tls_reason(error: BaseException) -> str:
    """The innermost ssl error's words ("certificate verify failed: self-signed certificate")."""
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {item.verify_message}"
        if isinstance(item, ssl.SSLError):
            return str(item.reason or item).lower().replace("_", " ")
        stack.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
        stack.extend(item.args)
    return str(error)


def _failure(
    method: str, url: str, base: str, error: requests.RequestException
) -> ReplicationError:
    """The ReplicationError for an exception of ``requests``: TLS, transient, or neither."""
    if isinstance(error, requests.exceptions.SSLError):  # a ConnectionError too: first
        return TLSError(f"{method} {url}: TLS failed: {_tls_reason(error)} ({base})")
    if isinstance(error, requests.Timeout):
        return TransientError(f"{method} {url}: timed out")
    if isinstance(error, requests.ConnectionError):
        reason = "connection refused" if "refused" in str(error) else "connection failed"
        return TransientError(f"{method} {url}: {reason} ({base})")
    if isinstance(error, ValueError):  # InvalidURL, MissingSchema, InvalidHeader...: ours
        return ReplicationError(f"{method} {url}: {error}")
    # ChunkedEncodingError, ContentDecodingError...: the body broke off on the way.
    return TransientError(f"{method} {url}: the response broke off ({type(error).__name__})")


def _guarded(response: requests.Response, base: str) -> Iterator[bytes]:
    """A streamed body's chunks; a read that fails is a TransientError (the stream broke:
    the whole step may be tried again), never an exception of ``requests``."""
    method, url = response.request.method or "GET", response.url
    try:
        yield from response.iter_content(CHUNK)
    except requests.RequestException as error:
        if isinstance(error, requests.exceptions.SSLError):  # mid-stream: not a certificate
            raise TransientError(f"{method} {url}: TLS failed mid-stream ({base})") from None
        raise _failure(method, url, base, error) from None
    except urllib3.exceptions.HTTPError as error:  # what requests did not wrap
        raise TransientError(f"{method} {url}: the response broke off ({error})") from None


def _describe(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        text = response.text[:200]
    return f"{response.request.method} {response.url} answered {response.status_code}" + (
        f" ({text})" if text else ""
    )


class RegistryClient:
    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        verify_tls: bool = True,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        if "://" not in url:
            url = "https://" + url
        self.base = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        # Given with every call: a Session's own ``verify`` loses to REQUESTS_CA_BUNDLE and
        # CURL_CA_BUNDLE in requests' merge_environment_settings, an argument does not.
        self.verify = verify_tls
        self.session = requests.Session()
        self._tokens: dict[str, str] = {}
        self._basic = False

    # --- plumbing ----------------------------------------------------------------------------

    def _headers(self, scope: str, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        token = self._tokens.get(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str = "",
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """One call; a 401 is answered once with a token or credentials and the call repeated.

        A streamed body cannot be sent twice: callers make an authenticated call on the same
        scope first (the upload POST before its PUT).
        """
        url = path if path.startswith("http") else self.base + path
        for attempt in range(2):
            auth = (self.username, self.password) if self._basic and self.username else None
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=self._headers(scope, headers),
                    auth=auth,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=True,
                    **kwargs,
                )
            except requests.RequestException as error:
                # A body read whole here (not streamed) that broke off is a
                # ChunkedEncodingError: transient like a refused connection.
                raise _failure(method, url, self.base, error) from None
            body = kwargs.get("data")
            repeatable = body is None or isinstance(body, bytes)
            if response.status_code == 401 and attempt == 0 and repeatable:
                self._authenticate(response, scope)
                response.close()
                continue
            break
        if response.status_code in ok:
            return response
        message = _describe(response)
        response.close()
        if response.status_code == 401:
            raise AuthError(message)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(message)
        raise RemoteError(message, response.status_code)

    def _authenticate(self, response: requests.Response, scope: str) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if not self.username:
                raise AuthError(f"{self.base} asks for credentials and the endpoint has none")
            self._basic = True
            return
        if kind != "bearer":
            raise AuthError(f"{self.base} answered 401 without a usable challenge")
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for item in (scope or params.get("scope", "")).split(" "):
            if item:
                query.append(("scope", item))
        auth = (self.username, self.password) if self.username else None
        try:
            answer = self.session.get(
                params.get("realm", ""),
                params=query,
                auth=auth,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as error:
            raise _failure("GET", params.get("realm", ""), self.base, error) from None
        if answer.status_code in (401, 403):
            raise AuthError(f"{self.base}: the token service refused the credentials")
        if answer.status_code != 200:
            raise TransientError(_describe(answer))
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError(f"{self.base}: the token service answered without a token")
        self._tokens[scope] = token

    def _paged(self, path: str, key: str, scope: str) -> list[str]:
        items: list[str] = []
        url: str | None = path
        while url:
            response = self.request("GET", url, scope=scope)
            items.extend(response.json().get(key) or [])
            link = response.headers.get("Link", "")
            match = re.search(r"<([^>]+)>", link)
            url = urljoin(self.base + "/", match.group(1)) if match else None
        return items

    # --- the API -----------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers /v2/ and accepts the credentials (AuthError if not)."""
        self.request("GET", "/v2/").close()
        if self.username:  # an anonymous /v2/ says nothing about the credentials: get a token
            self.request("GET", "/v2/_catalog?n=1", scope="registry:catalog:*", ok=(200, 403))

    def catalog(self) -> list[str]:
        return self._paged("/v2/_catalog?n=1000", "repositories", "registry:catalog:*")

    def tags(self, repository: str) -> list[str]:
        try:
            return self._paged(
                f"/v2/{repository}/tags/list?n=1000", "tags", f"repository:{repository}:pull"
            )
        except RemoteError as error:
            if error.status == 404:
                return []
            raise

    def manifest_get(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest's exact bytes and media type."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    def referrers(self, repository: str, digest: str) -> list[str]:
        """Digests of the manifests whose subject is ``digest``; none where the API is missing."""
        try:
            response = self.request(
                "GET",
                f"/v2/{repository}/referrers/{digest}",
                scope=f"repository:{repository}:pull",
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            )
        except RemoteError:  # 404 or 405 from a registry without the referrers API
            return []
        try:
            manifests = response.json().get("manifests") or []
        except (ValueError, AttributeError):
            return []
        return [m["digest"] for m in manifests if isinstance(m, dict) and "digest" in m]

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest ``reference`` names, or None if the registry does not have it."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull,push",
            headers={"Accept": MANIFEST_ACCEPT},
            ok=(200, 404),
        )
        if response.status_code == 404:
            return None
        return response.headers.get("Docker-Content-Digest")

    def manifest_put(self, repository: str, reference: str, body: bytes, media_type: str) -> None:
        self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            data=body,
            ok=(201, 200),
        ).close()

    def manifest_delete(self, repository: str, reference: str) -> bool:
        """Delete a manifest by digest, or a tag; False when the registry does not have it.

        DeleteUnsupported when the registry refuses deletes (405, or UNSUPPORTED: Docker's
        registry without ``REGISTRY_STORAGE_DELETE_ENABLED``, or a tag it cannot delete alone).
        """
        try:
            response = self.request(
                "DELETE",
                f"/v2/{repository}/manifests/{reference}",
                scope=f"repository:{repository}:delete",
                ok=(200, 202, 204, 404),
            )
        except RemoteError as error:
            by_tag = ":" not in reference
            # Docker's registry answers a tag it cannot delete alone with 400 DIGEST_INVALID.
            if (
                error.status == 405
                or "UNSUPPORTED" in str(error)
                or (by_tag and error.status == 400)
            ):
                raise DeleteUnsupported(
                    f"the destination does not allow deleting {repository}"
                    f"{'@' if ':' in reference else ':'}{reference}: {error}",
                    error.status,
                ) from None
            raise
        response.close()
        return response.status_code != 404

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull,push",
            ok=(200, 404),
        )
        response.close()
        return response.status_code == 200

    @contextmanager
    def blob_get(self, repository: str, digest: str) -> Iterator[tuple[Iterator[bytes], int]]:
        """Stream a blob: chunks and the size the registry gives.

        A stream that breaks off raises TransientError from the chunks: the caller starts
        the copy again (a new GET), not from where it broke.
        """
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            stream=True,
        )
        try:
            size = int(response.headers.get("Content-Length", "-1"))
            yield _guarded(response, self.base), size
        finally:
            response.close()

    def blob_mount(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of the registry; False if it would not."""
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            scope=f"repository:{repository}:pull,push repository:{from_repository}:pull",
            ok=(201, 202),
        )
        response.close()
        if response.status_code == 202:  # an upload session instead: not needed
            location = response.headers.get("Location")
            if location:
                self.request(
                    "DELETE",
                    urljoin(self.base + "/", location),
                    scope=f"repository:{repository}:pull,push repository:{from_repository}:pull",
                    ok=(204, 200, 404),
                ).close()
            return False
        return True

    def blob_upload(self, repository: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        """Upload a blob: POST a session, then PUT the streamed bytes with the digest."""
        scope = f"repository:{repository}:pull,push"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope, ok=(202,))
        response.close()
        location = urljoin(self.base + "/", response.headers["Location"])
        separator = "&" if "?" in location else "?"
        body: Iterable[bytes] = _Sized(chunks, size) if size >= 0 else chunks
        self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            scope=scope,
            headers={"Content-Type": "application/octet-stream"},
            data=body,
            ok=(201,),
        ).close()

    # --- reads of a pull-through cache: pull scope only -----------------------------------

    def manifest_head(self, repository: str, reference: str) -> str | None:
        """The digest ``reference`` names upstream (a HEAD, pull scope); None if it has no such
        manifest, "" if it answered without a digest."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
            ok=(200, 404),
        )
        response.close()
        if response.status_code == 404:
            return None
        return response.headers.get("Docker-Content-Digest", "")  # "": it did not say

    def blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob upstream (a HEAD, pull scope), None if it has none."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            ok=(200, 404),
        )
        response.close()
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length", "-1"))
