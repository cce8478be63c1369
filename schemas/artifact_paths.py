"""Where an artifact may live: '/'-separated paths relative to its run's prefix, never outside it."""

from __future__ import annotations

import re

MAX_PATH = 1024
MAX_SEGMENT_BYTES = 255  # a file name's limit on common filesystems (the local store)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


class UnsafePath(ValueError):
    """A path that could leave the run's prefix, or that no store can hold safely."""


def artifact_path(path: str) -> str:
    """Returns `path` if it is a safe relative file path: no '..', '.', empty segments, leading '/',
    backslashes (a Windows separator), NUL or other control characters."""
    if not path:
        raise UnsafePath("artifact path must not be empty")
    if len(path) > MAX_PATH:
        raise UnsafePath(f"artifact path longer than {MAX_PATH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePath("artifact path contains a NUL or control character")
    if "\\" in path:
        raise UnsafePath("artifact path contains a backslash: use '/'")
    if path.startswith("/"):
        raise UnsafePath("artifact path must be relative, not absolute")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath("artifact path must be relative, without '..', '.' or empty segments")
    if any(len(part.encode()) > MAX_SEGMENT_BYTES for part in parts):
        raise UnsafePath(f"a file or folder name in the artifact path is longer than {MAX_SEGMENT_BYTES} bytes")
    return path


def artifact_dir(path: str) -> str:
    """A folder inside the run's artifacts: '' is the root; a trailing '/' is dropped."""
    path = path.removesuffix("/")
    return path and artifact_path(path)


def join(folder: str, name: str) -> str:
    return artifact_path(f"{folder}/{name}" if folder else name)


def run_prefix(run_id: str) -> str:
    """The key prefix of a run's artifacts, relative to the store's root."""
    if not _RUN_ID.match(run_id):
        raise UnsafePath("run_id must be 32 lowercase hex characters")
    return f"{run_id}/artifacts"


def object_key(run_id: str, path: str) -> str:
    return f"{run_prefix(run_id)}/{artifact_path(path)}"


def model_prefix(model_id: str) -> str:
    """The key prefix of a logged model's artifacts (MLflow 3); never a run's (no run id has '/')."""
    if not _MODEL_ID.match(model_id):
        raise UnsafePath("model_id must be m- and 32 lowercase hex characters")
    return f"models/{model_id}/artifacts"
