"""64 writer processes for 10 s, half SDK-over-Kafka, half through the HTTP gateway: every point
acknowledged is answered, once. (bench/load.py measures the same fleet unpaced, for longer.)"""

from __future__ import annotations

import clickhouse_connect

import runstream
from tests.integration.conftest import Stack
from tests.integration.load_writer import run_writers, summarize

WRITERS = 64
SECONDS = 10.0  # every writer meets ~15 flush cycles, the projector's batches hundreds; bench/load.py runs longer
PAUSE = 0.5  # each writer logs ~2,000 points/s: ~128k/s together, which the projector keeps up with


def test_64_writers_for_ten_seconds_lose_nothing(stack: Stack) -> None:
    stack.start("projector")
    _, gateway = stack.http_role("gateway")
    _, api = stack.http_role("api")
    uris = [stack.kafka_uri, gateway] * (WRITERS // 2)
    reports = run_writers(uris, SECONDS, PAUSE, {"RUNSTREAM_TOPIC_PREFIX": stack.env["RUNSTREAM_TOPIC_PREFIX"]})
    figures = summarize(reports, SECONDS)
    print(f"load: {figures}")

    client = runstream.Client(api)
    for report in reports:
        client.get_run(report["run_id"], after=report["token"])  # applied
    summaries = client.get_run_summaries([r["run_id"] for r in reports], ["x"])
    counts = {s["run_id"]: (s["count"], s["last_step"]) for s in summaries}
    assert counts == {r["run_id"]: (r["points"], r["points"] - 1) for r in reports}
    server, database = stack.clickhouse_url.rsplit("/", 1)
    stored = clickhouse_connect.get_client(dsn=server, database=database)
    assert stored.query("SELECT count() FROM metrics FINAL").result_rows == [(figures["points"],)]
    assert stored.query("SELECT count() FROM metrics").result_rows == [(figures["points"],)]  # no copy at all
