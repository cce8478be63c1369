"""S3 through boto3. Endpoint, credentials and region come from boto3's own variables
(AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); with a custom endpoint
(an S3-compatible server) requests are path-style. Presigned URLs name RUNSTREAM_S3_PUBLIC_ENDPOINT
where clients reach S3 by another address than the server does (a compose network's service name)."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from runstream.artifacts.store import (
    MULTIPART_THRESHOLD,
    PRESIGN_EXPIRES_S,
    ArtifactNotFound,
    Multipart,
    Reader,
    StoreUnavailable,
)

MiB = 1024 * 1024
PART_SIZE = 16 * MiB
MAX_PARTS = 10_000  # S3's limit
CHUNK = MiB
TRANSFER = TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE, max_concurrency=8, use_threads=True
)
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
PUBLIC_ENDPOINT_VARIABLE = "RUNSTREAM_S3_PUBLIC_ENDPOINT"


def s3_client(endpoint: str | None = None) -> Any:
    """boto3's S3 client, at `endpoint` or where boto3's variables say."""
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=120,
        max_pool_connections=32,
        # S3-compatible servers do not all take the newer default trailing checksums; integrity is
        # checked end to end with the recorded sha256 instead.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client("s3", region_name=region, config=config, endpoint_url=endpoint)


def part_size(size: int) -> int:
    """PART_SIZE, or more for files so large that S3's 10,000-part limit would be passed."""
    return max(PART_SIZE, math.ceil(size / MAX_PARTS / MiB) * MiB)


@contextlib.contextmanager
def _errors(key: str) -> Iterator[None]:
    """boto3's errors as the store's: missing → ArtifactNotFound, unreachable or 5xx → StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _MISSING or status == 404:
            raise ArtifactNotFound(key) from exc
        if status >= 500:
            raise StoreUnavailable(f"S3 failed: {exc}") from exc
        raise
    except BotoCoreError as exc:
        raise StoreUnavailable(f"S3 unreachable: {exc}") from exc


class S3Store:
    presigned = True

    def __init__(self, root: str, client: Any | None = None) -> None:
        parsed = urlparse(root)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"an S3 artifact root looks like s3://bucket/prefix, not {root!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root_uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.client = client or s3_client()
        # A signature covers the host: URLs for clients are signed for the address they use.
        public = os.environ.get(PUBLIC_ENDPOINT_VARIABLE)
        self._signer = s3_client(public) if public else self.client
        # One transfer manager per store: boto3's upload_fileobj would start a thread pool per file.
        self._transfer = create_transfer_manager(self.client, TRANSFER)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def upload(self, key: str, reader: Reader) -> None:
        # s3transfer aborts the multipart upload itself when a part fails.
        with _errors(key):
            self._transfer.upload(reader, self.bucket, self._key(key)).result()

    def size(self, key: str) -> int:
        with _errors(key):
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return iter(())
        with _errors(key):
            body = self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{start + length - 1}"
            )["Body"]
        return _chunks(body, key)

    def delete(self, key: str) -> None:
        with _errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _pages(self, prefix: str) -> Iterator[list[str]]:
        """The full keys under `prefix`/, a page (at most 1,000: as many as one DeleteObjects takes) at a time."""
        with _errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix) + "/"
            )
            for page in pages:
                yield [o["Key"] for o in page.get("Contents", [])]

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for keys in self._pages(prefix):
            if keys:
                with _errors(prefix):
                    objects = [{"Key": key} for key in keys]
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                deleted += len(keys)
        return deleted

    def keys(self, prefix: str) -> Iterator[str]:
        start = len(self._key(""))  # "prefix/", or nothing
        for keys in self._pages(prefix):
            yield from (key[start:] for key in keys)

    def presign_put(self, key: str, size: int, content_type: str) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key), "ContentLength": size, "ContentType": content_type}
        return str(self._signer.generate_presigned_url("put_object", Params=params, ExpiresIn=PRESIGN_EXPIRES_S))

    def presign_get(self, key: str) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        return str(self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=PRESIGN_EXPIRES_S))

    def start_multipart(self, key: str, size: int, content_type: str) -> Multipart | None:
        step = part_size(size)
        with _errors(key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), ContentType=content_type
            )["UploadId"]
        return Multipart(upload_id=upload_id, part_size=step, parts=math.ceil(size / step))

    def presign_parts(self, key: str, upload_id: str, size: int | None, first: int, count: int) -> list[str]:
        lengths: dict[int, int | None]
        if size is None:  # parts of any length
            lengths = dict.fromkeys(range(first, first + count))
        else:
            step = part_size(size)
            last = min(first + count - 1, math.ceil(size / step))
            lengths = {n: min(step, size - (n - 1) * step) for n in range(first, last + 1)}
        signed = {"Bucket": self.bucket, "Key": self._key(key), "UploadId": upload_id}
        return [
            self._signer.generate_presigned_url(
                "upload_part",
                # signed with its length: a part cannot grow
                Params={**signed, "PartNumber": n, **({} if length is None else {"ContentLength": length})},
                ExpiresIn=PRESIGN_EXPIRES_S,
            )
            for n, length in lengths.items()
        ]

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"ETag": etag, "PartNumber": n + 1} for n, etag in enumerate(etags)]
        with _errors(key):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id, MultipartUpload={"Parts": parts}
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with _errors(key):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id)

    def abort_stale_uploads(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        aborted = 0
        with _errors(self.prefix):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._key("")
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted


def _chunks(body: Any, key: str) -> Iterator[bytes]:
    with contextlib.closing(body), _errors(key):
        yield from body.iter_chunks(CHUNK)
