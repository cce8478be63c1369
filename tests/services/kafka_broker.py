"""Real Apache Kafka 4.x (KRaft, combined broker+controller nodes) on 127.0.0.1: one broker, or a
cluster of several, each node its own JVM, ports and log dir, stoppable and killable by PID.

The nodes run from Maven Central jars (kafka/pom.xml), fetched once into a cache.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.services.maven import maven_lib_dir
from tests.services.ports import LOOPBACK, free_ports, port_is_open
from tests.services.process import (
    ManagedProcess,
    ServiceError,
    spawn,
    wait_until,
)

HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.xml"
SINGLE_HEAP = ["-Xms512m", "-Xmx1g"]
CLUSTER_HEAP = ["-Xms256m", "-Xmx448m"]  # three JVMs on a small machine
JVM_OPTS = ["-XX:+UseG1GC", "-Djava.awt.headless=true"]
READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 20.0


def kafka_lib_dir() -> Path:
    """The folder of the broker's runtime jars; Maven fills it once per pom.xml content."""
    return maven_lib_dir(POM, "kafka-lib", "kafka_2.13-*.jar")


def _random_id() -> str:
    # As `kafka-storage random-uuid`: 16 random bytes, URL-safe base64, no padding. Cluster ids and
    # metadata directory ids are both of this form.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True)
class Voter:
    node_id: int
    controller_port: int
    directory_id: str  # of the node's metadata log dir, written by the format


@dataclass(frozen=True)
class Quorum:
    """The cluster every node is formatted into: one cluster id and a dynamic controller quorum
    (KIP-853) naming every node; a single node is the `--standalone` case of the same thing."""

    cluster_id: str
    voters: tuple[Voter, ...]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{LOOPBACK}:{v.controller_port}" for v in self.voters)

    @property
    def initial_controllers(self) -> str:
        return ",".join(f"{v.node_id}@{LOOPBACK}:{v.controller_port}:{v.directory_id}" for v in self.voters)

    @property
    def replication(self) -> int:
        """Of the internal topics: 3 on a cluster of 3 or more, else every node."""
        return min(3, len(self.voters))


