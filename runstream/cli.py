"""The `runstream` command: one subcommand per role. Every flag has an environment variable."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runstream import roles

DEFAULT_GROUP = "runstream-projector"


F = TypeVar("F", bound=Callable[..., Any])


def _option(*names: str, envvar: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=envvar, show_envvar=True, show_default=True, **kwargs)


host = _option("--host", envvar="RUNSTREAM_HOST", default="127.0.0.1")
kafka = _option(
    "--kafka-bootstrap-servers", "bootstrap", envvar="RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092"
)
prefix = _option("--topic-prefix", envvar="RUNSTREAM_TOPIC_PREFIX", default="runstream.")
partitions = _option("--partitions", envvar="RUNSTREAM_KAFKA_PARTITIONS", default=6, help="when creating the topic")
clickhouse = _option(
    "--clickhouse-url", envvar="RUNSTREAM_CLICKHOUSE_URL", default="http://default:@127.0.0.1:8123/runstream"
)
group = _option("--consumer-group", envvar="RUNSTREAM_CONSUMER_GROUP", default=DEFAULT_GROUP)


@click.group()
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5000)
@_option("--data-dir", envvar="RUNSTREAM_DATA_DIR", default="./runstream-data", type=click.Path(path_type=Path))
def serve(host: str, port: int, data_dir: Path) -> None:
    """Gateway + projector + read API in one process, on embedded storage under --data-dir."""
    roles.serve(host, port, data_dir)


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5001)
@kafka
@prefix
@partitions
@_option(
    "--clickhouse-url",
    envvar="RUNSTREAM_CLICKHOUSE_URL",
    default=None,
    help="also serve MLflow's REST API (it reads back from ClickHouse); off without it",
)
@group
def gateway(
    host: str,
    port: int,
    bootstrap: str,
    topic_prefix: str,
    partitions: int,
    clickhouse_url: str | None,
    consumer_group: str,
) -> None:
    """HTTP writes → Kafka (and, with --clickhouse-url, MLflow's whole tracking API)."""
    roles.gateway(host, port, bootstrap, topic_prefix, partitions, clickhouse_url, consumer_group)


@main.command()
@kafka
@prefix
@clickhouse
@group
@partitions
def projector(bootstrap: str, topic_prefix: str, clickhouse_url: str, consumer_group: str, partitions: int) -> None:
    """Kafka → ClickHouse (run several: they share the partitions)."""
    roles.projector(bootstrap, topic_prefix, clickhouse_url, consumer_group, partitions)


@main.command()
@host
@_option("--port", envvar="RUNSTREAM_PORT", default=5002)
@clickhouse
@group
def api(host: str, port: int, clickhouse_url: str, consumer_group: str) -> None:
    """ClickHouse → the read API."""
    roles.api(host, port, clickhouse_url, consumer_group)
