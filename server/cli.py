"""The `runstream` command: one subcommand per role. Every flag has an environment variable."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from clickhouse_connect.driver.exceptions import ProgrammingError

from runstream.artifacts.store import DEFAULT_MAX_SIZE
from runstream.artifacts.stores import store_for
from runstream.base.auth import hash_password, hash_token
from runstream.base.clickhouse import DEFAULT_READ_LIMITS, ClickHouse, ReadLimits
from runstream.eventlog.archiver import DEFAULT_SEGMENT_BYTES, archive_pass
from runstream.eventlog.kafka import TopicSpec, events_topic
from runstream.eventlog.ranges import KafkaRanges, LocalRanges, LogRanges
from runstream.eventlog.segments import CorruptSegment, LogGap
from runstream.mlflow_api.web_ui import MlflowUiMissing, mlflow_ui_build
from runstream.projector.projector import BATCH_POINTS, BATCH_POINTS_MAX
from runstream.projector.replay import ReplayRefused, replay
from runstream.projector.retention import RawPointsPolicy, parse_age
from runstream.sdk.client import Client
from runstream.server import roles
from runstream.server.artifact_gc import Policy, collect
from runstream.server.progress import ProgressBar
from runstream.store.export import choose_runs, export

DEFAULT_GROUP = "runstream-projector"


F = TypeVar("F", bound=Callable[..., Any])


def _option(*names: str, envvar: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=envvar, show_envvar=True, show_default=True, **kwargs)


host = _option("--host", envvar="RUNSTREAM_HOST", default="127.0.0.1")
kafka = _option(
    "--kafka-bootstrap-servers", "bootstrap", envvar="RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092"
)
prefix = _option("--topic-prefix", envvar="RUNSTREAM_TOPIC_PREFIX", default="runstream.")


def topic_spec(command: F) -> F:
    """The options saying how a missing event topic is created, passed on as one `topic_spec`."""
    options = [
        _option("--partitions", envvar="RUNSTREAM_KAFKA_PARTITIONS", default=6, help="when creating the topic"),
        _option(
            "--replication-factor",
            envvar="RUNSTREAM_KAFKA_REPLICATION_FACTOR",
            type=int,
            default=None,
            help="when creating the topic [default: 3 with 3 or more brokers, else 1]",
        ),
        _option(
            "--min-insync-replicas",
            envvar="RUNSTREAM_KAFKA_MIN_INSYNC_REPLICAS",
            type=int,
            default=None,
            help="when creating the topic [default: replication factor - 1, at least 1]",
        ),
        _option(
            "--retention-ms",
            envvar="RUNSTREAM_KAFKA_RETENTION_MS",
            default=-1,
            help="when creating the topic; -1 keeps every event (the log is the source of truth)",
        ),
    ]

    @functools.wraps(command)
    def with_spec(
        partitions: int, replication_factor: int | None, min_insync_replicas: int | None, retention_ms: int, **kw: Any
    ) -> Any:
        return command(topic_spec=TopicSpec(partitions, replication_factor, min_insync_replicas, retention_ms), **kw)

    wrapped: Any = with_spec
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped  # type: ignore[no-any-return]


clickhouse = _option(
    "--clickhouse-url", envvar="RUNSTREAM_CLICKHOUSE_URL", default="http://default:@127.0.0.1:8123/runstream"
)
cluster = _option(
    "--clickhouse-cluster",
    envvar="RUNSTREAM_CLICKHOUSE_CLUSTER",
    default=None,
    help="a cluster in the servers' <remote_servers>: tables on every node, read and written through "
    "Distributed tables, sharded by run (Replicated* where the servers have Keeper)",
)
group = _option("--consumer-group", envvar="RUNSTREAM_CONSUMER_GROUP", default=DEFAULT_GROUP)
webhook_retry = _option(
    "--webhook-retry-s",
    envvar="RUNSTREAM_WEBHOOK_RETRY_S",
    default=300.0,
    help="how long a webhook delivery is retried (receiver unreachable, 429, 5xx) before it is given up",
)
auth_file = _option(
    "--auth-file",
    envvar="RUNSTREAM_AUTH_FILE",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="users, hashed secrets and access (TOML; see base/auth.py); without it, no auth",
)
artifact_root = _option(
    "--artifact-root",
    envvar="RUNSTREAM_ARTIFACT_ROOT",
    default=None,
    help="s3://bucket/prefix (endpoint, credentials: AWS_* variables) or a folder",
)
archive_root = _option(
    "--archive-root",
    envvar="RUNSTREAM_ARCHIVE_ROOT",
    default=None,
    help="the log's archive: s3://bucket/prefix (AWS_* variables) or a folder",
)
artifact_max_size = _option(
    "--artifact-max-size", envvar="RUNSTREAM_ARTIFACT_MAX_SIZE", default=DEFAULT_MAX_SIZE, help="bytes per file"
)

mlflow_ui = _option(
    "--mlflow-ui",
    envvar="RUNSTREAM_MLFLOW_UI",
    is_flag=True,
    help="also serve MLflow's own web app at /mlflow/ (from the installed mlflow: runstream[mlflow-ui])",
)


def _raw_points_policy(ctx: click.Context, param: click.Parameter, value: str | None) -> RawPointsPolicy | None:
    if value is None:
        return None
    try:
        return RawPointsPolicy(parse_age(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


keep_raw_points = _option(
    "--keep-raw-points",
    "raw_points",
    envvar="RUNSTREAM_KEEP_RAW_POINTS",
    default=None,
    callback=_raw_points_policy,
    help="how long raw metric points are kept after they are written (90d, 12h, 30m, 45s, or forever); "
    "older ones are dropped and their charts read the 64-step rollup, their summaries stay. Unset: the "
    "policy the database has (forever until one is set)",
)


def _mlflow_ui_build(wanted: bool) -> Path | None:
    """The web app's files, checked before anything starts."""
    try:
        return mlflow_ui_build() if wanted else None
    except MlflowUiMissing as exc:
        raise click.UsageError(str(exc)) from exc


