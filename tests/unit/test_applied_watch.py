"""AppliedWatch: serve's readers wake when the projector of their process applies what they wait for."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from runstream.store.applied import AppliedWatch

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """On a thread of its own: other tests of the session may leave an event loop running in this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, scenario).result()


def test_a_waiter_wakes_when_its_positions_are_applied_and_not_before() -> None:
    watch = AppliedWatch({0: 4})

    async def scenario() -> list[str]:
        seen: list[str] = []

        async def reader(name: str, wanted: dict[int, int]) -> None:
            seen.append(f"{name}:{await watch.wait(wanted, timeout=5)}")

        tasks = [asyncio.create_task(reader("early", {0: 6})), asyncio.create_task(reader("late", {0: 9, 1: 0}))]
        await asyncio.sleep(0.05)
        assert watch.awaited() and not seen
        # The projector calls from its own thread.
        threading.Thread(target=watch.advance, args=({0: 7},)).start()
        await asyncio.sleep(0.05)
        assert seen == ["early:True"]
        threading.Thread(target=watch.advance, args=({0: 9, 1: 0},)).start()
        await asyncio.gather(*tasks)
        return seen

    assert run(scenario()) == ["early:True", "late:True"]
    assert watch.current() == {0: 9, 1: 0} and not watch.awaited()


def test_applied_positions_never_go_back_and_a_wait_times_out() -> None:
    watch = AppliedWatch({})

    async def scenario() -> tuple[bool, bool, bool]:
        already = await watch.wait({}, timeout=0)  # nothing wanted: at once
        watch.advance({0: 5})
        watch.advance({0: 3})  # another lane's older batch: 5 stays
        held = await watch.wait({0: 5}, timeout=0)
        missed = await watch.wait({0: 6}, timeout=0.05)
        return already, held, missed

    assert run(scenario()) == (True, True, False)
    assert watch.current() == {0: 5} and not watch.awaited()  # the timed-out waiter is gone


def test_a_cancelled_waiter_is_forgotten_and_a_closed_loop_does_not_stop_the_projector() -> None:
    watch = AppliedWatch({})

    async def cancelled() -> None:
        waiting = asyncio.create_task(watch.wait({0: 1}, timeout=5))
        await asyncio.sleep(0.01)
        waiting.cancel()  # its request went away
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

    run(cancelled())
    assert not watch.awaited()

    async def abandoned() -> None:  # a waiter whose loop ends without it finishing
        asyncio.get_running_loop().create_task(watch.wait({0: 2}, timeout=5))
        await asyncio.sleep(0.01)

    run(abandoned())
    watch.advance({0: 2})  # the projector's thread: wakes nobody, and does not raise
    assert watch.current() == {0: 2} and not watch.awaited()
