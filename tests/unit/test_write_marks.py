from runstream.eventlog.write_marks import WriteMarks, experiment_entity, run_entity


def test_reads_wait_for_the_latest_write_to_what_they_read():
    marks = WriteMarks(max_entities=2)
    marks.record({0: 5}, run_entity("a"), experiment_entity("1"))
    marks.record({0: 3, 1: 7}, run_entity("a"))
    marks.record({2: 1}, run_entity("b"))
    assert marks.of(run_entity("a")) == {0: 5, 1: 7}  # offsets only move forward
    assert marks.of(run_entity("a"), run_entity("b")) == {0: 5, 1: 7, 2: 1}
    assert marks.of(run_entity("never-written")) == {}
    assert marks.latest() == {0: 5, 1: 7, 2: 1}


def test_the_least_recently_written_entity_is_forgotten_first():
    marks = WriteMarks(max_entities=2)
    marks.record({0: 1}, "x")
    marks.record({0: 2}, "y")
    marks.record({0: 3}, "x")  # x is now the most recent
    marks.record({0: 4}, "z")
    assert (marks.of("x"), marks.of("y"), marks.of("z")) == ({0: 3}, {}, {0: 4})
    assert marks.latest() == {0: 4}  # searches still wait for everything


def test_each_entity_counts_the_writes_it_remembers():
    marks = WriteMarks(max_entities=1)
    assert marks.mark(run_entity("a")) == ({}, 0)
    marks.record({0: 5}, run_entity("a"))
    marks.record({0: 3}, run_entity("a"))
    assert marks.mark(run_entity("a")) == ({0: 5}, 2)
    marks.record({0: 6}, run_entity("b"))  # forgets a: its count starts again
    assert marks.mark(run_entity("a")) == ({}, 0)
