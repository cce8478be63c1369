"""The store an artifact root names: the backends sit beside their interface (store.py), not under it."""

from __future__ import annotations

from pathlib import Path

from runstream.artifacts.store import ArtifactStore


def store_for(root: str) -> ArtifactStore:
    """`s3://bucket/prefix` (boto3; endpoint and credentials from the AWS_* variables) or a folder."""
    if root.startswith("s3://"):
        from runstream.artifacts.s3 import S3Store  # boto3 loads only when S3 is used

        return S3Store(root)
    from runstream.artifacts.local import LocalStore

    return LocalStore(Path(root.removeprefix("file://")))
