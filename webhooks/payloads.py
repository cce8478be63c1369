"""What each webhook event says (MLflow's payloads): made from a registry event of the log and the
registry as the projector holds it (the model's name, a version's fields), or, for the test endpoint,
MLflow's example of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.store import registry as rq
from runstream.webhooks.drift_alerts import EVENT as DRIFT_EVENT
from runstream.webhooks.drift_alerts import drift_payload, window_id

PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow's prompts are registered models marked so
TEMPLATE_TAG = "mlflow.prompt.text"  # a prompt version's template
_PROMPT_INTERNAL = (PROMPT_TAG, "_mlflow_prompt_type", TEMPLATE_TAG)  # left out of prompts' payloads

# The events that can make a webhook event: the deliverer decodes no other.
SOURCES = frozenset(
    {
        "InferenceLogged",  # runstream's drift alerts (webhooks/drift_alerts.py)
        "RegisteredModelCreated",
        "RegisteredModelTagSet",
        "RegisteredModelTagDeleted",
        "RegisteredModelAliasSet",
        "RegisteredModelAliasDeleted",
        "ModelVersionCreated",
        "ModelVersionTagSet",
        "ModelVersionTagDeleted",
    }
)

_MODEL = {"name": "example_model"}
_PROMPT = {"name": "example_prompt"}
_TAGS = {"tags": {"example_key": "example_value"}}
EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model.created": {**_MODEL, **_TAGS, "description": "An example registered model"},
    "model_version.created": {
        **_MODEL,
        "version": "1",
        "source": "models:/123",
        "run_id": "abcd1234abcd5678",
        **_TAGS,
        "description": "An example model version",
    },
    "model_version_tag.set": {**_MODEL, "version": "1", "key": "example_key", "value": "example_value"},
    "model_version_tag.deleted": {**_MODEL, "version": "1", "key": "example_key"},
    "model_version_alias.created": {**_MODEL, "alias": "example_alias", "version": "1"},
    "model_version_alias.deleted": {**_MODEL, "alias": "example_alias"},
    "prompt.created": {**_PROMPT, **_TAGS, "description": "An example prompt"},
    "prompt_version.created": {
        **_PROMPT,
        "version": "1",
        "template": "Hello {{name}}!",
        **_TAGS,
        "description": "An example prompt version",
    },
    "prompt_tag.set": {**_PROMPT, "key": "example_key", "value": "example_value"},
    "prompt_tag.deleted": {**_PROMPT, "key": "example_key"},
    "prompt_version_tag.set": {**_PROMPT, "version": "1", "key": "example_key", "value": "example_value"},
    "prompt_version_tag.deleted": {**_PROMPT, "version": "1", "key": "example_key"},
    "prompt_alias.created": {**_PROMPT, "alias": "example_alias", "version": "1"},
    "prompt_alias.deleted": {**_PROMPT, "alias": "example_alias"},
    DRIFT_EVENT: {
        **_MODEL,
        "version": "1",
        "environment": "prod",
        "window_start": 1767225600000,
        "window_end": 1767225660000,
        "reference": "profile:training",
        "crossed": [{"feature": "age", "statistic": "psi", "value": 0.31, "threshold": 0.2}],
    },
    "budget_policy.exceeded": {
        "budget_policy_id": "bp-abc123",
        "budget_unit": "USD",
        "budget_amount": 100.0,
        "current_spend": 105.50,
        "duration_unit": "MONTHS",
        "duration_value": 1,
        "target_scope": "ENDPOINT",
        "workspace": "default",
    },
}


@dataclass(frozen=True)
class Notice:
    """One webhook event to deliver: what happened, and the registry event (log entry) it comes from."""

    event: str  # entity.action
    payload: dict[str, Any]
    event_id: bytes
    event_time: int


# The webhook entity of a change, for a model and for a prompt (None: MLflow sends nothing).
_ENTITIES: dict[str, tuple[str | None, str]] = {
    "tag": (None, "prompt_tag"),
    "alias": ("model_version_alias", "prompt_alias"),
    "version": ("model_version", "prompt_version"),
    "version_tag": ("model_version_tag", "prompt_version_tag"),
}


def _tag_change(base: dict[str, Any], r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "value" in r:  # *TagSet; *TagDeleted has none
        return "set", {**base, "key": r["key"], "value": r["value"]}
    return "deleted", {**base, "key": r["key"]}


def _is_prompt(tags: dict[str, str]) -> bool:
    return tags.get(PROMPT_TAG, "false").lower() == "true"


def _prompt_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in _PROMPT_INTERNAL}


def notice(client: Client, kind: str, r: dict[str, Any]) -> Notice | None:
    """The webhook event a registry event makes, if any; read once the projector holds the event (a
    version's number is won by the first claim in the log: a lost claim makes none)."""
    if kind == "InferenceLogged":
        alert = drift_payload(client, r)
        if alert is None:
            return None
        # One window's alert is one event to receivers, whichever replica's report of the window made it.
        return Notice(DRIFT_EVENT, alert, window_id(r), r["header"]["event_time"])
    if kind == "RegisteredModelCreated":
        prompt = _is_prompt(r["tags"])
        tags = _prompt_tags(r["tags"]) if prompt else r["tags"]
        payload = {"name": r["name"], "tags": tags, "description": r["description"]}  # "" if none, as MLflow's
        return _notice(f"{'prompt' if prompt else 'registered_model'}.created", payload, r)
    model_id = r["registered_model_id"]
    name = rq.model_name(client, model_id)
    if name is None:
        return None
    prompt = _is_prompt(rq.model_tags(client, model_id))
    base: dict[str, Any] = {"name": name}
    if "version" in r:
        base["version"] = str(r["version"])
    made: tuple[str, dict[str, Any]] | None  # (action, payload)
    match kind:
        case "RegisteredModelTagSet" | "RegisteredModelTagDeleted":
            change, made = "tag", _tag_change(base, r)
        case "ModelVersionTagSet" | "ModelVersionTagDeleted":
            change, made = "version_tag", _tag_change(base, r)
        case "RegisteredModelAliasSet":
            change, made = "alias", ("created", {**base, "alias": r["alias"], "version": str(r["version"])})
        case "RegisteredModelAliasDeleted":
            change, made = "alias", ("deleted", {**base, "alias": r["alias"]})
        case "ModelVersionCreated":
            found = _version_created(client, prompt, base, r)
            change, made = "version", None if found is None else ("created", found)
        case _:
            return None
    sent_as = _ENTITIES[change][int(prompt)]
    if sent_as is None or made is None:
        return None
    return _notice(f"{sent_as}.{made[0]}", made[1], r)


def _version_created(client: Client, prompt: bool, base: dict[str, Any], r: dict[str, Any]) -> dict[str, Any] | None:
    """The version's payload, if this event won its number. Its tags are those the projector holds
    now: tags given at creation are recorded once the number is won (mlflow_api/registry_writer.py), so
    they may come after, each as a tag event too."""
    model_id, version = r["registered_model_id"], r["version"]
    winner = rq.creation_event(client, model_id, version)
    if winner is None or winner != r["header"]["event_id"]:
        return None
    tags = rq.version_tags(client, model_id, version)
    if prompt:
        return {
            **base,
            "template": tags.get(TEMPLATE_TAG),
            "tags": _prompt_tags(tags),
            "description": r["description"] or None,
        }
    return {**base, "source": r["source"], "run_id": r["run_id"], "tags": tags, "description": r["description"] or None}


def _notice(event: str, payload: dict[str, Any], r: dict[str, Any]) -> Notice:
    return Notice(event, payload, r["header"]["event_id"], r["header"]["event_time"])
