"""The embedded default: artifacts as files under one folder. No presigned URLs: clients upload and
download through the server's content endpoint."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from runstream.artifacts.store import ArtifactNotFound, Multipart, Reader
from runstream.schemas.artifact_paths import UnsafePath

CHUNK = 1024 * 1024


class LocalStore:
    presigned = False

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root_uri = self.root.as_uri()

    def _file(self, key: str) -> Path:
        # Keys are already checked (paths.object_key); resolving catches symlinks leading out too.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise UnsafePath(f"{key!r} resolves outside the artifact root")
        return path

    def uri(self, key: str) -> str:
        return self._file(key).as_uri()

    def upload(self, key: str, reader: Reader) -> None:
        target = self._file(key)
        if target.is_dir():
            raise UnsafePath(f"{key!r} is a folder of other artifacts")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:  # S3 keeps both "a" and "a/b"; a folder cannot
            raise UnsafePath(f"{key!r}: a part of its folder is a file") from exc
        # Written beside the target, then renamed: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(reader, out, CHUNK)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def size(self, key: str) -> int:
        path = self._file(key)
        if not path.is_file():
            raise ArtifactNotFound(key)
        return path.stat().st_size

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        try:
            f = self._file(key).open("rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ArtifactNotFound(key) from exc
        return _chunks(f, start, length)

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._file(prefix)
        count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def keys(self, prefix: str) -> Iterator[str]:
        folder = self._file(prefix)
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file() and not path.name.startswith(".upload-"):
                    yield path.relative_to(self.root).as_posix()

    def presign_put(self, key: str, size: int, content_type: str) -> str | None:
        return None

    def presign_get(self, key: str) -> str | None:
        return None

    def start_multipart(self, key: str, size: int, content_type: str) -> Multipart | None:
        return None

    def presign_parts(self, key: str, upload_id: str, size: int | None, first: int, count: int) -> list[str]:
        raise ArtifactNotFound(f"multipart upload {upload_id!r} (the local store starts none)")

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        raise ArtifactNotFound(f"multipart upload {upload_id!r} (the local store starts none)")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        raise ArtifactNotFound(f"multipart upload {upload_id!r} (the local store starts none)")

    def abort_stale_uploads(self, older_than_s: float) -> int:
        return 0  # uploads are temporary files removed by the failing request itself


def _chunks(f: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
