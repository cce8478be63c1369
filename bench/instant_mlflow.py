"""An MLflow server that answers the calls of a run's creation at once, with fixed bodies and no
storage: timed through MLflow's client, it gives the client's own ceiling on this machine (what no
server can beat), beside which bench.run_creation puts runstream's and MLflow's figures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.services.ports import free_port

_INFO = {
    "run_id": "0" * 32,
    "run_uuid": "0" * 32,
    "experiment_id": "0",
    "run_name": "r",
    "user_id": "",
    "status": "RUNNING",
    "start_time": 1,
    "artifact_uri": "file:///tmp",
    "lifecycle_stage": "active",
}
_RUN = {"run": {"info": _INFO, "data": {"metrics": [], "params": [], "tags": []}, "inputs": {}}}
_ANSWERS = {"runs/create": _RUN, "runs/get": _RUN, "runs/update": {"run_info": _INFO}}


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # one connection per client, as with a real server

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stall

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        body = json.dumps(next((a for p, a in _ANSWERS.items() if path.endswith(p)), {})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def instant_mlflow() -> Iterator[str]:
    """The server's URL while it runs (in a thread of this process)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
