"""MLflow's webhooks API on runstream: its answers (create, list, get, update, delete, test), and the
deliveries of registry changes to a local receiver, signed as MLflow signs them, retried, in log order,
and sent again by the next deliverer when the last one stopped before they were taken."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.local import LocalLog
from runstream.projector.projector import Projector
from runstream.server.app import build_app
from runstream.store.applied import PolledApplied
from runstream.webhooks.deliverer import Deliverer
from runstream.webhooks.send import Sender, sign
from tests.conftest import new_store
from tests.webhooks.receiver import Received, receiver

GROUP = "hooks"
API = "/api/2.0/mlflow"
SECRET = "s3cret"


class Pipeline:
    """The embedded pipeline in this process: log → projector → ClickHouse, MLflow's API over them,
    and deliverers started on demand."""

    def __init__(self, tmp_path: Path, store: ClickHouse) -> None:
        self.log = LocalLog(tmp_path / "events.sqlite3")
        self.store = store
        self.projector = Projector(lambda _handlers: self.log.consumer(GROUP), store, GROUP, max_wait_s=0.05)
        self.threads = [threading.Thread(target=self.projector.run)]
        self.threads[0].start()
        self.deliverers: list[Deliverer] = []
        self.http = TestClient(build_app("serve", log=self.log, store=store, consumer_group=GROUP))

    def deliver(self, retry_s: float = 30.0) -> Deliverer:
        applied = PolledApplied(self.store, GROUP)
        d = Deliverer(self.log.consumer(f"{GROUP}-webhooks"), self.store, applied, Sender(timeout_s=5, retry_s=retry_s))
        self.deliverers.append(d)
        self.threads.append(threading.Thread(target=d.run))
        self.threads[-1].start()
        return d

    def stop_deliverers(self) -> None:
        for d in self.deliverers:
            d.stop()
        for t in self.threads[1:]:
            t.join()
        self.deliverers, self.threads = [], self.threads[:1]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.http.request(method, f"{API}{path}", json=body)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def close(self) -> None:
        self.stop_deliverers()
        self.projector.stop()
        self.threads[0].join()
        self.log.close()


@pytest.fixture
def pipeline(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("RUNSTREAM_WEBHOOK_ALLOWED_SCHEMES", "http,https")  # the receiver: http on 127.0.0.1
    monkeypatch.setenv("RUNSTREAM_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    p = Pipeline(tmp_path, new_store(request, "embedded"))
    yield p
    p.close()


def events(*names: str) -> list[dict[str, str]]:
    return [dict(zip(("entity", "action"), n.upper().split("."), strict=True)) for n in names]


def create_webhook(p: Pipeline, url: str, *names: str, **more: Any) -> dict[str, Any]:
    body = {"name": "hook", "url": url, "events": events(*names), **more}
    webhook: dict[str, Any] = p.call("POST", "/webhooks", body)["webhook"]
    return webhook


def signed(r: Received) -> bool:
    h = r.headers
    return h["x-mlflow-signature"] == sign(SECRET, h["x-mlflow-delivery-id"], h["x-mlflow-timestamp"], r.body)


def test_registry_changes_are_delivered_signed_retried_and_in_log_order(pipeline: Pipeline) -> None:
    p = pipeline
    with receiver() as r:
        r.statuses = [503]  # the first attempt: retried
        p.deliver()
        subscribed = [
            "registered_model.created",
            "model_version.created",
            "model_version_tag.set",
            "model_version_alias.created",
            "model_version_alias.deleted",
            "prompt.created",
            "prompt_tag.set",
        ]
        create_webhook(p, r.url, *subscribed, secret=SECRET)
        quiet = create_webhook(p, f"{r.url}?disabled", *subscribed)
        p.call("PATCH", f"/webhooks/{quiet['webhook_id']}", {"status": "DISABLED"})
        p.call("POST", "/registered-models/create", {"name": "churn", "tags": [{"key": "team", "value": "ml"}]})
        version = {"name": "churn", "source": "s3://b/m", "description": "first", "tags": [{"key": "k", "value": "v"}]}
        p.call("POST", "/model-versions/create", version)
        p.call("POST", "/registered-models/alias", {"name": "churn", "alias": "champion", "version": "1"})
        p.call("POST", "/model-versions/set-tag", {"name": "churn", "version": "1", "key": "stage", "value": "ok"})
        p.call("DELETE", "/registered-models/alias", {"name": "churn", "alias": "champion"})
        p.call("POST", "/registered-models/set-tag", {"name": "churn", "key": "x", "value": "y"})  # no model event
        # MLflow's prompts: registered models tagged so, sent as prompt events without the marking tag.
        marked = [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "team", "value": "nlp"}]
        p.call("POST", "/registered-models/create", {"name": "greet", "tags": marked})
        p.call("POST", "/registered-models/set-tag", {"name": "greet", "key": "lang", "value": "en"})
        got = r.wait_for(lambda taken: len(taken) >= 8)
    assert [g.event for g in got] == [
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",  # the tag given at creation
        "model_version_alias.created",
        "model_version_tag.set",
        "model_version_alias.deleted",
        "prompt.created",
        "prompt_tag.set",
    ]
    data = [g.json["data"] for g in got]
    assert data[0] == {"name": "churn", "tags": {"team": "ml"}, "description": ""}
    created = data[1]
    # The version's tags as far as the projector held them when the delivery was planned.
    assert set(created.pop("tags").items()) <= {("k", "v"), ("stage", "ok")}
    assert created == {"name": "churn", "version": "1", "source": "s3://b/m", "run_id": None, "description": "first"}
    assert data[2:] == [
        {"name": "churn", "version": "1", "key": "k", "value": "v"},
        {"name": "churn", "alias": "champion", "version": "1"},
        {"name": "churn", "version": "1", "key": "stage", "value": "ok"},
        {"name": "churn", "alias": "champion"},
        {"name": "greet", "tags": {"team": "nlp"}, "description": ""},
        {"name": "greet", "key": "lang", "value": "en"},
    ]
    assert all(signed(g) for g in got) and len({g.headers["x-mlflow-delivery-id"] for g in got}) == 8
    refused = r.received[0]
    assert refused.answered == 503 and refused.headers["x-mlflow-delivery-id"] == got[0].headers["x-mlflow-delivery-id"]
    assert not [x for x in r.received if x.path.endswith("?disabled")]


def test_deliveries_not_taken_are_sent_again_by_the_next_deliverer(pipeline: Pipeline) -> None:
    """The first deliverer stops while the receiver is down: nothing was committed, so the next one
    (same group) sends the same delivery. A webhook created after an event is not sent it."""
    p = pipeline
    with receiver() as r:
        r.statuses = [503] * 10_000
        p.deliver(retry_s=600)
        create_webhook(p, r.url, "registered_model.created")
        p.call("POST", "/registered-models/create", {"name": "m1"})
        r.wait_for(lambda _taken: len(r.received) >= 2)  # refused, then refused again
        p.stop_deliverers()
        late = create_webhook(p, f"{r.url}?late", "registered_model.created")
        r.statuses = []
        p.deliver()
        p.call("POST", "/registered-models/create", {"name": "m2"})
        got = r.wait_for(lambda taken: len(taken) >= 3)
    first = r.received[0]
    by_path = {(g.path.endswith("?late"), g.json["data"]["name"]) for g in got}
    assert by_path == {(False, "m1"), (False, "m2"), (True, "m2")}
    again = next(g for g in got if g.json["data"]["name"] == "m1")
    assert again.headers["x-mlflow-delivery-id"] == first.headers["x-mlflow-delivery-id"]
    assert late["events"] == [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]


def test_the_webhooks_api_answers_as_mlflow(pipeline: Pipeline) -> None:
    p = pipeline
    with receiver() as r:
        made = create_webhook(
            p,
            r.url,
            "model_version.created",
            "model_version_alias.created",
            "model_version.created",
            description="d",
            secret=SECRET,
        )
        assert set(made) == {
            "webhook_id",
            "name",
            "description",
            "url",
            "events",
            "status",
            "creation_timestamp",
            "last_updated_timestamp",
        }  # never the secret
        assert (made["name"], made["status"], made["events"]) == (  # once each, in MLflow's order
            "hook",
            "ACTIVE",
            events("model_version.created", "model_version_alias.created"),
        )
        hook = made["webhook_id"]
        assert p.call("GET", f"/webhooks/{hook}")["webhook"] == made
        tested = p.call("POST", f"/webhooks/{hook}/test", {})["result"]
        assert tested == {"success": True, "response_status": 200, "response_body": "ok"}
        example = r.received[-1]
        assert example.event == "model_version.created" and example.json["data"]["name"] == "example_model"
        assert signed(example)
        alias = {"event": {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}}
        named = p.call("POST", f"/webhooks/{hook}/test", alias)
        assert named["result"]["success"] and r.received[-1].event == "model_version_alias.created"
        change = {"name": "renamed", "events": events("model_version_tag.set"), "status": "DISABLED"}
        changed = p.call("PATCH", f"/webhooks/{hook}", change)["webhook"]
        assert (changed["name"], changed["description"], changed["status"], changed["events"]) == (
            "renamed",
            "d",
            "DISABLED",
            [{"entity": "MODEL_VERSION_TAG", "action": "SET"}],
        )
        assert changed["creation_timestamp"] == made["creation_timestamp"]
        assert changed["last_updated_timestamp"] >= made["last_updated_timestamp"]
    down = create_webhook(p, "http://127.0.0.1:9/nothing", "registered_model.created")["webhook_id"]
    failed = p.call("POST", f"/webhooks/{down}/test")["result"]
    assert failed["success"] is False and failed["error_message"].startswith("Failed to test webhook")
    first = p.call("GET", "/webhooks?max_results=1")
    assert [w["webhook_id"] for w in first["webhooks"]] == [down]  # newest first
    second = p.call("GET", f"/webhooks?max_results=1&page_token={first['next_page_token']}")
    assert [w["webhook_id"] for w in second["webhooks"]] == [hook] and "next_page_token" not in second
    assert p.call("DELETE", f"/webhooks/{hook}") == {}
    assert [w["webhook_id"] for w in p.call("GET", "/webhooks")["webhooks"]] == [down]
    for method, path in [("GET", f"/webhooks/{hook}"), ("DELETE", f"/webhooks/{hook}"), ("PATCH", f"/webhooks/{hook}")]:
        missing = p.http.request(method, f"{API}{path}", json={})
        assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "-bad", "url": "https://example.com/h", "events": events("model_version.created")}, "name"),
        ({"name": "ok", "url": "https://example.com/h", "events": []}, "non-empty"),
        ({"name": "ok", "url": "https://example.com/h", "events": events("model_version.set")}, "Invalid action"),
        ({"name": "ok", "url": "ftp://example.com/h", "events": events("model_version.created")}, "scheme"),
        ({"name": "ok", "url": "https://example.com/h", "events": events("prompt.created"), "status": "x"}, "status"),
        ({"name": "ok", "url": "https://example.com/h"}, "events"),
    ],
)
def test_bad_webhooks_are_400s(pipeline: Pipeline, body: dict[str, Any], says: str) -> None:
    refused = pipeline.http.post(f"{API}/webhooks", json=body)
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE", refused.text
    assert says in refused.json()["message"]


def test_private_addresses_are_refused_unless_allowed(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNSTREAM_WEBHOOK_ALLOW_PRIVATE_IPS")
    body = {"name": "ok", "url": "http://127.0.0.1:8080/h", "events": events("model_version.created")}
    refused = pipeline.http.post(f"{API}/webhooks", json=body)
    assert refused.status_code == 400 and "non-public IP address" in refused.json()["message"]
    monkeypatch.setenv("RUNSTREAM_WEBHOOK_ALLOWED_SCHEMES", "https")
    refused = pipeline.http.post(f"{API}/webhooks", json=body)
    assert refused.status_code == 400 and "Allowed schemes are: https" in refused.json()["message"]
