"""The embedded mode's event log: one SQLite file in WAL mode with synchronous=FULL, so an append
is acknowledged only after fsync. Concurrent appends are group-committed by one writer thread (one
fsync for many requests). One partition (0); offsets are SQLite rowids."""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

from runstream.eventlog.base import AppendFailed, LogMessage, Positions

PARTITION = 0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (offset INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
                                   value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_offsets (consumer_group TEXT PRIMARY KEY, next_offset INTEGER NOT NULL);
"""
_MAX_GROUP = 512  # appends per transaction


def _end_offset(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(offset), 0) FROM events").fetchone()[0])


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def end_offset(path: Path) -> int:
    """The offset of the last message in the log's file (0: none)."""
    conn = _connect(path)
    try:
        return _end_offset(conn)
    finally:
        conn.close()


def read_range(path: Path, start: int, end: int, batch: int = 5000) -> Iterator[list[LogMessage]]:
    """The messages from offset `start` up to (not including) `end`, straight from the log's file."""
    conn = _connect(path)
    try:
        while start < end:
            rows = conn.execute(
                "SELECT offset, key, value FROM events WHERE offset >= ? AND offset < ? ORDER BY offset LIMIT ?",
                (start, end, batch),
            ).fetchall()
            if not rows:
                return
            yield [LogMessage(PARTITION, offset, key, value) for offset, key, value in rows]
            start = rows[-1][0] + 1
    finally:
        conn.close()


class LocalLog:
    """Append side. Thread-safe; `append` blocks until the messages are on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(path)
        self._conn.executescript(_SCHEMA)
        self._pending: queue.Queue[tuple[list[tuple[str, bytes]], Future[int]] | None] = queue.Queue()
        self.appended = threading.Condition()  # notified after each commit, for in-process consumers
        self._writer = threading.Thread(target=self._write_loop, name="local-log-writer", daemon=True)
        self._writer.start()

    def append(self, messages: Iterable[tuple[str, bytes]]) -> Positions:
        batch = list(messages)
        if not batch:
            return {}
        done: Future[int] = Future()
        self._pending.put((batch, done))
        try:
            return {PARTITION: done.result()}
        except Exception as exc:
            raise AppendFailed(str(exc)) from exc

    def _write_loop(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            group = [item]
            while len(group) < _MAX_GROUP:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._pending.put(None)  # finish this group, then stop
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[tuple[list[tuple[str, bytes]], Future[int]]]) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            last: list[int] = []
            for batch, _ in group:
                self._conn.executemany("INSERT INTO events (key, value) VALUES (?, ?)", batch)
                last.append(self._conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            self._conn.execute("COMMIT")
        except Exception as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            for _, done in group:
                done.set_exception(exc)
            return
        for (_, done), offset in zip(group, last, strict=True):
            done.set_result(offset)
        with self.appended:
            self.appended.notify_all()

    def end_offset(self) -> int:
        return _end_offset(self._conn)

    def check(self) -> None:
        if not self._writer.is_alive():
            raise AppendFailed("the local log's writer has stopped")

    def consumer(self, group: str) -> LocalLogConsumer:
        return LocalLogConsumer(self, group)

    def close(self) -> None:
        self._pending.put(None)
        self._writer.join(timeout=30)
        self._conn.close()


class LocalLogConsumer:
    def __init__(self, log: LocalLog, group: str) -> None:
        self._log = log
        self._group = group
        self._conn = _connect(log.path)
        row = self._conn.execute(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = ?", (group,)
        ).fetchone()
        self._next = int(row[0]) if row else 1

    def poll(self, max_messages: int, timeout: float) -> list[LogMessage]:
        with self._log.appended:  # read under the lock, so no commit's notify falls between read and wait
            rows = self._read(max_messages)
            if not rows and self._log.appended.wait(timeout):
                rows = self._read(max_messages)
        if rows:
            self._next = rows[-1][0] + 1
        return [LogMessage(PARTITION, offset, key, value) for offset, key, value in rows]

    def _read(self, limit: int) -> list[tuple[int, str, bytes]]:
        return self._conn.execute(
            "SELECT offset, key, value FROM events WHERE offset >= ? ORDER BY offset LIMIT ?",
            (self._next, limit),
        ).fetchall()

    def commit(self, positions: Positions) -> None:
        if PARTITION in positions:
            self._conn.execute(
                "INSERT INTO consumer_offsets (consumer_group, next_offset) VALUES (?, ?) "
                "ON CONFLICT (consumer_group) DO UPDATE SET next_offset = excluded.next_offset",
                (self._group, positions[PARTITION]),
            )

    def lag(self) -> Positions:
        return {PARTITION: max(0, _end_offset(self._conn) - (self._next - 1))}

    def member(self) -> str:
        return self._group  # one consumer per group reads the one partition

    def close(self) -> None:
        self._conn.close()