def read_limits(command: F) -> F:
    """The limits every read's ClickHouse query runs under, passed on as one `limits`."""
    default = DEFAULT_READ_LIMITS
    options = [
        _option(
            "--read-timeout",
            envvar="RUNSTREAM_READ_TIMEOUT",
            default=default.seconds,
            help="seconds one read's query may run (ClickHouse max_execution_time); past it: 429",
        ),
        _option(
            "--read-max-memory",
            envvar="RUNSTREAM_READ_MAX_MEMORY",
            default=default.memory_bytes,
            help="bytes one read's query may use (ClickHouse max_memory_usage); past it: 429",
        ),
    ]

    @functools.wraps(command)
    def with_limits(read_timeout: float, read_max_memory: int, **kw: Any) -> Any:
        return command(limits=ReadLimits(read_timeout, read_max_memory), **kw)

    wrapped: Any = with_limits
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped  # type: ignore[no-any-return]


@click.group()
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5000)
@_option("--data-dir", envvar="RUNSTREAM_DATA_DIR", default="./runstream-data", type=click.Path(path_type=Path))
@auth_file
@artifact_root
@artifact_max_size
@read_limits
@mlflow_ui
@webhook_retry
@keep_raw_points
def serve(
    host: str,
    port: int,
    data_dir: Path,
    auth_file: Path | None,
    artifact_root: str | None,
    artifact_max_size: int,
    limits: ReadLimits,
    mlflow_ui: bool,
    webhook_retry_s: float,
    raw_points: RawPointsPolicy | None,
) -> None:
    """Gateway + projector + read API + webhook deliveries in one process, on embedded storage under
    --data-dir (artifacts in --data-dir/artifacts unless --artifact-root says otherwise)."""
    ui = _mlflow_ui_build(mlflow_ui)
    roles.serve(
        host, port, data_dir, auth_file, artifact_root, artifact_max_size, limits, ui, webhook_retry_s, raw_points
    )


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5001)
@kafka
@prefix
@topic_spec
@_option(
    "--clickhouse-url",
    envvar="RUNSTREAM_CLICKHOUSE_URL",
    default=None,
    help="also serve MLflow's REST API (it reads back from ClickHouse); off without it",
)
@cluster
@group
@auth_file
@artifact_root
@artifact_max_size
@read_limits
def gateway(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    topic_spec: TopicSpec,
    clickhouse_url: str | None,
    clickhouse_cluster: str | None,
    consumer_group: str,
    auth_file: Path | None,
    artifact_root: str | None,
    artifact_max_size: int,
    limits: ReadLimits,
) -> None:
    """HTTP writes → Kafka (with --clickhouse-url, MLflow's whole tracking API too; with --artifact-root,
    artifact upload URLs)."""
    roles.gateway(
        host,
        port,
        bootstrap,
        topic_prefix,
        topic_spec,
        clickhouse_url,
        clickhouse_cluster,
        consumer_group,
        auth_file,
        artifact_root,
        artifact_max_size,
        limits,
    )


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5003, help="for /health, /ready and /metrics")
@kafka
@prefix
@clickhouse
@cluster
@group
@topic_spec
@_option(
    "--inserts-in-flight",
    envvar="RUNSTREAM_INSERTS_IN_FLIGHT",
    type=click.IntRange(min=1),
    default=2,
    help="batches written at once, each for its own share of the partitions",
)
@_option(
    "--batch-points",
    envvar="RUNSTREAM_BATCH_POINTS",
    type=click.IntRange(min=1000, max=BATCH_POINTS_MAX),
    default=BATCH_POINTS,
    help="metric points per insert at most: a backlog is worked off in batches this big, and the"
    " projector's memory grows with it (README: Memory)",
)
@keep_raw_points
def projector(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    topic_spec: TopicSpec,
    inserts_in_flight: int,
    batch_points: int,
    raw_points: RawPointsPolicy | None,
) -> None:
    """Kafka → ClickHouse (run several: they share the partitions)."""
    roles.projector(
        host,
        port,
        bootstrap,
        topic_prefix,
        clickhouse_url,
        clickhouse_cluster,
        consumer_group,
        topic_spec,
        inserts_in_flight,
        raw_points,
        batch_points,
    )


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5004, help="for /health, /ready and /metrics")
@kafka
@prefix
@clickhouse
@cluster
@group
@topic_spec
@webhook_retry
def webhooks(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    topic_spec: TopicSpec,
    webhook_retry_s: float,
) -> None:
    """Registry events → MLflow webhooks: delivers, at least once, what the projector of
    --consumer-group has applied, as the group <consumer-group>-webhooks (run several: they share it)."""
    roles.webhooks(
        host,
        port,
        bootstrap,
        topic_prefix,
        clickhouse_url,
        clickhouse_cluster,
        consumer_group,
        topic_spec,
        webhook_retry_s,
    )


