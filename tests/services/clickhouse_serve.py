"""Serve a real ClickHouse (HTTP + native TCP) from chdb-core's engine until SIGTERM.

Run by clickhouse_server.py as `python clickhouse_serve.py DATA_DIR HTTP_PORT`, in a
directory holding config.xml: the engine reads listen_host and ports only from there.

chdb's one-shot `_chdb.query` runs clickhouse-local in this process; `SYSTEM START
LISTEN` opens real listeners that live only while that call runs, so the call ends
with a query that never finishes. On SIGTERM/SIGINT we kill that query over HTTP, the
call returns and the engine shuts down cleanly. One such server per process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import urllib.parse
import urllib.request
import uuid

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def kill_keepalive(http_port: int, tag: str) -> None:
    """Cancel the never-ending query, and only it (KILL QUERY WHERE 1 would stop all)."""
    sql = f"KILL QUERY WHERE query LIKE '%{tag}%' AND query NOT LIKE '%KILL QUERY%' SYNC"
    url = f"http://127.0.0.1:{http_port}/?" + urllib.parse.urlencode({"query": sql})
    request = urllib.request.Request(url, data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def main() -> int:
    data_dir, http_port = sys.argv[1], int(sys.argv[2])
    # Block the stop signals before the engine loads and starts threads (they inherit
    # the mask), so only the main thread's sigtimedwait gets them. Otherwise the kernel
    # may hand SIGTERM to an engine thread (default action: die on the spot), and a
    # Python handler would never run while the main thread sat inside the C call.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    from chdb import _chdb  # after the mask, see above

    tag = f"runstream_keepalive_{uuid.uuid4().hex}"
    sql = (
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        f"SELECT sleepEachRow(1), '{tag}' FROM system.numbers SETTINGS max_block_size=1, "
        "function_sleep_max_microseconds_per_block=0, max_execution_time=0 FORMAT Null"
    )

    def serve() -> None:
        # Engine errors are printed to stderr, not raised. chdb's stub file lacks
        # `query`, which the extension module has.
        _chdb.query(sql, "TabSeparated", path=data_dir)  # type: ignore[attr-defined]

    parent = os.getppid()
    server = threading.Thread(target=serve, name="clickhouse")
    server.start()
    while server.is_alive():
        # Stop on a signal, or once the process that started us is gone (no orphans).
        stop = signal.sigtimedwait(STOP_SIGNALS, 0.2) is not None
        if stop or os.getppid() != parent:
            break
    else:
        print("clickhouse serve: the server query ended (error above?)", file=sys.stderr)
        return 1
    print("clickhouse serve: stopping", file=sys.stderr, flush=True)
    try:
        kill_keepalive(http_port, tag)
    except OSError:  # cannot stop cleanly: do not hang on the engine thread
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    server.join()
    print("clickhouse serve: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
