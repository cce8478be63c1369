"""The artifact store interface. Keys are '/'-separated and relative to the store's root; callers
build them with paths.object_key, so they never leave a run's prefix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

PRESIGN_EXPIRES_S = 900  # short-lived: PUTs start at once, part URLs come in batches as an upload goes
DEFAULT_MAX_SIZE = 100 * 1024**3
MULTIPART_THRESHOLD = 64 * 1024**2  # larger files go up in parts (in parallel, retried one by one)


class ArtifactNotFound(LookupError):
    pass


class StoreUnavailable(RuntimeError):
    """The store could not be reached or failed on its side: worth retrying later."""


@dataclass(frozen=True)
class Multipart:
    """A started multipart upload: part n (1-based) holds bytes [(n-1)*part_size, n*part_size)."""

    upload_id: str
    part_size: int
    parts: int


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ArtifactStore(Protocol):
    root_uri: str
    presigned: bool  # whether clients get presigned URLs, or upload and download through the server

    def uri(self, key: str) -> str: ...

    def upload(self, key: str, reader: Reader) -> None:
        """Stores what `reader` yields (read sequentially, once) under `key`."""
        ...

    def size(self, key: str) -> int:
        """The stored object's size; raises ArtifactNotFound."""
        ...

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes from `start`; raises ArtifactNotFound before the first chunk."""
        ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under `prefix`/; returns how many."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys of every object under `prefix`/, in no particular order."""
        ...

    def presign_put(self, key: str, size: int, content_type: str) -> str | None:
        """A URL taking one PUT of exactly `size` bytes of `content_type`, or None when the store has
        no presigned URLs (clients then upload through the server)."""
        ...

    def presign_get(self, key: str) -> str | None: ...

    def start_multipart(self, key: str, size: int, content_type: str) -> Multipart | None:
        """Starts a multipart upload of `size` bytes, or None when the store has none."""
        ...

    def presign_parts(self, key: str, upload_id: str, size: int | None, first: int, count: int) -> list[str]:
        """Presigned UploadPart URLs for parts first.. (at most `count`), each signed with its length
        (of a file of `size` bytes; None: `count` parts of any length, as MLflow's client asks).
        Asked for in batches as an upload goes, so no URL has to outlive a long transfer."""
        ...

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None: ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...

    def abort_stale_uploads(self, older_than_s: float) -> int:
        """Aborts multipart uploads started more than `older_than_s` ago; returns how many."""
        ...
