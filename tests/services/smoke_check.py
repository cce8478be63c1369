"""Start Kafka, ClickHouse and SeaweedFS S3 on loopback, do one round trip on each,
stop them and print timings. Exits non-zero on any failure.

Run from the repository root: `python -m tests.services.smoke_check`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import clickhouse_connect
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

# The class behind confluent_kafka.admin.NewTopic; that module's types hide it.
from confluent_kafka.cimpl import NewTopic

from tests.services.clickhouse_server import ClickHouseServer, start_clickhouse
from tests.services.kafka_broker import KafkaBroker, kafka_lib_dir, start_kafka
from tests.services.s3_server import S3Server, start_seaweedfs

T = TypeVar("T")
MESSAGES = 1000
ROWS = 100_000
TIMINGS: list[tuple[str, float]] = []


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    TIMINGS.append((label, time.monotonic() - started))


def timed_call(label: str, call: Callable[[], T]) -> T:
    with timed(label):
        return call()


def kafka_round_trip(broker: KafkaBroker) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    new = NewTopic(topic, num_partitions=4, replication_factor=1)
    for future in admin.create_topics([new]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(MESSAGES):
        producer.produce(topic, key=str(i % 16).encode(), value=f"m{i}".encode())
    if producer.flush(30) != 0:
        raise AssertionError("kafka: messages left unflushed")
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"smoke-{topic}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < MESSAGES and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error() is None and (value := message.value()) is not None:
                    seen.add(value)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    if len(seen) != MESSAGES:
        raise AssertionError(f"kafka: consumed {len(seen)} of {MESSAGES} messages")


def clickhouse_round_trip(server: ClickHouseServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    try:
        client.command("CREATE DATABASE IF NOT EXISTS smoke")
        client.command("CREATE TABLE smoke.metrics (step UInt32, value Float64) ENGINE = MergeTree ORDER BY step")
        steps = list(range(ROWS))
        client.insert(
            "smoke.metrics",
            [steps, [s * 0.5 for s in steps]],
            column_names=["step", "value"],
            column_oriented=True,
        )
        rows = client.query("SELECT count(), sum(step) FROM smoke.metrics").result_rows
    finally:
        client.close()
    if rows != [(ROWS, sum(range(ROWS)))]:
        raise AssertionError(f"clickhouse: unexpected {rows}")


def s3_round_trip(server: S3Server) -> None:
    s3 = server.client()
    body = os.urandom(16 * 1024)
    s3.create_bucket(Bucket="smoke-bucket")
    s3.put_object(Bucket="smoke-bucket", Key="runs/1/artifact.bin", Body=body)
    got = s3.get_object(Bucket="smoke-bucket", Key="runs/1/artifact.bin")["Body"]
    if got.read() != body:
        raise AssertionError("s3: object read back differs")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    timed_call("kafka jars (mvn, or cached)", kafka_lib_dir)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smoke-")))
        broker = timed_call("start kafka", lambda: start_kafka(root / "kafka"))
        stack.callback(broker.stop)
        clickhouse = timed_call("start clickhouse", lambda: start_clickhouse(root / "clickhouse"))
        stack.callback(clickhouse.stop)
        s3 = timed_call(
            "start seaweedfs",
            lambda: start_seaweedfs(root / "s3", "smoke-access", "smoke-secret-key"),
        )
        stack.callback(s3.stop)
        pids = [p for p in (broker.pid, clickhouse.pid, s3.pid) if p is not None]
        print(f"kafka {broker.bootstrap}, clickhouse {clickhouse.url}")
        print(f"s3 {s3.endpoint_url}, pids {pids}")

        with timed(f"kafka produce+consume {MESSAGES}"):
            kafka_round_trip(broker)
        with timed(f"clickhouse insert+select {ROWS}"):
            clickhouse_round_trip(clickhouse)
        with timed("s3 put+get 16 KiB"):
            s3_round_trip(s3)

        # Stopped here to time it; the stack's stop() of each is then a no-op.
        stops = {"kafka": broker.stop, "clickhouse": clickhouse.stop, "s3": s3.stop}
        for label, stop in stops.items():
            if not timed_call(f"stop {label}", stop):
                print(f"warning: {label} did not stop cleanly", file=sys.stderr)
    for label, seconds in TIMINGS:
        print(f"{label:<36} {seconds:6.2f} s")
    if left := [pid for pid in pids if alive(pid)]:
        raise AssertionError(f"processes still running: {left}")
    print("smoke check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
