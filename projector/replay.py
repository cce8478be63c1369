"""`runstream replay`: every projection rebuilt from the log into a fresh database, then swapped in
while the old one keeps serving until then.

1. The projector itself (the same rows, the same dedup) projects the log into DATABASE_replay, from
   where that database's progress says (an interrupted replay carries on) up to the log's end at that
   moment; again while what the live pipeline wrote meanwhile is more than a short pause's worth.
2. The group's live projectors are asked to pause (pauses.py). Once every member has written and
   committed what it read, the live tables hold the log up to their progress, exactly: the replay
   projects the rest up to there.
3. The tables' rows are counted (FINAL: as queries count them). A replay holding fewer rows than the
   live tables is not swapped in (the log lacks events they hold) unless forced.
4. One EXCHANGE statement swaps every table; the pause is lifted and the live projectors carry on in
   the new tables from where they paused. The old tables are left in DATABASE_replay: dropped unless
   kept. The handover's own tables and the migration record stay where they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import LogMessage, Positions, merge_positions
from runstream.eventlog.ranges import LogRanges
from runstream.projector.migrate import migrate
from runstream.projector.pauses import Pauses
from runstream.projector.projector import Projector
from runstream.projector.retention import keep_raw_points, raw_points_kept_s
from runstream.store.applied import applied_positions

log = logging.getLogger(__name__)

KEEP_IN_PLACE = frozenset({"projector_pauses", "projector_pause_acks", "schema_migrations"})
UNCOUNTED = frozenset({"projector_progress", "dead_letters"})  # bookkeeping: retries may add rows
SHORT_REST = 1_000  # messages left for the projectors' pause (a message holds up to a batch of points)
HANDOVER_TIMEOUT_S = 120.0

Progress = Callable[[int, int, int], None]
"""Told (messages replayed, messages to replay in this pass, metric points written) as a pass goes."""


class ReplayRefused(RuntimeError):
    """The replay is complete but not swapped in: what it found is in the message."""


class RangeConsumer:
    """A consumer (ingest.log.base.LogConsumer) over one stretch of the log: done once every message
    it handed out is committed."""

    def __init__(self, batches: Iterator[list[LogMessage]]) -> None:
        self._batches = batches
        self._buffer: list[LogMessage] = []
        self._exhausted = False
        self._handed: Positions = {}
        self._committed: Positions = {}
        self.messages = 0

    def poll(self, max_messages: int, timeout: float) -> list[LogMessage]:
        while len(self._buffer) < max_messages and not self._exhausted:  # full polls: big inserts
            batch = next(self._batches, None)
            self._exhausted = batch is None
            self._buffer.extend(batch or [])
        if not self._buffer:
            time.sleep(timeout)
            return []
        out, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
        for message in out:
            self._handed[message.partition] = message.offset + 1
        self.messages += len(out)
        return out

    def commit(self, positions: Positions) -> None:
        merge_positions(self._committed, positions)

    @property
    def done(self) -> bool:
        handed = dict(self._handed)
        return self._exhausted and not self._buffer and all(self._committed.get(p, -1) >= o for p, o in handed.items())

    def lag(self) -> Positions:
        return {}

    def member(self) -> str:
        return "replay"

    def close(self) -> None:
        pass


@dataclass
class ReplayReport:
    database: str
    messages: int = 0
    points: int = 0
    seconds: float = 0.0
    projecting_s: float = 0.0  # of which spent projecting (the rest: handover, counts, swap)
    counts: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # table → (live before, replayed)
    swapped: bool = False

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0


def _next_positions(store: ClickHouse, group: str) -> Positions:
    return {p: offset + 1 for p, offset in applied_positions(store.client, group).items()}


def _rest(starts: Positions, ends: Positions) -> int:
    """Messages from the starts to the ends (offsets count messages in this log)."""
    return sum(max(0, end - starts.get(p, 0)) for p, end in ends.items())


def _project(
    target: ClickHouse, group: str, batches: Iterator[list[LogMessage]], on_step: Callable[[int, int], None]
) -> tuple[int, int]:
    """Projects `batches` into `target` as `group` would; returns (messages, points)."""
    consumer = RangeConsumer(batches)
    projector = Projector(lambda _handlers: consumer, target, group)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            projector.run()
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=run, name="replay-projector")
    worker.start()
    try:
        while worker.is_alive() and not consumer.done:
            worker.join(0.2)
            on_step(consumer.messages, projector.points_written)
    finally:
        projector.stop()
        worker.join()
    if failed:
        raise failed[0]
    on_step(consumer.messages, projector.points_written)
    return consumer.messages, projector.points_written


def _tables(store: ClickHouse) -> list[str]:
    rows = store.client.query(
        "SELECT name FROM system.tables WHERE database = {d:String} AND engine LIKE '%MergeTree' ORDER BY name",
        parameters={"d": store.url.database},
    ).result_rows
    return [str(row[0]) for row in rows if row[0] not in KEEP_IN_PLACE]


def _counts(store: ClickHouse, tables: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Each table's rows (database → table → rows), in one query: ClickHouse counts them at once."""
    parts = [f"SELECT '{d}', '{t}', count() FROM `{d}`.`{t}` FINAL" for d, names in tables.items() for t in names]
    counts: dict[str, dict[str, int]] = {d: {} for d in tables}
    for database, table, rows in store.client.query(" UNION ALL ".join(parts)).result_rows if parts else []:
        counts[database][table] = int(rows)
    return counts


