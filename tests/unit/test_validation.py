from typing import Any

import numpy as np
import pytest

from runstream.schemas.events import MetricColumns, event, metric_batch_fields
from runstream.schemas.framing import frame, unframe
from runstream.schemas.validation import InvalidEvent, validate

RUN = "0123456789abcdef0123456789abcdef"


def _metrics(**overrides):
    cols: dict[str, Any] = dict(
        run_id=RUN,
        rank=0,
        node="n",
        keys=["loss"],
        key_index=np.zeros(2, np.uint16),
        values=np.ones(2),
        steps=np.arange(2),
        timestamps=np.arange(2),
    )
    cols.update(overrides)
    return event("MetricBatch", **metric_batch_fields(MetricColumns(**cols)))


@pytest.mark.parametrize(
    ("name_record", "reason"),
    [
        (event("RunDeleted", run_id="ABC"), "32 lowercase hex"),
        (event("ParamsLogged", run_id=RUN, params={"k" * 251: "v"}), "longer than 250"),
        (event("ParamsLogged", run_id=RUN, params={"k": "v" * 6001}), "longer than 6000"),
        (event("TagsSet", run_id=RUN, tags={"": "v"}), "must not be empty"),
        (event("TagsSet", run_id=RUN, tags={"a\x00": "v"}), "NUL"),
        (event("ExperimentCreated", experiment_id="1", name="", artifact_location=None, tags={}), "empty"),
        (
            event("ExperimentCreated", experiment_id="1; DROP", name="x", artifact_location=None, tags={}),
            "experiment_id",
        ),
        (_metrics(key_index=np.array([0, 1], np.uint16)), "key index out of range"),
        (_metrics(timestamps=np.array([5, -1])), "negative metric timestamp"),
        (_metrics(steps=np.arange(3)), "differ in length"),
        (_metrics(keys=["a", "a"]), "repeat"),
        (_metrics(rank=-1), "negative rank"),
        (
            event("ArtifactLogged", run_id=RUN, path="../etc/passwd", size=1, sha256="0" * 64, uri="file:///x"),
            "relative",
        ),
        (event("ArtifactsDeleted", run_id=RUN, paths=["ok.txt", "../etc/passwd"]), "relative"),
    ],
)
def test_invalid_events_are_refused_with_a_reason(name_record, reason):
    with pytest.raises(InvalidEvent, match=reason):
        validate(*name_record)


def test_valid_events_pass():
    validate(*_metrics())
    validate(*event("ParamsLogged", run_id=RUN, params={"lr": "0.1"}))


def test_frames_round_trip_and_truncation_is_an_error():
    messages = [b"a", b"", b"xyz" * 1000]
    assert unframe(frame(messages)) == messages
    with pytest.raises(ValueError, match="claims"):
        unframe(frame(messages)[:-1])
    with pytest.raises(ValueError, match="truncated"):
        unframe(b"\x00\x00")


def _window(**feature: Any) -> tuple[str, dict[str, Any]]:
    summary = {
        "name": "x",
        "kind": "number",
        "count": 2,
        "missing": 0,
        "buckets": [1, 2],
        "bucket_counts": [1, 1],
        "categories": [],
        "category_counts": [],
        "sum": 0.0,
        **feature,
    }
    fields = {"model_name": "m", "version": 1, "environment": "prod", "window_start": 1, "window_end": 2}
    return event("InferenceLogged", **fields, requests=2, features=[summary])


@pytest.mark.parametrize(
    ("name_record", "reason"),
    [
        (_window(count=3), "add up"),
        (_window(buckets=[1, 1]), "each bucket once"),
        (_window(bucket_counts=[1]), "one count per bucket"),
        (_window(bucket_counts=[2, 0], count=2), "positive"),
        (_window(kind="text"), "number or category"),
        (_window(name=""), "must not be empty"),
    ],
)
def test_bad_feature_summaries_are_refused(name_record: tuple[str, dict[str, Any]], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        validate(*name_record)


def test_a_window_needs_a_named_environment_and_an_order() -> None:
    name, record = _window()
    with pytest.raises(InvalidEvent, match="environment"):
        validate(name, {**record, "environment": "eu canary"})
    with pytest.raises(InvalidEvent, match="starts at or before"):
        validate(name, {**record, "window_start": 3})
    validate(name, record)
