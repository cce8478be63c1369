"""One batch → ClickHouse: every table it has rows for, at once, then the search rows of the runs it
touched (search_rows.py), then the log positions it covers (projector_progress, which read-your-writes
waits on). Safe to call again with the same batch after an error: rows collapse or are skipped by
their insert token (see migrations and dedup)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa

from runstream.base.clickhouse import ClickHouse
from runstream.projector.batch import Batch
from runstream.projector.search_rows import touched_runs, write_search_rows
from runstream.projector.state import state_rows
from runstream.store.tables import EVENT_TABLES, PROGRESS, STATE_TABLES

INSERTS_AT_ONCE = 8  # per batch: its metric tables and the few others a batch usually has rows for
INSERT_BLOCK_ROWS = 4_000_000  # > max_rows + one message: a batch's points land in one part
STREAM_SLICE_ROWS = 65_536
# Slices (and a batch of up to max_rows points and a message) are squashed into one block: one part.
ONE_BLOCK = {"max_insert_block_size": INSERT_BLOCK_ROWS, "min_insert_block_size_rows": INSERT_BLOCK_ROWS}


class BatchWriter:
    def __init__(self, store: ClickHouse, consumer_group: str, concurrent_batches: int = 1) -> None:
        self.store = store
        self.group = consumer_group
        # The tables are independent (each metric table records what it holds, the others collapse
        # replayed rows), so a server's inserts run at once: a batch takes as long as its slowest
        # insert instead of their sum, which is what a reader of its writes waits. The embedded engine
        # takes one query at a time, so there they go one after another without the threads' handoffs.
        self._inserts = (
            None
            if store.url.embedded
            else ThreadPoolExecutor(concurrent_batches * INSERTS_AT_ONCE, thread_name_prefix="insert")
        )
        # Without the column types an insert first asks for the table's (a DESCRIBE: a second query
        # per table per batch, ~40% of a one-row insert's time here). The types are asked once.
        self._types: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    def write(self, batch: Batch) -> None:
        # A retry of a failed write sends the same rows with the same token: on a cluster, shards that
        # got them the first time add nothing (a Distributed insert writes each shard separately).
        settings = self.store.insert_settings(batch.token)
        metric_tables, state = batch.metric_tables(), state_rows(batch.rows)
        inserts: list[Callable[[], None]] = [
            partial(self._insert_arrow, table, points, settings) for table, points in metric_tables.items()
        ]
        for columns, tables in ((EVENT_TABLES, batch.rows), (STATE_TABLES, state)):
            inserts.extend(partial(self._insert, t, rows, columns[t], settings) for t, rows in tables.items() if rows)
        if self._inserts is None:
            for insert in inserts:
                insert()
        else:
            # All of them end before an error is raised: a retry never overlaps an insert still running.
            futures = [self._inserts.submit(insert) for insert in inserts]
            wait(futures)
            for done in futures:
                done.result()
        write_search_rows(self.store.client, touched_runs(state, metric_tables), self.store.insert_settings())
        now = datetime.now(UTC)
        progress = [[self.group, p, offset - 1, now] for p, offset in batch.next_offsets.items()]
        self._insert("projector_progress", progress, PROGRESS, settings)

    def close(self) -> None:
        if self._inserts is not None:
            self._inserts.shutdown()

    def _insert(self, table: str, rows: list[Any], columns: list[str], settings: dict[str, Any]) -> None:
        client = self.store.client
        key = (table, tuple(columns))
        types = self._types.get(key)
        if types is None:
            context = client.create_insert_context(table, column_names=columns)
            types = self._types[key] = [t.name for t in context.column_types]
        client.insert(table, rows, column_names=columns, column_type_names=types, settings=settings)

    def _insert_arrow(self, table: str, rows: pa.Table, settings: dict[str, Any]) -> None:
        # Sent a slice at a time: a batch's encoding is never held whole beside its columns
        # (bench.backlog; README: Memory).
        stream = arrow_stream(rows)
        self.store.client.raw_insert(table, rows.column_names, stream, {**ONE_BLOCK, **settings}, "ArrowStream")


def arrow_stream(table: pa.Table, rows: int = STREAM_SLICE_ROWS) -> Generator[bytes, None, None]:
    """The table as an Arrow IPC stream, `rows` at a time."""
    written: list[bytes] = []
    sink = pa.PythonFile(_Collect(written), mode="w")
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=rows):
            writer.write_batch(batch)
            yield b"".join(written)
            written.clear()
    yield b"".join(written)  # the end-of-stream marker


class _Collect:
    """A file that keeps what is written to it, for arrow_stream to hand on."""

    closed = False

    def __init__(self, out: list[bytes]) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        self._out.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass
