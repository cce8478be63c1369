"""Model registry events → rows of the registry tables (migrations/004_registry.sql), of promotion
gates' decisions (009_gates.sql) and deployment records (010_deployments.sql), and of webhooks'
(008_webhooks.sql), which MLflow keeps in its registry too."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runstream.projector.decode import Time

Row = list[Any]
Rows = dict[str, list[Row]]

Handler = Callable[[Rows, dict[str, Any], Time, bytes], None]


def _model(kind: str) -> Handler:
    def handle(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
        rows["registered_model_events"].append(
            [r["registered_model_id"], *t, eid, kind, r.get("name"), r.get("description", ""), r["user"]]
        )
        if kind == "created":
            _model_tags(rows, r["registered_model_id"], r["tags"], t, eid)

    return handle


def _model_tags(rows: Rows, model: str, tags: dict[str, str], t: Time, eid: bytes) -> None:
    rows["registered_model_tags"].extend([model, k, v, 0, *t, eid] for k, v in tags.items())


def _model_tag_set(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    _model_tags(rows, r["registered_model_id"], {r["key"]: r["value"]}, t, eid)


def _model_tag_deleted(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["registered_model_tags"].append([r["registered_model_id"], r["key"], "", 1, *t, eid])


def _alias(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    version = r.get("version", 0)  # AliasDeleted has none: 0 stands for "no version"
    rows["registered_model_aliases"].append([r["registered_model_id"], r["alias"], version, *t, eid, r["user"]])


def _version(kind: str) -> Handler:
    def handle(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
        model, version = r["registered_model_id"], r["version"]
        rows["model_version_events"].append(
            [
                model,
                version,
                *t,
                eid,
                kind,
                r.get("source", ""),
                r.get("run_id") or "",
                r.get("run_link") or "",
                r.get("logged_model_id") or "",
                r.get("description", ""),
                r.get("stage", ""),
                r["user"],
            ]
        )
        if kind == "created":
            rows["model_version_tags"].extend([model, version, k, v, 0, *t, eid] for k, v in r["tags"].items())

    return handle


def _version_tag(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    value = r.get("value")  # absent in ModelVersionTagDeleted
    rows["model_version_tags"].append(
        [r["registered_model_id"], r["version"], r["key"], value or "", int(value is None), *t, eid]
    )


def _gate_decided(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    decided = [r[k] for k in ("kind", "target", "version", "current_version", "condition")]
    checks = json.dumps(r["checks"], separators=(",", ":"))
    rows["gate_decisions"].append([r["registered_model_id"], *t, eid, *decided, int(r["allowed"]), checks, r["user"]])


def _deployment(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    version = r.get("version", 0)  # ModelUndeployed has none: 0 stands for "nothing serves"
    place = [r["registered_model_id"], r["environment"], version, r["note"]]
    rows["model_deployments"].append([*place, *t, eid, r["user"]])


def _webhook_saved(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    state = [r[k] for k in ("name", "description", "url", "events", "secret", "status")]
    rows["webhook_events"].append([r["webhook_id"], *t, eid, 0, *state, r["user"]])


def _webhook_deleted(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["webhook_events"].append([r["webhook_id"], *t, eid, 1, "", "", "", [], "", "", r["user"]])


HANDLERS: dict[str, Handler] = {
    "RegisteredModelCreated": _model("created"),
    "RegisteredModelRenamed": _model("renamed"),
    "RegisteredModelUpdated": _model("updated"),
    "RegisteredModelDeleted": _model("deleted"),
    "RegisteredModelTagSet": _model_tag_set,
    "RegisteredModelTagDeleted": _model_tag_deleted,
    "RegisteredModelAliasSet": _alias,
    "RegisteredModelAliasDeleted": _alias,
    "ModelVersionCreated": _version("created"),
    "ModelVersionUpdated": _version("updated"),
    "ModelVersionDeleted": _version("deleted"),
    "ModelVersionStageTransitioned": _version("stage"),
    "ModelVersionTagSet": _version_tag,
    "ModelVersionTagDeleted": _version_tag,
    "GateDecided": _gate_decided,
    "ModelDeployed": _deployment,
    "ModelUndeployed": _deployment,
    "WebhookSaved": _webhook_saved,
    "WebhookDeleted": _webhook_deleted,
}
