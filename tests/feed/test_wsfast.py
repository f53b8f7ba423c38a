"""The lock that lets a frame start in the generator's task and end in a connection's writer."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tickwire.feed._wsfast import StreamLock


async def test_mutual_exclusion_in_fifo_order() -> None:
    lock, order = StreamLock(), []
    lock.acquire_nowait()

    async def waiter(name: str) -> None:
        async with lock:
            order.append(name)

    async with trio.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(waiter, name)
            await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            lock.acquire_nowait()
        assert order == []
        lock.release()  # handed to the first waiter, never free in between
    assert order == ["a", "b", "c"]
    assert not lock.locked()


async def test_another_task_may_release() -> None:
    lock = StreamLock()
    lock.acquire_nowait()  # taken here, as the generator's task does
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.lowlevel.checkpoint)
        nursery.start_soon(lambda: _release(lock))  # released there, as the writer does
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


async def _release(lock: StreamLock) -> None:
    await trio.lowlevel.checkpoint()
    lock.release()


async def test_a_cancelled_waiter_never_gets_the_lock() -> None:
    lock = StreamLock()
    lock.acquire_nowait()
    got = []

    async def waiter() -> None:
        await lock.acquire()
        got.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    lock.release()
    assert got == [] and not lock.locked()
