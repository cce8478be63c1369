"""What each role runs: `serve` (all in one, embedded), `gateway`, `projector`, `api`."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from prometheus_client import REGISTRY

from runstream.artifacts.store import DEFAULT_MAX_SIZE, ArtifactStore
from runstream.artifacts.stores import store_for
from runstream.base.auth import Users
from runstream.base.clickhouse import DEFAULT_READ_LIMITS, ClickHouse, ReadLimits
from runstream.eventlog.kafka import KafkaLog, KafkaLogConsumer, TopicSpec, ensure_topic, events_topic
from runstream.eventlog.local import LocalLog
from runstream.projector.migrate import migrate
from runstream.projector.pauses import Pauses
from runstream.projector.projector import BATCH_POINTS, Projector
from runstream.projector.retention import RawPointsPolicy
from runstream.server.app import build_app
from runstream.server.engine_memory import EngineMemory
from runstream.server.health import thread_check
from runstream.store.applied import AppliedWatch, PolledApplied, applied_positions
from runstream.webhooks.deliverer import Deliverer
from runstream.webhooks.send import Sender

log = logging.getLogger("runstream")

EMBEDDED_GROUP = "embedded"
# librdkafka prefetches up to 64 MiB of messages by default; the projector decodes them into batches
# of its own, so with a backlog waiting that queue is memory held twice. 16 MiB: the same catch-up
# rate, ~140 MiB less at the peak (bench.backlog; README: Memory).
PREFETCH = {"queued.max.messages.kbytes": 16 * 1024}


def webhooks_group(projector_group: str) -> str:
    """The deliverers' consumer group, beside the projectors' they follow."""
    return f"{projector_group}-webhooks"


def embedded_log(data_dir: Path) -> Path:
    """The embedded setup's event log under its data directory."""
    return data_dir / "log" / "events.sqlite3"


def embedded_clickhouse(data_dir: Path) -> str:
    """The embedded setup's ClickHouse URL under its data directory."""
    return f"chdb://{data_dir / 'clickhouse'}"


class _Server(uvicorn.Server):
    """uvicorn, plus one line saying where it listens once the socket is bound."""

    def __init__(self, config: uvicorn.Config, ready: str) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info(self._ready)


def _serve_http(app: Any, host: str, port: int, ready: str) -> None:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    _Server(config, ready).run()


