"""Production monitoring, projected into the store (embedded, and a 2-shard cluster): the drift figures
ClickHouse computes from the windows' and the profile's counts equal numpy/scipy computations on the
same rows (each value rounded to its bucket of schemas/sketch.py, as the summaries keep it), and the
latency quantiles equal numpy's."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from scipy import stats

from runstream.eventlog.local import LocalLog
from runstream.schemas.codec import encode
from runstream.schemas.events import event, partition_key
from runstream.schemas.sketch import bucket_ids, bucket_value
from runstream.sdk.profiles import summarize, summarize_all
from runstream.store.drift import Served, drift, profile_reference, window_reference
from runstream.store.served_windows import latencies, windows
from tests.conftest import new_store
from tests.store.test_projection import project

MODEL, ENV, RUN = "churn", "prod", uuid.uuid4().hex
N = 5000
START = 1_800_000_000_000
MINUTE = 60_000


def rows(rng: np.random.Generator, shift: float = 0.0, weights: tuple[float, ...] = (0.6, 0.3, 0.1)) -> dict[str, Any]:
    plans = ["basic", "pro", "team", "enterprise"][: len(weights)]
    x = rng.normal(shift, 1.0, N)
    x[rng.random(N) < 0.01] = np.nan  # missing values are counted, not compared
    return {
        "x": x,
        "spend": rng.lognormal(3.0 + shift, 1.0, N),
        "plan": rng.choice(plans, N, p=weights).astype(object),
    }


def message(kind: str, /, **fields: Any) -> tuple[str, bytes]:
    named = event(kind, **fields)
    return partition_key(*named), encode(*named)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "reference": rows(rng),
        "windows": [
            (rows(rng), rng.gamma(2.0, 20.0, N)),
            (rows(rng, shift=0.5), rng.gamma(2.0, 25.0, N)),
            (rows(rng, weights=(0.3, 0.3, 0.2, 0.2)), rng.gamma(2.0, 30.0, N)),
        ],
    }


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]) -> Any:
    store = new_store(request, request.param)
    log = LocalLog(tmp_path_factory.mktemp("monitoring") / "events.sqlite3")
    messages = [
        message("ProfileLogged", run_id=RUN, name="training", rows=N, features=summarize_all(data["reference"]))
    ]
    for i, (features, latency) in enumerate(data["windows"]):
        summaries = [
            *summarize_all(features),
            summarize("prediction", features["x"] > 0),
            summarize("latency_ms", latency),
        ]
        at = START + i * MINUTE
        messages.append(
            message(
                "InferenceLogged",
                model_name=MODEL,
                version=3,
                environment=ENV,
                window_start=at,
                window_end=at + MINUTE,
                requests=N,
                features=summaries,
            )
        )
    log.append(messages)
    project(log, store)
    log.close()
    return store


SERVED = Served(MODEL, 3, ENV, START, START + 10 * MINUTE)


def psi_numbers(reference: np.ndarray, window: np.ndarray) -> float:
    """The index over ten bins of the reference's mass, from the bucketed values, in numpy."""
    ref, prod = bucket_ids(reference[~np.isnan(reference)]), bucket_ids(window[~np.isnan(window)])
    buckets = np.union1d(ref, prod)
    r = np.array([np.count_nonzero(ref == b) for b in buckets], dtype=float)
    p = np.array([np.count_nonzero(prod == b) for b in buckets], dtype=float)
    before = np.cumsum(r) - r
    bins = np.minimum(9, np.floor(10 * before / r.sum())).astype(int)
    rs = np.maximum(np.bincount(bins, r, minlength=10) / r.sum(), 1e-4)
    ps = np.maximum(np.bincount(bins, p, minlength=10) / p.sum(), 1e-4)
    present = np.isin(np.arange(10), bins)
    return float(np.sum(((ps - rs) * np.log(ps / rs))[present]))