@main.command()
@clickhouse
@cluster
@_option("--artifact-root", envvar="RUNSTREAM_ARTIFACT_ROOT", required=True, help="s3://bucket/prefix or a folder")
@_option(
    "--artifact-policy",
    envvar="RUNSTREAM_ARTIFACT_POLICY",
    type=click.Choice(["keep", "delete"]),
    default="delete",
    help="what happens to a deleted run's artifacts",
)
@_option("--grace", envvar="RUNSTREAM_ARTIFACT_GRACE_S", default=7 * 86400.0, help="seconds a run stays deleted first")
@_option("--stale-uploads", envvar="RUNSTREAM_ARTIFACT_STALE_UPLOAD_S", default=86400.0, help="abort older uploads")
def gc(
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    artifact_root: str,
    artifact_policy: Policy,
    grace: float,
    stale_uploads: float,
) -> None:
    """Artifact garbage collection (run it from cron): deleted runs' and logged models' artifacts,
    abandoned uploads."""
    store = ClickHouse(clickhouse_url, clickhouse_cluster)
    done = collect(store.client, store_for(artifact_root), artifact_policy, grace, stale_uploads)
    click.echo(
        f"runs: {done.runs}, models: {done.models}, objects removed: {done.objects}, "
        f"uploads aborted: {done.aborted_uploads}"
    )


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5002)
@clickhouse
@cluster
@group
@auth_file
@artifact_root
@artifact_max_size
@read_limits
@mlflow_ui
def api(
    host: str,
    port: int,
    clickhouse_url: str,
    clickhouse_cluster: str | None,
    consumer_group: str,
    auth_file: Path | None,
    artifact_root: str | None,
    artifact_max_size: int,
    limits: ReadLimits,
    mlflow_ui: bool,
) -> None:
    """ClickHouse → the read API (and artifacts, given --artifact-root)."""
    ui = _mlflow_ui_build(mlflow_ui)
    roles.api(
        host,
        port,
        clickhouse_url,
        clickhouse_cluster,
        consumer_group,
        auth_file,
        artifact_root,
        artifact_max_size,
        limits,
        ui,
    )


