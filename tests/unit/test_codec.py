import copy
import json
from typing import Any

import numpy as np
import pytest

from runstream.schemas import codec
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, metric_columns
from runstream.schemas.registry import AVRO_DIR, SchemaRegistry, parse_event_schema, registry

RUN = "0123456789abcdef0123456789abcdef"
MODEL = "m-0123456789abcdef0123456789abcdef"

FEATURE = {
    "name": "x",
    "kind": "number",
    "count": 3,
    "missing": 1,
    "buckets": [-2100, 0, 2040],
    "bucket_counts": [1, 1, 1],
    "categories": [],
    "category_counts": [],
    "sum": 1.5,
}
SAMPLES: dict[str, dict[str, Any]] = {
    "ExperimentCreated": {"experiment_id": "1", "name": "e", "artifact_location": None, "tags": {"a": "b"}},
    "ExperimentRenamed": {"experiment_id": "1", "name": "f"},
    "ExperimentDeleted": {"experiment_id": "1"},
    "ExperimentRestored": {"experiment_id": "1"},
    "ExperimentTagSet": {"experiment_id": "1", "key": "k", "value": "v"},
    "ExperimentTagDeleted": {"experiment_id": "1", "key": "k"},
    "RunCreated": {
        "run_id": RUN,
        "experiment_id": "1",
        "run_name": "r",
        "user_id": "u",
        "start_time": 5,
        "tags": {"t": "1"},
        "parent_run_id": None,
        "artifact_uri": None,
    },
    "RunUpdated": {"run_id": RUN, "status": "FINISHED", "end_time": 9, "run_name": None},
    "RunDeleted": {"run_id": RUN},
    "RunRestored": {"run_id": RUN},
    "ParamsLogged": {"run_id": RUN, "params": {"lr": "0.1"}},
    "TagsSet": {"run_id": RUN, "tags": {"x": "y"}},
    "TagDeleted": {"run_id": RUN, "key": "x"},
    "ArtifactLogged": {"run_id": RUN, "path": "m/model.pkl", "size": 3, "sha256": "0" * 64, "uri": "file:///x"},
    "InputsLogged": {
        "run_id": RUN,
        "datasets": [
            {"name": "d", "digest": "1", "source_type": "s", "source": "x", "schema": None, "profile": None, "tags": {}}
        ],
    },
    "RegisteredModelCreated": {"registered_model_id": RUN, "name": "m", "description": "", "tags": {}, "user": "u"},
    "RegisteredModelRenamed": {"registered_model_id": RUN, "name": "n", "user": "u"},
    "RegisteredModelUpdated": {"registered_model_id": RUN, "description": "d", "user": "u"},
    "RegisteredModelDeleted": {"registered_model_id": RUN, "user": "u"},
    "RegisteredModelTagSet": {"registered_model_id": RUN, "key": "k", "value": "v", "user": "u"},
    "RegisteredModelTagDeleted": {"registered_model_id": RUN, "key": "k", "user": "u"},
    "RegisteredModelAliasSet": {"registered_model_id": RUN, "alias": "champion", "version": 2, "user": "u"},
    "RegisteredModelAliasDeleted": {"registered_model_id": RUN, "alias": "champion", "user": "u"},
    "ModelVersionCreated": {
        "registered_model_id": RUN,
        "version": 1,
        "source": "runs:/x/model",
        "run_id": RUN,
        "run_link": None,
        "logged_model_id": None,
        "description": "",
        "tags": {"t": "1"},
        "user": "u",
    },
    "ModelVersionUpdated": {"registered_model_id": RUN, "version": 1, "description": "d", "user": "u"},
    "ModelVersionDeleted": {"registered_model_id": RUN, "version": 1, "user": "u"},
    "ModelVersionStageTransitioned": {"registered_model_id": RUN, "version": 1, "stage": "Staging", "user": "u"},
    "ModelVersionTagSet": {"registered_model_id": RUN, "version": 1, "key": "k", "value": "v", "user": "u"},
    "ModelVersionTagDeleted": {"registered_model_id": RUN, "version": 1, "key": "k", "user": "u"},
    "WebhookSaved": {
        "webhook_id": "0b6b1c3e-7d6f-4b8e-9c1a-2f3e4d5c6b7a",
        "name": "hook",
        "description": "",
        "url": "https://example.com/hook",
        "events": ["model_version.created"],
        "secret": "s",
        "status": "ACTIVE",
        "user": "u",
    },
    "WebhookDeleted": {"webhook_id": "0b6b1c3e-7d6f-4b8e-9c1a-2f3e4d5c6b7a", "user": "u"},
    "ModelDeployed": {"registered_model_id": "a" * 32, "environment": "prod", "version": 3, "note": "r1", "user": "u"},
    "ModelUndeployed": {"registered_model_id": "a" * 32, "environment": "prod", "note": "", "user": "u"},
    "ProfileLogged": {"run_id": RUN, "name": "training", "rows": 3, "features": [FEATURE]},
    "InferenceLogged": {
        "model_name": "churn",
        "version": 3,
        "environment": "prod",
        "window_start": 1000,
        "window_end": 2000,
        "requests": 3,
        "features": [
            FEATURE,
            {
                **FEATURE,
                "name": "plan",
                "kind": "category",
                "buckets": [],
                "bucket_counts": [],
                "categories": ["a", "b"],
                "category_counts": [2, 1],
            },
        ],
    },
    "GateDecided": {
        "registered_model_id": "a" * 32,
        "kind": "alias",
        "target": "prod",
        "version": 3,
        "current_version": 2,
        "condition": "metrics.acc >= current.metrics.acc",
        "allowed": False,
        "checks": [
            {"condition": "metrics.acc >= current.metrics.acc", "passed": False, "actual": "0.8", "expected": "0.9"}
        ],
        "user": "u",
    },
    "LoggedModelCreated": {
        "model_id": MODEL,
        "experiment_id": "1",
        "name": "model",
        "model_type": None,
        "source_run_id": RUN,
        "artifact_uri": f"mlflow-artifacts:/1/models/{MODEL}/artifacts",
        "tags": {"t": "1"},
        "params": {"lr": "0.1"},
    },
    "LoggedModelFinalized": {"model_id": MODEL, "status": "READY", "status_message": None},
    "LoggedModelDeleted": {"model_id": MODEL},
    "LoggedModelTagsSet": {"model_id": MODEL, "tags": {"x": "y"}},
    "LoggedModelTagDeleted": {"model_id": MODEL, "key": "x"},
    "LoggedModelParamsLogged": {"model_id": MODEL, "params": {"k": "v"}},
    "ModelArtifactLogged": {"model_id": MODEL, "path": "MLmodel", "size": 3, "sha256": "0" * 64, "uri": "file:///x"},
    "ArtifactsDeleted": {"run_id": RUN, "paths": ["plots/a.png", "notes.txt"]},
    "ModelArtifactsDeleted": {"model_id": MODEL, "paths": ["MLmodel"]},
    "RunOutputsLogged": {"run_id": RUN, "models": [{"model_id": MODEL, "step": 0}]},
    "ModelInputsLogged": {"run_id": RUN, "model_ids": [MODEL]},
    "LoggedModelMetricsLogged": {
        "run_id": RUN,
        "model_id": MODEL,
        "metrics": [
            {"key": "acc", "value": 0.9, "timestamp": 1, "step": 2, "dataset_name": "val", "dataset_digest": "d"}
        ],
    },
}


