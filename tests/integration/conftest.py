"""Real services for the integration tests: one Kafka broker and one ClickHouse server per session
(and a 3-node Kafka cluster, started only if a test asks for it); each test gets its own topic prefix
and database, so tests never see each other's data."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runstream.sdk.transport import close_kafka_transports
from tests.integration.roles import REPO, Role
from tests.services.clickhouse_server import ClickHouseServer
from tests.services.kafka_broker import KafkaBroker, KafkaCluster, start_kafka, start_kafka_cluster
from tests.services.ports import free_port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    yield broker
    close_kafka_transports()  # the SDK's shared producers, before their broker goes
    broker.kill()  # as the other session services (tests/conftest.py)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three combined broker+controller nodes in one KRaft quorum: topics at replication factor 3."""
    cluster = start_kafka_cluster(tmp_path_factory.mktemp("kafka-cluster"), count=3)
    yield cluster
    close_kafka_transports()
    cluster.kill()  # all nodes at once: a quorum shutting itself down gracefully waits out its timeouts


# The tests' webhook receivers listen on http://127.0.0.1.
WEBHOOKS_TO_LOCALHOST = {
    "RUNSTREAM_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "RUNSTREAM_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
}


class Stack:
    """The distributed roles for one test, sharing a topic prefix and a database."""

    def __init__(self, workdir: Path, kafka: KafkaBroker | KafkaCluster, clickhouse: ClickHouseServer) -> None:
        tag = uuid.uuid4().hex[:10]
        self.workdir = workdir
        self.env = {
            **WEBHOOKS_TO_LOCALHOST,
            "RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "RUNSTREAM_TOPIC_PREFIX": f"t{tag}.",
            "RUNSTREAM_CLICKHOUSE_URL": f"{clickhouse.url}/t{tag}",
            "RUNSTREAM_CONSUMER_GROUP": f"projector-{tag}",
            "RUNSTREAM_KAFKA_PARTITIONS": "4",
        }
        self.clickhouse_url = self.env["RUNSTREAM_CLICKHOUSE_URL"]
        self.kafka_uri = f"kafka://{kafka.bootstrap}"
        self.roles: list[Role] = []

    def start(self, role: str, *args: str) -> Role:
        """Every role serves HTTP (the projector: health and metrics): on a free port unless given."""
        if "--port" not in args:
            args = (*args, "--port", str(free_port()))
        process = Role(self.workdir, role, *args, env=self.env)
        self.roles.append(process)
        return process

    def start_together(self, *roles: tuple[str, ...]) -> list[Role]:
        """Several roles at once, each (name, *args) as start() takes them: the stack is up in the time
        of its slowest role, not the sum of them all."""
        with ThreadPoolExecutor(len(roles)) as pool:
            return list(pool.map(lambda role: self.start(*role), roles))

    def http_role(self, role: str) -> tuple[Role, str]:
        port = free_port()
        return self.start(role, "--port", str(port)), f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for role in self.roles:
            role.stop()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as users install it: its wheel (no dependencies bundled)."""
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(out)]
    subprocess.run([*pip, str(REPO)], check=True, timeout=300)
    return next(out.glob("runstream-*.whl"))


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`runstream serve` on embedded storage, one per test module; its base URL."""
    workdir: Path = tmp_path_factory.mktemp("serve")
    port = free_port()
    role = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"), env=WEBHOOKS_TO_LOCALHOST)
    yield f"http://127.0.0.1:{port}"
    role.stop()


@pytest.fixture
def stack(tmp_path: Path, kafka: KafkaBroker, clickhouse: ClickHouseServer) -> Iterator[Stack]:
    s = Stack(tmp_path, kafka, clickhouse)
    yield s
    s.close()
