"""A real ClickHouse server (chdb-core's engine) on 127.0.0.1, in its own process.

The serving process is clickhouse_serve.py; this module starts, waits for and stops it.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from http import HTTPStatus
from pathlib import Path

from tests.services.ports import LOOPBACK, free_ports, port_is_open
from tests.services.process import (
    ManagedProcess,
    ServiceError,
    spawn,
    wait_until,
)

SERVE_SCRIPT = Path(__file__).resolve().parent / "clickhouse_serve.py"
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0
# Shutdown waits for idle keep-alive connections (clickhouse-connect pools them) to
# time out; after ~5 s it gives up and exits with code 1 instead of a clean shutdown.
# Clients reconnect by themselves after the server closes an idle connection.
KEEP_ALIVE_TIMEOUT_S = 2


class ClickHouseServer(ManagedProcess):
    """One serving process; stop()/kill9() then start() reuse the ports and data dir.

    Connect with `clickhouse_connect.get_client(dsn=server.url)` (user `default`, no
    password; append `/DBNAME` to pick a database) or with host= and port=; clients
    of the native protocol use tcp_port.
    """

    stop_grace = STOP_GRACE_S

    def _stopped_cleanly(self, proc: subprocess.Popen[bytes], on_sigterm: bool) -> bool:
        return on_sigterm and proc.returncode == 0  # the engine exits 0 only after a clean shutdown

    def __init__(self, workdir: Path, http_port: int, tcp_port: int, *, extra_config: str = "") -> None:
        self.workdir = workdir
        self.extra_config = extra_config  # more of config.xml's <clickhouse> body (a cluster node's)
        self.host = LOOPBACK
        self.http_port = http_port
        self.port = http_port  # the port clickhouse-connect takes
        self.tcp_port = tcp_port
        self.url = f"http://default:@{LOOPBACK}:{http_port}"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "clickhouse.log"
        super().__init__()
        self.log_file = self.log_path

    def _write_config(self) -> None:
        # The engine reads listen address and ports only from ./config.xml.
        (self.workdir / "config.xml").write_text(
            "<clickhouse>\n"
            f"  <listen_host>{LOOPBACK}</listen_host>\n"
            f"  <http_port>{self.http_port}</http_port>\n"
            f"  <tcp_port>{self.tcp_port}</tcp_port>\n"
            f"  <keep_alive_timeout>{KEEP_ALIVE_TIMEOUT_S}</keep_alive_timeout>\n"
            f"{self.extra_config}"
            "</clickhouse>\n"
        )

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Serve the data dir (made on first start, kept after) and wait for /ping."""
        if self.pid is not None:
            raise ServiceError(f"clickhouse already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        proc = self._proc = spawn(
            [sys.executable, SERVE_SCRIPT, self.data_dir, str(self.http_port)],
            cwd=self.workdir,
            log_path=self.log_path,
        )
        try:
            wait_until(
                self._ready,
                proc=proc,
                what="clickhouse",
                timeout=timeout,
                logs=[self.log_path],
            )
        except BaseException:
            self.kill()
            raise

    def _ready(self) -> bool:
        if not port_is_open(self.http_port):
            return False
        ping = f"http://{LOOPBACK}:{self.http_port}/ping"
        try:
            with urllib.request.urlopen(ping, timeout=2) as response:
                ok = response.status == HTTPStatus.OK
        except OSError:
            return False
        return ok and port_is_open(self.tcp_port)


def start_clickhouse(workdir: Path, timeout: float = READY_TIMEOUT_S) -> ClickHouseServer:
    """Start a ClickHouse server on free ports, its data in `workdir`/data (reused if
    there), and return once it answers HTTP and has its native port open.
    """
    http_port, tcp_port = free_ports(2)
    server = ClickHouseServer(workdir, http_port, tcp_port)
    server.start(timeout=timeout)
    return server
