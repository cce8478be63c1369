"""The handover between a replay and a consumer group's live projectors (projector/replay.py), through
two tables of the live database (migrations/007): the replay asks the group to pause; each projector
writes and commits what it has read, says so, and writes nothing more until the pause is lifted, or
lapses (a replay that dies holds the pipeline up for PAUSE_S at most; a live one renews it). Every
time is the ClickHouse server's, so the hosts' clocks do not matter."""

from __future__ import annotations

import uuid

from runstream.base.clickhouse import ClickHouse

PAUSE_S = 60.0


class Pauses:
    def __init__(self, store: ClickHouse, consumer_group: str) -> None:
        self._store = store
        self._group = consumer_group

    def _set(self, request: str, until: str) -> None:
        self._store.client.command(
            f"INSERT INTO projector_pauses (consumer_group, request, until) SELECT {{g:String}}, {{r:String}}, {until}",
            parameters={"g": self._group, "r": request, "ms": int(PAUSE_S * 1000)},
        )

    def request(self) -> str:
        """Asks the group's projectors to pause; returns the request, to renew and lift."""
        request = uuid.uuid4().hex
        self.renew(request)
        return request

    def renew(self, request: str) -> None:
        self._set(request, "now64(3) + toIntervalMillisecond({ms:UInt32})")

    def lift(self, request: str) -> None:
        self._set(request, "toDateTime64(0, 3)")

    def active(self) -> str | None:
        """The pause in force for the group, if any."""
        rows = self._store.client.query(
            "SELECT request FROM projector_pauses FINAL WHERE consumer_group = {g:String} AND until > now64(3) "
            "ORDER BY updated_at LIMIT 1",
            parameters={"g": self._group},
        ).result_rows
        return str(rows[0][0]) if rows else None

    def ack(self, request: str, member: str) -> None:
        """Says that `member` has written and committed everything it read, and is paused."""
        columns = ["consumer_group", "request", "member"]
        self._store.client.insert("projector_pause_acks", [[self._group, request, member]], column_names=columns)

    def acked(self, request: str) -> set[str]:
        rows = self._store.client.query(
            "SELECT DISTINCT member FROM projector_pause_acks "
            "WHERE consumer_group = {g:String} AND request = {r:String}",
            parameters={"g": self._group, "r": request},
        ).result_rows
        return {str(row[0]) for row in rows}