def category_figures(reference: np.ndarray, window: np.ndarray) -> tuple[float, float, int]:
    categories = sorted(set(reference) | set(window))
    r = np.array([np.count_nonzero(reference == c) for c in categories], dtype=float)
    p = np.array([np.count_nonzero(window == c) for c in categories], dtype=float)
    rs, ps = np.maximum(r / r.sum(), 1e-4), np.maximum(p / p.sum(), 1e-4)
    expected = p.sum() * (r + 0.5) / (r.sum() + 0.5 * len(categories))
    return (
        float(np.sum((ps - rs) * np.log(ps / rs))),
        float(stats.chisquare(p, expected).statistic),
        len(categories) - 1,
    )


def test_drift_from_the_training_profile_equals_numpy_and_scipy(store: Any, data: dict[str, Any]) -> None:
    got = drift(store.client, SERVED, profile_reference(RUN, "training"))
    assert sorted(got) == [START + i * MINUTE for i in range(3)]
    reference = data["reference"]
    for i, (window, _) in enumerate(data["windows"]):
        figures = got[START + i * MINUTE]
        assert set(figures) == {"x", "spend", "plan"}  # prediction and latency have no reference in the profile
        for feature in ("x", "spend"):
            ref, prod = reference[feature], window[feature]
            ks = stats.ks_2samp(bucket_ids(ref[~np.isnan(ref)]), bucket_ids(prod[~np.isnan(prod)])).statistic
            assert figures[feature]["ks"] == pytest.approx(ks, rel=1e-9, abs=1e-12), (i, feature)
            assert figures[feature]["psi"] == pytest.approx(psi_numbers(ref, prod), rel=1e-9, abs=1e-12), (i, feature)
            assert figures[feature]["n"] == np.count_nonzero(~np.isnan(prod))
        psi, chi2, dof = category_figures(reference["plan"], window["plan"])
        plan = figures["plan"]
        assert (plan["psi"], plan["chi2"], plan["dof"]) == (
            pytest.approx(psi, rel=1e-9),
            pytest.approx(chi2, rel=1e-9),
            dof,
        )
    same, shifted, replanned = (got[START + i * MINUTE] for i in range(3))
    assert shifted["x"]["ks"] > 5 * same["x"]["ks"] and shifted["x"]["psi"] > 0.1 > same["x"]["psi"]
    assert replanned["plan"]["chi2"] > 100 * same["plan"]["chi2"] and replanned["plan"]["dof"] == 3


def test_an_earlier_window_as_reference_and_windows_merged_per_interval(store: Any, data: dict[str, Any]) -> None:
    first = window_reference(MODEL, ENV, START, START + MINUTE)
    got = drift(store.client, SERVED, first)
    assert got[START]["x"]["ks"] == 0 and got[START]["prediction"]["psi"] == pytest.approx(0)
    merged = Served(MODEL, 3, ENV, START, START + 10 * MINUTE, every=3 * MINUTE)
    counted = windows(store.client, merged)
    assert counted == [{"at": START, "requests": 3 * N, "windows": 3}]
    together = np.concatenate([w["x"] for w, _ in data["windows"]])
    ks = stats.ks_2samp(
        bucket_ids(data["reference"]["x"][~np.isnan(data["reference"]["x"])]), bucket_ids(together[~np.isnan(together)])
    ).statistic
    assert drift(store.client, merged, profile_reference(RUN, "training"))[START]["x"]["ks"] == pytest.approx(
        ks, rel=1e-9
    )


def test_latency_quantiles_equal_numpys_on_the_bucketed_values(store: Any, data: dict[str, Any]) -> None:
    got = latencies(store.client, SERVED)
    for i, (_, latency) in enumerate(data["windows"]):
        rounded = np.array([bucket_value(int(b)) for b in bucket_ids(latency)])
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            expected = float(np.quantile(rounded, q, method="inverted_cdf"))
            assert got[START + i * MINUTE][name] == pytest.approx(expected, rel=1e-12)
            assert got[START + i * MINUTE][name] == pytest.approx(np.quantile(latency, q), rel=0.03)
