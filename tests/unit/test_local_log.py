import threading

from runstream.eventlog.local import LocalLog


def test_append_consume_commit_and_resume_after_reopen(tmp_path):
    path = tmp_path / "events.sqlite3"
    log = LocalLog(path)
    assert log.append([("a", b"1"), ("b", b"2")]) == {0: 2}
    assert log.append([("a", b"3")]) == {0: 3}
    consumer = log.consumer("g")
    assert [m.value for m in consumer.poll(10, 0.1)] == [b"1", b"2", b"3"]
    consumer.commit({0: 3})  # next offset to read: the third message was not applied
    consumer.close()
    log.close()

    reopened = LocalLog(path)
    consumer = reopened.consumer("g")
    messages = consumer.poll(10, 0.1)
    assert [(m.offset, m.key, m.value) for m in messages] == [(3, "a", b"3")]
    assert consumer.poll(10, 0.05) == []
    reopened.close()


def test_concurrent_appends_are_all_durable_with_distinct_offsets(tmp_path):
    log = LocalLog(tmp_path / "events.sqlite3")
    results: list[dict[int, int]] = []

    def writer(i: int) -> None:
        for j in range(50):
            results.append(log.append([(f"k{i}", f"{i}-{j}".encode())] * 3))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    offsets = sorted(r[0] for r in results)
    assert len(set(offsets)) == 400 and offsets[-1] == 1200
    assert log.end_offset() == 1200
    log.close()


def test_poll_wakes_up_when_an_append_commits(tmp_path):
    log = LocalLog(tmp_path / "events.sqlite3")
    consumer = log.consumer("g")
    timer = threading.Timer(0.2, lambda: log.append([("k", b"late")]))
    timer.start()
    messages = consumer.poll(10, timeout=5.0)
    assert [m.value for m in messages] == [b"late"]
    log.close()
