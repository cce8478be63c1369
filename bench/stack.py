"""The runstream pipeline on real services, for benchmarks: a Kafka broker and a ClickHouse server on
127.0.0.1 (tests/services), a `runstream projector` and, on request, a `runstream api` subprocess.
Everything started is registered on the caller's ExitStack at once, so it is stopped by PID, last first.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from runstream.eventlog.base import Positions
from runstream.store.applied import applied_positions, caught_up
from tests.integration.roles import Role
from tests.services.clickhouse_server import ClickHouseServer
from tests.services.kafka_broker import start_kafka
from tests.services.ports import free_port, free_ports

QUERY_LOG = (
    "<query_log><database>system</database><table>query_log</table>"
    "<flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>"
)


class LoggedClickHouse(ClickHouseServer):
    """The test services' ClickHouse server with system.query_log on: what each read cost the server."""

    def _write_config(self) -> None:
        super()._write_config()
        config = self.workdir / "config.xml"
        config.write_text(config.read_text().replace("</clickhouse>", f"  {QUERY_LOG}\n</clickhouse>"))


class Stack:
    def __init__(self, workdir: Path, stack: ExitStack, partitions: int = 4, projector: bool = True) -> None:
        self.workdir = workdir
        self._stack = stack
        self.kafka = start_kafka(workdir / "kafka")
        stack.callback(self.kafka.stop)
        self.clickhouse = LoggedClickHouse(workdir / "clickhouse", *free_ports(2))
        stack.callback(self.clickhouse.stop)  # a no-op if it never started
        self.clickhouse.start()
        tag = uuid.uuid4().hex[:10]
        self.topic_prefix = f"bench{tag}."
        self.database = f"bench_{tag}"
        self.consumer_group = f"bench-{tag}"
        self.env = {
            "RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "RUNSTREAM_TOPIC_PREFIX": self.topic_prefix,
            "RUNSTREAM_CLICKHOUSE_URL": f"{self.clickhouse.url}/{self.database}",
            "RUNSTREAM_CONSUMER_GROUP": self.consumer_group,
            "RUNSTREAM_KAFKA_PARTITIONS": str(partitions),
        }
        self.projector = self.start_role("projector", "--port", str(free_port())) if projector else None
        self.api: Role | None = None
        server = clickhouse_connect.get_client(dsn=self.clickhouse.url, compress=False)
        server.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")  # the projector's migrations may not have run
        self.sql: Client = clickhouse_connect.get_client(
            dsn=self.clickhouse.url, database=self.database, compress=False
        )

    def start_role(self, name: str, *args: str, env: dict[str, str] | None = None) -> Role:
        """`runstream <name> args`, with this stack's environment (or `env`), stopped with the stack."""
        role = Role(self.workdir, name, *args, env=env or self.env)
        self._stack.callback(role.stop)
        return role

    @property
    def tracking_uri(self) -> str:
        """What SDK writers use: Kafka directly (they also need RUNSTREAM_TOPIC_PREFIX=topic_prefix)."""
        return f"kafka://{self.kafka.bootstrap}"

    def start_api(self) -> str:
        """Starts `runstream api` on a free port; returns its base URL."""
        self.api, url = self._http_role("api")
        return url

    def start_gateway(self) -> str:
        """Starts `runstream gateway` on a free port; returns its base URL."""
        return self._http_role("gateway")[1]

    def _http_role(self, name: str) -> tuple[Role, str]:
        port = free_port()
        return self.start_role(name, "--host", "127.0.0.1", "--port", str(port)), f"http://127.0.0.1:{port}"

    def pids(self) -> dict[str, int]:
        procs = {"kafka broker": self.kafka.pid, "clickhouse server": self.clickhouse.pid}
        procs.update(projector=self.projector.pid if self.projector else None, api=self.api.pid if self.api else None)
        return {name: pid for name, pid in procs.items() if pid is not None}

    def wait_applied(self, wanted: Positions, timeout: float) -> float:
        """Polls until the projector applied these log positions; returns when it saw that."""
        deadline = time.time() + timeout
        while not caught_up(applied_positions(self.sql, self.consumer_group), wanted):
            if time.time() > deadline:
                raise TimeoutError(f"positions {wanted} not applied after {timeout} s")
            time.sleep(0.1)
        return time.time()

    def wait_merges(self, timeout: float, folded: tuple[str, ...] = ()) -> float:
        """Waits (bounded) until the server runs no merge in this database and each `folded` table is one
        part (they are merged by age, see migrations/002): the state a quiet server settles in.
        Returns the seconds waited."""
        start = time.time()
        sql = "SELECT count() FROM system.merges WHERE database = {db:String}"
        while time.time() - start < timeout:
            merging = self.sql.query(sql, parameters={"db": self.database}).result_rows[0][0]
            if not merging and all(self.parts(t) <= 1 for t in folded):
                break
            time.sleep(1.0)
        return time.time() - start

    def parts(self, table: str) -> int:
        sql = "SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active"
        return int(self.sql.query(sql, parameters={"db": self.database, "t": table}).result_rows[0][0])