# What a long command may meet that is not a bug: said in one line, exit status 1.
_COMMAND_ERRORS = (LogGap, CorruptSegment, ReplayRefused, ConnectionError, LookupError, ValueError)


@main.command()
@kafka
@prefix
@archive_root
@_option("--segment-bytes", envvar="RUNSTREAM_ARCHIVE_SEGMENT_BYTES", default=DEFAULT_SEGMENT_BYTES)
@_option(
    "--every",
    envvar="RUNSTREAM_ARCHIVE_EVERY_S",
    type=float,
    default=None,
    help="seconds between passes (a role that keeps archiving); without it, one pass",
)
def archive(
    bootstrap: str, topic_prefix: str, archive_root: str | None, segment_bytes: int, every: float | None
) -> None:
    """Kafka → closed, checksummed segments in --archive-root, so the log outlives the topic's retention
    and its brokers' disks. A pass carries on where the archive ends."""
    if archive_root is None:
        raise click.UsageError("--archive-root (RUNSTREAM_ARCHIVE_ROOT) is needed")
    store, topic = store_for(archive_root), events_topic(topic_prefix)
    while True:
        try:
            with ProgressBar(f"archive {topic}", "messages") as bar:
                written = archive_pass(bootstrap, topic, store, segment_bytes, lambda done, total: bar(done, total))
        except _COMMAND_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc
        messages = sum(s.next - s.first for s in written)
        click.echo(f"archived {len(written)} segments (offsets for {messages} messages) into {store.root_uri}")
        if every is None:
            return
        time.sleep(every)


@main.command("replay")
@kafka
@prefix
@clickhouse
@group
@archive_root
@_option(
    "--data-dir",
    envvar="RUNSTREAM_DATA_DIR",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="the embedded setup instead (its log and database; stop `runstream serve` first)",
)
@_option(
    "--into", envvar="RUNSTREAM_REPLAY_DATABASE", default=None, help="the database built [default: DATABASE_replay]"
)
@click.option("--keep-previous", is_flag=True, help="keep the replaced tables, in the --into database")
@click.option("--force", is_flag=True, help="swap even where the replay holds fewer rows than the live tables")
def replay_command(
    bootstrap: str,
    topic_prefix: str,
    clickhouse_url: str,
    consumer_group: str,
    archive_root: str | None,
    data_dir: Path | None,
    into: str | None,
    keep_previous: bool,
    force: bool,
) -> None:
    """Rebuilds every projection from the log (archive + Kafka, or the embedded log) into a fresh
    database, checks its row counts and swaps it in; the live projectors pause for the swap and carry on."""
    ranges: LogRanges
    if data_dir is not None:
        ranges, group_ = LocalRanges(roles.embedded_log(data_dir.resolve())), roles.EMBEDDED_GROUP
        url = roles.embedded_clickhouse(data_dir.resolve())
    else:
        archive = store_for(archive_root) if archive_root else None
        ranges, group_, url = (
            KafkaRanges(bootstrap, events_topic(topic_prefix), archive),
            consumer_group,
            clickhouse_url,
        )
    try:
        live = ClickHouse(url)
        with ProgressBar("replay", "events") as bar:
            report = replay(ranges, live, group_, into, keep_previous, force, bar)
    except ProgrammingError as exc:  # the embedded engine opens one data directory per process
        raise click.ClickException(f"cannot open {url} (is `runstream serve` running on it?): {exc}") from exc
    except _COMMAND_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"replayed {report.messages:,} events, {report.points:,} metric points in {report.seconds:.1f} s "
        f"({report.points_per_s:,.0f} points/s); swapped into {live.url.database}"
    )
    for table, (before, after) in sorted(report.counts.items()):
        click.echo(f"  {table:<28} {'-' if before is None else f'{before:,}':>14} → {after:,}")


