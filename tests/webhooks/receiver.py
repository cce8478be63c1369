"""A local webhook receiver: an HTTP server on 127.0.0.1 recording every POST with its arrival time,
answering the statuses it is told (then 200), or 503 while it is down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    answered: int
    at: float  # time.time()

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event(self) -> str:
        return f"{self.json['entity']}.{self.json['action']}"


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []  # answered in turn, then 200
        self.down_until = 0.0  # time.time() before which every POST is answered 503
        self.url = ""
        self._lock = threading.Lock()

    def answer(self, path: str, headers: dict[str, str], body: str) -> int:
        with self._lock:
            now = time.time()
            status = 503 if now < self.down_until else self.statuses.pop(0) if self.statuses else 200
            self.received.append(Received(path, headers, body, status, now))
            return status

    def taken(self) -> list[Received]:
        """What was answered below 400, in order."""
        with self._lock:
            return [r for r in self.received if r.answered < 400]

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while not done(self.taken()):
            assert time.monotonic() < deadline, f"timed out; received {[(r.answered, r.body) for r in self.received]}"
            time.sleep(0.05)
        return self.taken()


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            status = r.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    r.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        server.shutdown()
        server.server_close()
