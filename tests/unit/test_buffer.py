import threading
import time

import numpy as np
import pytest

from runstream.sdk.buffer import BufferFull, MetricBuffer

RUN = "0123456789abcdef0123456789abcdef"


def test_columns_keep_order_and_keys():
    buffer = MetricBuffer(100, "raise")
    buffer.add({"loss": 1.0, "acc": 0.5}, step=1, timestamp=10)
    buffer.add_arrays("loss", np.array([3.0, 4.0]), np.array([2, 3]), np.array([11, 12]))
    cols = buffer.drain(RUN, 2, "n")
    assert cols is not None
    assert cols.keys == ["loss", "acc"]
    assert cols.key_index.tolist() == [0, 1, 0, 0]
    assert cols.values.tolist() == [1.0, 0.5, 3.0, 4.0]
    assert cols.steps.tolist() == [1, 1, 2, 3]
    assert (cols.rank, cols.node) == (2, "n")
    assert buffer.drain(RUN, 0, "") is None


def test_full_buffer_raises_when_asked_to():
    buffer = MetricBuffer(3, "raise")
    buffer.add({"a": 1, "b": 2, "c": 3}, 0, 0)
    with pytest.raises(BufferFull):
        buffer.add({"d": 4}, 0, 0)
    assert len(buffer) == 3


def test_full_buffer_blocks_until_drained():
    buffer = MetricBuffer(2, "block")
    buffer.add({"a": 1, "b": 2}, 0, 0)
    done = threading.Event()

    def log_more() -> None:
        buffer.add({"c": 3}, 1, 0)
        done.set()

    threading.Thread(target=log_more, daemon=True).start()
    time.sleep(0.2)
    assert not done.is_set()  # blocked: nothing was dropped, nothing overflowed
    assert buffer.drain(RUN, 0, "") is not None
    assert done.wait(5)
    cols = buffer.drain(RUN, 0, "")
    assert cols is not None and cols.values.tolist() == [3.0]
