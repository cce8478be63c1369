"""The projector's steps, each alone (decode, project, batch) and chained by `consume`, without a log
or a database: what each makes of a message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runstream.eventlog.base import LogMessage
from runstream.projector.batch import Batch
from runstream.projector.decode import BAD_EVENT, decode_event
from runstream.projector.project import project
from runstream.projector.projector import consume
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, metric_columns
from runstream.store.tables import EVENT_TABLES

RUN = "0123456789abcdef0123456789abcdef"


def message(name_record: tuple[str, dict[str, Any]], offset: int = 7, partition: int = 2) -> LogMessage:
    return LogMessage(partition, offset, RUN, encode(*name_record))


def points(n: int) -> tuple[str, dict[str, Any]]:
    columns = MetricColumns(
        run_id=RUN,
        rank=0,
        node="n",
        keys=["loss", "acc"],
        key_index=np.arange(n, dtype=np.uint16) % 2,
        values=np.linspace(0, 1, n),
        steps=np.arange(n),
        timestamps=np.arange(n),
    )
    return event("MetricBatch", **metric_batch_fields(columns))


def test_decode_gives_the_event_with_its_place_in_the_log() -> None:
    name_record = event("TagsSet", run_id=RUN, tags={"a": "b"})
    decoded = decode_event(message(name_record, offset=41))
    assert (decoded.name, decoded.partition, decoded.offset) == ("TagsSet", 2, 41)
    assert decoded.time == (name_record[1]["header"]["event_time"], 41)
    assert decoded.event_id == name_record[1]["header"]["event_id"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"not avro", "marker"), (encode(*event("TagsSet", run_id="ABC", tags={})), "32 lowercase hex")],
)
def test_decode_refuses_bytes_that_are_no_valid_event(value: bytes, reason: str) -> None:
    with pytest.raises(BAD_EVENT, match=reason):
        decode_event(LogMessage(0, 0, RUN, value))


def test_project_lays_rows_out_as_the_catalog_lists_the_columns() -> None:
    created = event(
        "RunCreated",
        run_id=RUN,
        experiment_id="0",
        run_name="r",
        user_id="u",
        start_time=1,
        parent_run_id=None,
        artifact_uri="file:///a",
        tags={"t": "v"},
    )
    rows: dict[str, list[list[Any]]] = {table: [] for table in EVENT_TABLES}
    project(decode_event(message(created)), rows)
    assert {table for table, got in rows.items() if got} == {"run_events", "run_tags"}
    for table in ("run_events", "run_tags"):
        (row,) = rows[table]
        assert len(row) == len(EVENT_TABLES[table])
        assert dict(zip(EVENT_TABLES[table], row, strict=True))["run_id"] == RUN
    assert dict(zip(EVENT_TABLES["run_tags"], rows["run_tags"][0], strict=True))["key"] == "t"


def test_consume_batches_points_as_columns_and_bad_messages_as_dead_letters() -> None:
    batch = Batch("g")
    consume(message(points(10), offset=5), batch, None)
    consume(LogMessage(2, 6, RUN, b"junk"), batch, None)
    consume(message(event("TagsSet", run_id=RUN, tags={"a": "b"}), offset=9, partition=3), batch, None)
    assert (batch.messages, batch.metric_points) == (3, 10)
    assert batch.next_offsets == {2: 7, 3: 10}
    assert batch.token == "g/2:5-7,3:9-10"  # what a retry of the batch's inserts carries
    (dead,) = batch.rows["dead_letters"]
    assert dead[2:4] == [2, 6]
    assert len(batch.rows["run_tags"]) == 1
    tables = batch.metric_tables()
    assert sorted(tables) == ["metric_rollup", "metric_summary", "metrics"]
    assert tables["metrics"].num_rows == 10
    assert sorted(set(tables["metrics"].column("key").to_pylist())) == ["acc", "loss"]


def test_a_batch_builds_its_tables_once_and_lets_the_columns_go() -> None:
    batch = Batch("g")
    consume(message(points(10), offset=5), batch, None)
    tables = batch.metric_tables()
    assert batch.metrics == []  # a retry of the write inserts the same tables
    assert batch.metric_tables() is tables and tables["metrics"].num_rows == 10


def test_points_a_table_already_holds_are_left_out_of_it() -> None:
    batch = Batch("g")
    decoded = decode_event(message(points(4)))
    batch.add_points(metric_columns(decoded.record), decoded, needed=(False, True, False))
    assert sorted(batch.metric_tables()) == ["metric_rollup"]
    batch = Batch("g")
    batch.add_points(metric_columns(decoded.record), decoded, needed=(False, False, False))
    assert (batch.metric_points, batch.metric_tables()) == (0, {})