class _Loop(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


def _consume(role: str, loop: _Loop, store: ClickHouse, host: str, port: int, ready: str) -> None:
    """A consuming role: its loop in a thread; HTTP serves only /health, /ready and /metrics."""
    worker = threading.Thread(target=loop.run, name=role)
    worker.start()
    try:
        app = build_app(role, store=store, reads=False, checks={role: thread_check(role, worker.is_alive)})
        _serve_http(app, host, port, f"{ready}; health and metrics on http://{host}:{port}")
    finally:
        loop.stop()
        worker.join(timeout=60)


def _users(auth_file: Path | None) -> Users | None:
    if auth_file is None:
        return None
    users = Users.load(auth_file)
    log.info("auth on: users from %s", auth_file)
    return users


def _artifacts(root: str | None) -> ArtifactStore | None:
    if root is None:
        return None
    store = store_for(root)
    log.info("runstream artifacts in %s", store.root_uri)
    return store


def serve(
    host: str,
    port: int,
    data_dir: Path,
    auth_file: Path | None = None,
    artifact_root: str | None = None,
    artifact_max_size: int = DEFAULT_MAX_SIZE,
    limits: ReadLimits = DEFAULT_READ_LIMITS,
    mlflow_ui: Path | None = None,
    webhook_retry_s: float = 300.0,
    raw_points: RawPointsPolicy | None = None,
) -> None:
    data_dir = data_dir.resolve()
    artifacts = _artifacts(artifact_root or str(data_dir / "artifacts"))
    event_log = LocalLog(embedded_log(data_dir))
    store = ClickHouse(embedded_clickhouse(data_dir))
    migrate(store)
    if raw_points is not None:
        raw_points.apply(store)
    projector, applied = embedded_projector(event_log, store, EMBEDDED_GROUP)
    deliverer = Deliverer(
        event_log.consumer(webhooks_group(EMBEDDED_GROUP)), store, applied, Sender(retry_s=webhook_retry_s)
    )
    workers = {
        name: threading.Thread(target=loop.run, name=name, daemon=True)
        for name, loop in (("projector", projector), ("webhooks", deliverer))
    }
    for worker in workers.values():
        worker.start()
    engine_memory = EngineMemory(store)
    REGISTRY.register(engine_memory)
    try:
        checks = {name: thread_check(name, worker.is_alive) for name, worker in workers.items()}
        app = build_app(
            "serve",
            log=event_log,
            store=store.limited(limits),  # the projector's own store has no limits
            consumer_group=EMBEDDED_GROUP,
            applied=applied,
            checks=checks,
            users=_users(auth_file),
            artifacts=artifacts,
            artifact_max_size=artifact_max_size,
            mlflow_ui=mlflow_ui,
        )
        _serve_http(app, host, port, f"runstream serve listening on http://{host}:{port} (data in {data_dir})")
    finally:
        REGISTRY.unregister(engine_memory)
        projector.stop()
        deliverer.stop()
        for worker in workers.values():
            worker.join(timeout=60)
        event_log.close()


def embedded_projector(
    event_log: LocalLog, store: ClickHouse, group: str, **options: Any
) -> tuple[Projector, AppliedWatch]:
    """The embedded log's projector, and what it tells the readers of this process it applied (reads
    and webhook deliveries wait on it there instead of polling ClickHouse). `options`: Projector's."""
    applied = AppliedWatch(applied_positions(store.client, group))
    projector = Projector(
        lambda _handlers: event_log.consumer(group),
        store,
        group,
        on_applied=applied.advance,
        awaited=applied.awaited,
        **options,
    )
    return projector, applied


def gateway(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    topic_spec: TopicSpec,
    clickhouse_url: str | None = None,
    clickhouse_cluster: str | None = None,
    consumer_group: str = "",
    auth_file: Path | None = None,
    artifact_root: str | None = None,
    artifact_max_size: int = DEFAULT_MAX_SIZE,
    limits: ReadLimits = DEFAULT_READ_LIMITS,
) -> None:
    """With a ClickHouse URL the gateway also serves MLflow's API (reads too): the MLflow client
    takes one URL, and reads its writes through the process that recorded where they went."""
    topic = events_topic(topic_prefix)
    ensure_topic(bootstrap, topic, topic_spec)
    event_log = KafkaLog(bootstrap, topic)
    store = None
    if clickhouse_url:
        store = ClickHouse(clickhouse_url, clickhouse_cluster)
        migrate(store)
        store = store.limited(limits)
    try:
        app = build_app(
            "gateway",
            log=event_log,
            store=store,
            consumer_group=consumer_group,
            users=_users(auth_file),
            artifacts=_artifacts(artifact_root),
            artifact_max_size=artifact_max_size,
        )
        _serve_http(app, host, port, f"runstream gateway listening on http://{host}:{port}, writing to {topic}")
    finally:
        event_log.close()


def projector(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    topic_spec: TopicSpec,
    inserts_in_flight: int = 2,
    raw_points: RawPointsPolicy | None = None,
    batch_points: int = BATCH_POINTS,
) -> None:
    topic = events_topic(topic_prefix)
    ensure_topic(bootstrap, topic, topic_spec)
    store = ClickHouse(clickhouse_url, clickhouse_cluster)
    migrate(store)
    if raw_points is not None:
        raw_points.apply(store)
    projector = Projector(
        lambda handlers: KafkaLogConsumer(bootstrap, topic, consumer_group, handlers, config=PREFETCH),
        store,
        consumer_group,
        inserts_in_flight=inserts_in_flight,
        max_rows=batch_points,
        # a replay's handover (runstream replay, on one server)
        pauses=Pauses(store, consumer_group) if clickhouse_cluster is None else None,
    )
    ready = f"runstream projector consuming {topic} as group {consumer_group} into {store.url.database}"
    _consume("projector", projector, store, host, port, ready)


def webhooks(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    topic_spec: TopicSpec,
    retry_s: float,
) -> None:
    """Delivers what the projectors of `consumer_group` applied."""
    topic = events_topic(topic_prefix)
    ensure_topic(bootstrap, topic, topic_spec)
    store = ClickHouse(clickhouse_url, clickhouse_cluster)
    migrate(store)
    group = webhooks_group(consumer_group)
    # A poll's deliveries may be retried for retry_s: the member stays in the group meanwhile, or its
    # commit would be refused and the same poll delivered again, over and over.
    staying = {"max.poll.interval.ms": int((retry_s + 120) * 1000)}
    consumer = KafkaLogConsumer(bootstrap, topic, group, config=staying)
    deliverer = Deliverer(consumer, store, PolledApplied(store, consumer_group), Sender(retry_s=retry_s))
    ready = (
        f"runstream webhooks consuming {topic} as group {group}, delivering what the projectors of {consumer_group} "
        "applied"
    )
    _consume("webhooks", deliverer, store, host, port, ready)


def api(
    host: str,
    port: int,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    auth_file: Path | None = None,
    artifact_root: str | None = None,
    artifact_max_size: int = DEFAULT_MAX_SIZE,
    limits: ReadLimits = DEFAULT_READ_LIMITS,
    mlflow_ui: Path | None = None,
) -> None:
    store = ClickHouse(clickhouse_url, clickhouse_cluster)
    migrate(store)
    app = build_app(
        "api",
        store=store.limited(limits),
        consumer_group=consumer_group,
        users=_users(auth_file),
        artifacts=_artifacts(artifact_root),
        artifact_max_size=artifact_max_size,
        mlflow_ui=mlflow_ui,
    )
    _serve_http(app, host, port, f"runstream api listening on http://{host}:{port}")