def _server_properties(node_id: int, port: int, controller_port: int, log_dir: Path, quorum: Quorum) -> str:
    listeners = f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}"
    replication = quorum.replication
    min_isr = str(max(1, replication - 1))  # one node may be down
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": quorum.bootstrap_servers,
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        # Every internal topic on up to 3 nodes, writable with one of them down.
        "default.replication.factor": str(replication),
        "offsets.topic.replication.factor": str(replication),
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": min_isr,
        "min.insync.replicas": min_isr,
        # Fewer internal partitions: the first group join / transaction creates all.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.num.partitions": "4",
        # Tests want consumers assigned at once, not after the default 3 s delay.
        "group.initial.rebalance.delay.ms": "0",
        # A topic's retention acts within a second of its time (not the default 5 minutes): the
        # archive test shortens one topic's retention and waits for it.
        "log.retention.check.interval.ms": "1000",
    }
    if len(quorum.voters) > 1:
        # A crashed node is fenced (its leaderships move) after this, not the default 9 s; loose
        # enough that a loaded machine's pauses do not fence a live one.
        props["broker.session.timeout.ms"] = "6000"
        props["broker.heartbeat.interval.ms"] = "1000"
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker(ManagedProcess):
    """One node (broker and controller) of `quorum`; stop()/kill() then start() reuse its ports and log dir."""

    stop_grace = STOP_GRACE_S

    def __init__(
        self,
        workdir: Path,
        lib_dir: Path,
        port: int,
        controller_port: int,
        *,
        node_id: int = 1,
        quorum: Quorum | None = None,
        heap: list[str] = SINGLE_HEAP,
    ) -> None:
        self.workdir = workdir
        self.lib_dir = lib_dir
        self.node_id = node_id
        self.quorum = quorum or Quorum(_random_id(), (Voter(node_id, controller_port, _random_id()),))
        self.heap = heap
        self.host = LOOPBACK
        self.port = port
        self.controller_port = controller_port
        self.bootstrap = f"{LOOPBACK}:{port}"
        self.log_dir = workdir / "data"
        self.config_path = workdir / "server.properties"
        self.stdout_log = workdir / "kafka.out"
        self.log4j_log = workdir / "kafka.log"  # WARN and above, see kafka/log4j2.xml
        super().__init__()
        self.log_file = self.log4j_log

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java",
            *self.heap,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.test.log.file={self.log4j_log}",
            "-cp",
            f"{self.lib_dir}/*",  # java expands the wildcard itself
            main_class,
            *args,
        ]

    def format_storage(self) -> None:
        """Write server.properties; format the log dir into the quorum's cluster (once)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _server_properties(self.node_id, self.port, self.controller_port, self.log_dir, self.quorum)
        )
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.quorum.cluster_id}",  # one argument: an id may start with '-'
            f"--initial-controllers={self.quorum.initial_controllers}",
            "--config",
            str(self.config_path),
        )
        result = subprocess.run(
            cmd,
            check=False,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"kafka StorageTool format failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    def launch(self) -> None:
        """Start the JVM on the formatted log dir without waiting (a quorum's nodes start together)."""
        if self.pid is not None:
            raise ServiceError(f"kafka broker {self.node_id} already running (pid {self.pid})")
        self._proc = spawn(
            self._java("kafka.Kafka", str(self.config_path)),
            cwd=self.workdir,
            log_path=self.stdout_log,
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until this node serves metadata that lists it as a registered broker."""
        proc = self._proc
        if proc is None:
            raise ServiceError(f"kafka broker {self.node_id} is not running")
        try:
            # Port first: librdkafka would log every refused connection to stderr.
            wait_until(
                lambda: port_is_open(self.port) and self._serves_metadata(),
                proc=proc,
                what=f"kafka broker {self.node_id}",
                timeout=timeout,
                logs=[self.stdout_log, self.log4j_log],
                interval=0.25,
            )
        except BaseException:
            self.kill()
            raise

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start on the formatted log dir and wait until the broker serves metadata."""
        self.launch()
        self.wait_ready(timeout)

    def _serves_metadata(self) -> bool:
        # Imported here so that this module loads without confluent-kafka.
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = admin.list_topics(timeout=5)
        except KafkaException:  # not up yet
            return False
        return self.node_id in metadata.brokers


class KafkaCluster:
    """Several KafkaBroker nodes formatted into one cluster; each can be stopped, killed and restarted
    on its own while the others serve."""

    def __init__(self, nodes: list[KafkaBroker]) -> None:
        self.nodes = nodes
        self.bootstrap = ",".join(node.bootstrap for node in nodes)

    def __iter__(self) -> Iterator[KafkaBroker]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: int) -> KafkaBroker:
        return next(n for n in self.nodes if n.node_id == node_id)

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Launch every stopped node at once (no controller can be elected before a majority is
        up), then wait until each serves metadata listing every node."""
        for node in self.nodes:
            if node.pid is None:
                node.launch()
        for node in self.nodes:
            node.wait_ready(timeout)
        self.wait_registered(timeout)

    def wait_registered(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the cluster's metadata lists every node as a live broker."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin, wanted = AdminClient({"bootstrap.servers": self.bootstrap}), {n.node_id for n in self.nodes}
        deadline = time.monotonic() + timeout
        while True:
            try:
                if set(admin.list_topics(timeout=5).brokers) >= wanted:
                    return
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"kafka cluster: not every node of {sorted(wanted)} registered in {timeout:.0f} s")
            time.sleep(0.25)

    def stop(self) -> bool:
        """Every node at once (SIGTERM, then SIGKILL after the grace). True if all stopped cleanly."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            return all(pool.map(lambda node: node.stop(), self.nodes))

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _nodes(workdir: Path, count: int, heap: list[str]) -> list[KafkaBroker]:
    """`count` formatted (not started) nodes of one new cluster, node ids 1..count, under workdir/node-<id>."""
    lib = kafka_lib_dir()
    ports = free_ports(2 * count)
    voters = tuple(Voter(i + 1, ports[2 * i + 1], _random_id()) for i in range(count))
    quorum = Quorum(_random_id(), voters)
    nodes = [
        KafkaBroker(
            workdir if count == 1 else workdir / f"node-{v.node_id}",
            lib,
            ports[2 * i],
            v.controller_port,
            node_id=v.node_id,
            quorum=quorum,
            heap=heap,
        )
        for i, v in enumerate(voters)
    ]
    with ThreadPoolExecutor(count) as pool:  # each format is a JVM start: in parallel
        list(pool.map(lambda node: node.format_storage(), nodes))
    return nodes


def start_kafka(workdir: Path, timeout: float = READY_TIMEOUT_S) -> KafkaBroker:
    """Fetch the jars if needed, format a fresh log dir under `workdir`, start a broker.

    Returns once the broker answers metadata requests on `broker.bootstrap`.
    """
    [broker] = _nodes(workdir, 1, SINGLE_HEAP)
    broker.start(timeout=timeout)
    return broker


def start_kafka_cluster(workdir: Path, count: int = 3, timeout: float = READY_TIMEOUT_S) -> KafkaCluster:
    """A fresh cluster of `count` combined broker+controller nodes (internal topics at replication
    factor 3, min ISR 2 when count >= 3); returns once every node is registered."""
    cluster = KafkaCluster(_nodes(workdir, count, CLUSTER_HEAP))
    try:
        cluster.start(timeout=timeout)
    except BaseException:
        cluster.kill()
        raise
    return cluster