class _Handover:
    """The live projectors paused for as long as the `with` block runs; the pause renewed meanwhile."""

    def __init__(self, live: ClickHouse, group: str, ranges: LogRanges) -> None:
        self._pauses = Pauses(live, group)
        self._group = group
        self._ranges = ranges
        self._request = ""
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="replay-pause", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(5.0):
            self._pauses.renew(self._request)

    def __enter__(self) -> None:
        self._request = self._pauses.request()
        self._renewer.start()
        deadline = time.monotonic() + HANDOVER_TIMEOUT_S
        while (
            waiting := self._ranges.members(self._group) - self._pauses.acked(self._request)
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        if waiting:
            self.__exit__()
            raise ReplayRefused(
                f"the live projectors {sorted(waiting)} of group {self._group!r} did not pause within "
                f"{HANDOVER_TIMEOUT_S:.0f} s (are they older than this replay?); nothing was swapped"
            )
        log.info("live projectors of %s paused for the handover", self._group)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join()
        self._pauses.lift(self._request)


def replay(
    ranges: LogRanges,
    live: ClickHouse,
    group: str,
    into: str | None = None,
    keep_previous: bool = False,
    force: bool = False,
    progress: Progress = lambda done, total, points: None,
) -> ReplayReport:
    """Rebuilds every projection of `live` (as consumer group `group` projects them) from `ranges`
    into a fresh database and swaps it in; see the module's docstring."""
    if live.cluster is not None:
        raise ValueError("replay onto a ClickHouse cluster is not supported yet: replay on one server")
    migrate(live)  # the live database as the projectors expect it, also when it was dropped
    target = live.sibling(into or f"{live.url.database}_replay")
    migrate(target)
    keep_raw_points(target, raw_points_kept_s(live))  # the tables swapped in keep the live retention policy
    report = ReplayReport(target.url.database)
    started = time.monotonic()

    def project_to(starts: Positions, ends: Positions) -> None:
        total = _rest(starts, ends)
        if total == 0:
            return  # e.g. the pause found nothing the first passes had not projected
        base_points, began = report.points, time.monotonic()
        messages, points = _project(
            target, group, ranges.read(starts, ends), lambda done, pts: progress(done, total, base_points + pts)
        )
        report.messages += messages
        report.points += points
        report.projecting_s += time.monotonic() - began

    passes = 0
    while True:  # the log as it is now, then again until what is left for the pause is short
        ends = ranges.ends()
        starts = _next_positions(target, group)
        rest = _rest(starts, ends)
        if rest == 0 or (passes and rest <= SHORT_REST):
            break
        project_to(starts, ends)
        passes += 1
    log.info("replayed %d events, %d points in %.1f s", report.messages, report.points, time.monotonic() - started)
    with _Handover(live, group, ranges):
        held = _next_positions(live, group)
        project_to(_next_positions(target, group), merge_positions(dict(ends), held))
        counting = time.monotonic()
        tables = _tables(target)
        counted = [t for t in tables if t not in UNCOUNTED]
        was, now = live.url.database, target.url.database
        counts = _counts(live, {was: [t for t in _tables(live) if t in counted], now: counted})
        report.counts = {t: (counts[was].get(t), n) for t, n in counts[now].items()}
        short = {t: (b, a) for t, (b, a) in report.counts.items() if b is not None and a < b}
        if short and not force:
            raise ReplayRefused(
                "the replay holds fewer rows than the live tables, so it was not swapped in (the log lacks "
                "events they hold; --force swaps anyway): "
                + ", ".join(f"{t} {a} < {b}" for t, (b, a) in sorted(short.items()))
            )
        log.info("counted the rows of %d tables in %.1f s", len(counted), time.monotonic() - counting)
        pairs = ", ".join(f"{live.url.database}.{t} AND {target.url.database}.{t}" for t in tables)
        live.client.command(f"EXCHANGE TABLES {pairs}")
        report.swapped = True
    report.seconds = time.monotonic() - started
    if not keep_previous:
        live.client.command(f"DROP DATABASE IF EXISTS {target.url.database} SYNC")
    return report
