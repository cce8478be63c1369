"""A real single-node Apache Kafka 4.x broker (KRaft, combined mode) on 127.0.0.1.

The broker runs from Maven Central jars (kafka/pom.xml), fetched once into a cache.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

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
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "runstream-test" / "kafka-lib"
JVM_OPTS = ["-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 20.0


def kafka_lib_dir() -> Path:
    """The folder of the broker's runtime jars; Maven fills it once per pom.xml content."""
    key = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    lib = CACHE_ROOT / key
    if (lib / ".complete").exists():
        return lib
    if shutil.which("mvn") is None:
        raise ServiceError("no `mvn` on PATH: it fetches the Kafka broker's jars")
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # Fill a private folder, then rename it into place: concurrent runs never see half.
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE_ROOT))
    try:
        mvn = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
        result = subprocess.run(
            [*mvn, f"-Dlib.dir={tmp}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"mvn copy-dependencies failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        (tmp / ".complete").write_text(key)
        try:
            tmp.rename(lib)
        except OSError:
            if not (lib / ".complete").exists():  # else another run won the race: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lib


def _cluster_id() -> str:
    # As `kafka-storage random-uuid`: 16 random bytes, URL-safe base64, no padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    listeners = f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        # One broker: every internal topic must live with a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        # Fewer internal partitions: the first group join / transaction creates all.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.num.partitions": "4",
        # Tests want consumers assigned at once, not after the default 3 s delay.
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker(ManagedProcess):
    """One broker process; stop()/kill() then start() reuse the ports and log dirs."""

    stop_grace = STOP_GRACE_S

    def __init__(self, workdir: Path, lib_dir: Path, port: int, controller_port: int) -> None:
        self.workdir = workdir
        self.lib_dir = lib_dir
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
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.test.log.file={self.log4j_log}",
            "-cp",
            f"{self.lib_dir}/*",  # java expands the wildcard itself
            main_class,
            *args,
        ]

    def format_storage(self) -> None:
        """Write server.properties; format the log dir with a new cluster id (once)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_server_properties(self.port, self.controller_port, self.log_dir))
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={_cluster_id()}",  # one argument: an id may start with '-'
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

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start on the formatted log dir and wait until the broker serves metadata."""
        if self.pid is not None:
            raise ServiceError(f"kafka broker already running (pid {self.pid})")
        proc = self._proc = spawn(
            self._java("kafka.Kafka", str(self.config_path)),
            cwd=self.workdir,
            log_path=self.stdout_log,
        )
        try:
            # Port first: librdkafka would log every refused connection to stderr.
            wait_until(
                lambda: port_is_open(self.port) and self._serves_metadata(),
                proc=proc,
                what="kafka broker",
                timeout=timeout,
                logs=[self.stdout_log, self.log4j_log],
            )
        except BaseException:
            self.kill()
            raise

    def _serves_metadata(self) -> bool:
        # Imported here so that this module loads without confluent-kafka.
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = admin.list_topics(timeout=5)
        except KafkaException:  # not up yet
            return False
        return 1 in metadata.brokers


def start_kafka(workdir: Path, timeout: float = READY_TIMEOUT_S) -> KafkaBroker:
    """Fetch the jars if needed, format a fresh log dir under `workdir`, start a broker.

    Returns once the broker answers metadata requests on `broker.bootstrap`.
    """
    lib = kafka_lib_dir()
    port, controller_port = free_ports(2)
    broker = KafkaBroker(workdir, lib, port, controller_port)
    broker.format_storage()
    broker.start(timeout=timeout)
    return broker
