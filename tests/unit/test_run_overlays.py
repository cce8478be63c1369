"""Which overlay a read may use: only one holding every write this process remembers to the run."""

from runstream.eventlog.write_marks import experiment_entity, run_entity
from runstream.mlflow_api.run_overlay import RunOverlays


def _tags(run_id: str, **tags: str) -> list[tuple[str, dict[str, object]]]:
    return [("TagsSet", {"run_id": run_id, "tags": tags})]


def test_an_overlay_holds_every_write_or_is_not_used():
    overlays = RunOverlays(max_runs=2)
    a, b, c = run_entity("a"), run_entity("b"), run_entity("c")
    overlays.record(a, 0, {0: 1}, _tags("a", k="1"))
    overlays.record(a, 1, {0: 2}, _tags("a", k="2"))
    assert overlays.get(a, 2) is not None
    assert overlays.get(a, 3) is None  # a third write (the SDK's, through the gateway) bypassed it
    overlays.record(a, 3, {0: 4}, _tags("a", k="4"))  # and it stays unused: dropped
    assert overlays.get(a, 4) is None

    overlays.record(b, 1, {0: 5}, _tags("b", k="1"))  # an earlier write of this process is not in it
    assert overlays.get(b, 2) is None
    overlays.record(experiment_entity("1"), 0, {0: 6}, [("ExperimentTagSet", {})])
    assert overlays.get(experiment_entity("1"), 1) is None  # runs only

    overlays.record(b, 0, {0: 7}, _tags("b", k="1"))
    overlays.record(c, 0, {0: 8}, _tags("c", k="1"))
    overlays.record(a, 0, {0: 9}, _tags("a", k="1"))  # two runs at most: b is forgotten first
    assert (overlays.get(b, 1), overlays.get(c, 1) is not None, overlays.get(a, 1) is not None) == (None, True, True)


def test_a_write_that_does_not_fold_holds_the_overlay_until_it_is_applied():
    overlays = RunOverlays()
    a = run_entity("a")
    overlays.record(a, 0, {0: 3}, [("InputsLogged", {"run_id": "a", "datasets": []})])
    overlay = overlays.get(a, 1)
    assert overlay is not None
    assert not overlay.folds({0: 2})
    assert overlay.folds({0: 3})


def test_a_run_folds_only_its_own_events_of_a_write_to_several():
    overlays = RunOverlays()
    a = run_entity("a")
    overlays.record(a, 0, {0: 3}, [("RunDeleted", {"run_id": "b"}), ("RunDeleted", {"run_id": "a"})])
    overlays.record(a, 1, {0: 4}, [("RunRestored", {"run_id": "b"})])
    overlay = overlays.get(a, 2)
    assert overlay is not None and overlay.folds({})
    record = {"run_id": "a", "lifecycle_stage": "active", "params": {}, "tags": {}, "metrics": {}}
    assert overlay.apply(record, {0: 2}) == record | {"lifecycle_stage": "deleted"}
    overlays.record(a, 2, {0: 5}, [("ExperimentDeleted", {"experiment_id": "1"})])  # no run_id: it may change the run
    assert not overlay.folds({0: 4})


def test_the_values_held_are_bounded_the_least_recently_written_run_forgotten_first():
    overlays = RunOverlays(max_values=5)
    a, b = run_entity("a"), run_entity("b")
    overlays.record(a, 0, {0: 1}, _tags("a", k1="1", k2="2", k3="3"))
    overlays.record(b, 0, {0: 2}, _tags("b", k1="1"))
    assert overlays.get(a, 1) is not None and overlays.get(b, 1) is not None  # 4 values
    overlays.record(b, 1, {0: 3}, _tags("b", k2="2", k3="3"))  # 6: a goes
    assert (overlays.get(a, 1), overlays.get(b, 2) is not None) == (None, True)
    overlays.record(b, 2, {0: 4}, _tags("b", **{f"x{i}": "v" for i in range(9)}))  # b alone is over the bound
    assert overlays.get(b, 3) is None
