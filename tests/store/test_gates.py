"""Promotion gates' checks of a candidate run, read from the store as the registry reads it, equal a
brute-force evaluation of the same MLflow filter clauses (tests/store/search_corpus.py) on the same
runs: one check per clause, each passed exactly when the clause matches the run."""

import math
import random

import pytest

from runstream.eventlog.local import LocalLog
from runstream.lifecycle.gate_policy import Gate, decide
from runstream.store import queries
from tests.conftest import new_store
from tests.store import search_corpus as sc
from tests.store.test_projection import project


@pytest.fixture(scope="module")
def corpus():
    return sc.build()


@pytest.fixture(scope="module")
def store(request, tmp_path_factory, corpus):
    store = new_store(request, "embedded")
    log = LocalLog(tmp_path_factory.mktemp("gates") / "events.sqlite3")
    log.append(corpus.messages)
    project(log, store)
    log.close()
    return store


def test_each_check_equals_the_brute_force_match_of_its_clause(store, corpus):
    rng = random.Random(31)
    read = {r.run_id: queries.run(store.client, r.run_id) for r in corpus.runs}
    outcomes = set()
    for i in range(150):
        clauses = [sc.random_run_clause(rng, corpus) for _ in range(rng.randint(1, 3))]
        clauses = [c for c in clauses if c.kind != "dataset"]  # a gate reads the run, not its inputs
        text = sc.render_filter(clauses, rng)
        if not clauses:
            continue
        gate = Gate("prod", text)
        for run in corpus.runs:
            decision = decide(gate, "alias", 2, read[run.run_id], None, None, "")
            expected = [sc.run_matches(run, c) for c in clauses]
            assert [c.passed for c in decision.checks] == expected, (i, text, run.run_id)
            outcomes.update(expected)
    assert outcomes == {True, False}


def test_a_current_value_is_read_from_the_run_the_target_names_now(store, corpus):
    finite = sorted({r.metrics["acc"]: r for r in corpus.runs if abs(r.metrics.get("acc", math.nan)) < 1e9}.items())
    (_, low), (_, high) = finite[0], finite[-1]
    gate = Gate("prod", "metrics.acc >= current.metrics.acc")
    runs = {r.run_id: queries.run(store.client, r.run_id) for r in (low, high)}
    up = decide(gate, "alias", 2, runs[high.run_id], 1, runs[low.run_id], "")
    down = decide(gate, "alias", 1, runs[low.run_id], 2, runs[high.run_id], "")
    assert up.allowed and not down.allowed
    assert down.checks[0].expected is not None and float(down.checks[0].expected) == pytest.approx(high.metrics["acc"])
    # Nothing named now, or a current run without the value: nothing to compare with, so it passes.
    assert decide(gate, "alias", 1, runs[low.run_id], None, None, "").allowed