def test_every_event_type_has_a_sample_and_round_trips():
    assert set(registry().names()) == set(SAMPLES) | {"MetricBatch"}
    for name, fields in SAMPLES.items():
        message = codec.encode(*event(name, **fields))
        assert message[:2] == b"\xc3\x01"
        decoded_name, record = codec.decode(message)
        assert decoded_name == name
        assert {k: record[k] for k in fields} == fields
        assert len(record["header"]["event_id"]) == 16


def test_metric_batch_columns_round_trip_bit_exact():
    values = np.array([0.5, np.nan, np.inf, -np.inf, -0.0, 1e308])
    cols = MetricColumns(
        RUN,
        3,
        "node-a",
        ["loss", "acc"],
        np.array([0, 1, 0, 1, 0, 1], np.uint16),
        values,
        np.arange(6) * 10,
        np.arange(6) + 1_700_000_000_000,
    )
    _, record = codec.decode(codec.encode(*event("MetricBatch", **metric_batch_fields(cols))))
    back = metric_columns(record)
    assert back.values.tobytes() == values.tobytes()
    assert back.steps.tolist() == [0, 10, 20, 30, 40, 50]
    assert (back.rank, back.node, back.keys) == (3, "node-a", ["loss", "acc"])


def test_documented_byte_layout_of_metric_columns():
    cols = MetricColumns(RUN, 0, "", ["k"], np.array([0], np.uint16), np.array([2.0]), np.array([7]), np.array([1]))
    fields = metric_batch_fields(cols)
    assert fields["steps_le"] == (7).to_bytes(8, "little")
    assert fields["key_index_le"] == b"\x00\x00"
    assert fields["values_le"] == bytes.fromhex("0000000000000040")


def test_unknown_fingerprint_and_garbage_are_undecodable():
    message = codec.encode(*event("RunDeleted", run_id=RUN))
    with pytest.raises(codec.UndecodableEvent, match="unknown schema"):
        codec.decode(message[:2] + b"\x00" * 8 + message[10:])
    with pytest.raises(codec.UndecodableEvent, match="marker"):
        codec.decode(b"hello world")
    with pytest.raises(codec.UndecodableEvent):
        codec.decode(message[:-3])
    with pytest.raises(codec.UndecodableEvent, match="trailing"):
        codec.decode(message + b"\x00")


def _raw(name: str) -> dict[str, Any]:
    return json.loads(  # type: ignore[no-any-return]
        (AVRO_DIR / f"{name}.v1.avsc").read_text()
    )


def test_schema_evolution_new_writer_old_reader_and_back():
    """v2 adds a field with a default: a v1 reader skips it, a v2 reader fills the default for v1 data."""
    v1_raw = _raw("tags_set")
    v2_raw = copy.deepcopy(v1_raw)
    v2_raw["fields"].append({"name": "source", "type": "string", "default": "sdk"})
    v1, v2 = parse_event_schema(v1_raw, 1), parse_event_schema(v2_raw, 2)
    assert v1.fingerprint != v2.fingerprint
    old_reader = SchemaRegistry([v1])
    new_reader = SchemaRegistry([v1, v2])
    fields = {"run_id": RUN, "tags": {"a": "b"}}

    old_message = codec.encode(*event("TagsSet", **fields), schemas=old_reader)
    name, record = codec.decode(old_message, schemas=new_reader)
    assert (name, record["tags"], record["source"]) == ("TagsSet", {"a": "b"}, "sdk")

    new_message = codec.encode(*event("TagsSet", **fields, source="gateway"), schemas=new_reader)
    with pytest.raises(codec.UndecodableEvent, match="unknown schema"):
        codec.decode(new_message, schemas=old_reader)  # an old reader must learn the new schema first...
    learned = SchemaRegistry([v1, v2], readers=[v1])  # ...and then reads new data into its own (old) shape
    name, record = codec.decode(new_message, schemas=learned)
    assert record["tags"] == {"a": "b"} and "source" not in record