@main.command("export")
@clickhouse
@_option(
    "--data-dir",
    envvar="RUNSTREAM_DATA_DIR",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="the embedded setup's database instead (stop `runstream serve` first)",
)
@click.option("--experiment", default=None, help="only this experiment's runs (its name or id)")
@click.option("--run", "run_id", default=None, help="only this run")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="the folder written")
def export_command(
    clickhouse_url: str, data_dir: Path | None, experiment: str | None, run_id: str | None, out: Path
) -> None:
    """Runs, params, tags and every metric point as Parquet (a folder of parts per table, read whole by
    pandas, polars and DuckDB); started again, an interrupted export writes only what is missing."""
    url = roles.embedded_clickhouse(data_dir.resolve()) if data_dir is not None else clickhouse_url
    try:
        store = ClickHouse(url, create=False)
        with ProgressBar("export", "parts") as bar:
            written = export(store, out, lambda: choose_runs(store, experiment, run_id), bar)
    except ProgrammingError as exc:
        raise click.ClickException(f"cannot open {url} (is `runstream serve` running on it?): {exc}") from exc
    except _COMMAND_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported into {out}: " + ", ".join(f"{name} {rows:,} rows" for name, rows in written.items()))


@main.command("hash-secret")
@click.option("--token", is_flag=True, help="hash an API token (for `tokens`) instead of a password")
def hash_secret(token: bool) -> None:
    """Prints the hash of a password or token (read from the terminal) for the auth file."""
    secret = click.prompt("token" if token else "password", hide_input=True, confirmation_prompt=not token)
    click.echo(hash_token(secret) if token else hash_password(secret))


def _tracking(command: F) -> F:
    return click.option(
        "--tracking-uri",
        envvar="RUNSTREAM_TRACKING_URI",
        default=None,
        help="the runstream server (default: $RUNSTREAM_TRACKING_URI, else http://127.0.0.1:5000)",
    )(command)


def _reported(call: Callable[[Client], None], tracking_uri: str | None) -> None:
    """Runs a report against the server; its refusal (4xx) or absence is the command's error."""
    try:
        with Client(tracking_uri, retry_for_s=10) as client:
            call(client)
    except httpx.HTTPStatusError as exc:
        raise click.ClickException(f"{exc.response.status_code}: {exc.response.json().get('message', exc)}") from exc
    except (httpx.HTTPError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.argument("model")
@click.argument("version")
@click.option("--env", "environment", required=True, help="where it now serves: prod, eu-canary, ...")
@click.option("--note", default="", help="a release, a ticket, a commit: shown in the model's history")
@_tracking
def deploy(model: str, version: str, environment: str, note: str, tracking_uri: str | None) -> None:
    """Records that VERSION of registered model MODEL now serves in an environment (call it from the
    deploy tool once the rollout is done)."""
    _reported(lambda c: c.record_deployment(model, version, environment, note), tracking_uri)
    click.echo(f"{model} v{version} serves in {environment}")


@main.command()
@click.argument("model")
@click.option("--env", "environment", required=True, help="where it no longer serves")
@click.option("--note", default="", help="why: shown in the model's history")
@_tracking
def undeploy(model: str, environment: str, note: str, tracking_uri: str | None) -> None:
    """Records that no version of registered model MODEL serves in an environment any more."""
    _reported(lambda c: c.remove_deployment(model, environment, note), tracking_uri)
    click.echo(f"{model} no longer serves in {environment}")
