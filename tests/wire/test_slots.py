"""The connection slots: who gets a freed slot first, cancellation, and the waits measured."""

from __future__ import annotations

import asyncio
import functools

import anyio
import pytest

from agentloop._errors import APITimeoutError
from agentloop._wire.slots import Slots, note_waits, queue_meter

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """No HTTP here: the two event loops, not the three HTTP paths of the wire tests."""
    return request.param


async def _queue(slots: Slots, order: list[str], name: str, *, retry: bool = False) -> None:
    """Wait for a slot, note the turn, give the slot back."""
    await slots.take(anyio.current_time, retry=retry)
    order.append(name)
    slots.release()


async def _served_then_queue(slots: Slots, order: list[str], name: str, go: anyio.Event) -> None:
    """A task whose work held a slot before: it queues as returning work."""
    assert slots.take_nowait()
    slots.release()
    await go.wait()
    assert not slots.take_nowait()
    await _queue(slots, order, name)


async def _until_waiting(slots: Slots, count: int) -> None:
    await anyio.wait_all_tasks_blocked()  # every task started has queued, or finished
    assert slots.waiting == count, slots


async def test_free_slots_are_taken_at_once_up_to_the_cap():
    slots = Slots(2)
    assert slots.take_nowait() and slots.take_nowait()
    assert not slots.take_nowait()
    assert slots.held == 2
    slots.release()
    assert slots.held == 1 and slots.take_nowait()
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


async def test_fresh_work_is_served_in_arrival_order():
    slots, order = Slots(1), []
    assert slots.take_nowait()
    async with anyio.create_task_group() as tg:
        for name in "abcd":
            tg.start_soon(_queue, slots, order, name)
            await _until_waiting(slots, len(order) + "abcd".index(name) + 1)
        slots.release()
    assert order == ["a", "b", "c", "d"]
    assert slots.held == 0 and slots.waiting == 0


async def test_a_retry_goes_ahead_of_fresh_work_that_queued_before_it():
    slots, order, done = Slots(1), [], anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_hold, slots, done)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_queue, slots, order, "fresh 1")
        await _until_waiting(slots, 1)
        tg.start_soon(_queue, slots, order, "fresh 2")
        await _until_waiting(slots, 2)
        tg.start_soon(functools.partial(_queue, slots, order, "retry", retry=True))
        await _until_waiting(slots, 3)
        done.set()
    assert order == ["retry", "fresh 1", "fresh 2"]


async def test_a_task_that_held_a_slot_goes_ahead_of_tasks_that_have_not():
    """A run's next turn is not sent behind every run that started after it."""
    slots, order, go, done = Slots(1), [], anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_served_then_queue, slots, order, "started run", go)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_hold, slots, done)  # another task holds the only slot (this one must
        await anyio.wait_all_tasks_blocked()  # not: the tasks it starts would inherit the mark)
        for index, name in enumerate(("new run 1", "new run 2")):
            tg.start_soon(_queue, slots, order, name)
            await _until_waiting(slots, index + 1)
        go.set()
        await _until_waiting(slots, 3)
        done.set()
    assert order == ["started run", "new run 1", "new run 2"]


async def test_tasks_started_by_work_that_held_a_slot_are_returning_work():
    """A run's tools (its subagents' requests) go with the run, not behind new runs."""
    slots, order, go, done = Slots(1), [], anyio.Event(), anyio.Event()

    async def run_with_a_tool() -> None:
        assert slots.take_nowait()  # its first turn
        slots.release()
        await go.wait()
        async with anyio.create_task_group() as tools:
            tools.start_soon(_queue, slots, order, "the run's tool")

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_with_a_tool)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_hold, slots, done)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_queue, slots, order, "new run")
        await _until_waiting(slots, 1)
        go.set()
        await _until_waiting(slots, 2)
        done.set()
    assert order == ["the run's tool", "new run"]


async def _hold(slots: Slots, done: anyio.Event) -> None:
    assert slots.take_nowait()
    await done.wait()
    slots.release()


async def test_a_waiter_cancelled_in_the_queue_leaves_no_hole():
    slots, order = Slots(1), []
    assert slots.take_nowait()
    with anyio.fail_after(5):
        await _one_cancelled_in_the_queue(slots, order)
    assert order == ["next"]
    assert slots.held == 0 and slots.waiting == 0
    assert slots.take_nowait()  # the slot came back to the pool


async def _one_cancelled_in_the_queue(slots: Slots, order: list[str]) -> None:
    async with anyio.create_task_group() as tg:
        scopes = []
        for name in ("gone", "next"):
            scope = anyio.CancelScope()
            scopes.append(scope)
            tg.start_soon(_in_scope, scope, slots, order, name)
            await _until_waiting(slots, len(scopes))
        scopes[0].cancel()
        await _until_waiting(slots, 1)
        slots.release()


async def _in_scope(scope: anyio.CancelScope, slots: Slots, order: list[str], name: str) -> None:
    with scope:
        await _queue(slots, order, name)


async def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on(anyio_backend):
    """anyio's and trio's cancellation wait until the handed slot arrived (the waiter then
    holds it, and gives it back when cancelled); asyncio's own (`Task.cancel`, as
    `asyncio.timeout` does) reaches the waiter before that: it passes the slot on."""
    slots, order = Slots(1), []
    assert slots.take_nowait()
    scope = anyio.CancelScope()
    cancel = scope.cancel

    async def handed_then_cancelled() -> None:
        nonlocal cancel
        if anyio_backend == "asyncio":
            cancel = asyncio.current_task().cancel  # type: ignore[union-attr]
        with scope:
            try:
                await slots.take(anyio.current_time)
            except asyncio.CancelledError:
                order.append("cancelled while handed the slot")
                return
            try:
                order.append("cancelled holding the slot")
                await anyio.sleep_forever()
            finally:
                slots.release()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(handed_then_cancelled)
            await _until_waiting(slots, 1)
            tg.start_soon(_queue, slots, order, "next")
            await _until_waiting(slots, 2)
            slots.release()  # handed to the first waiter...
            cancel()  # ...which is cancelled before it runs again
    expected = "cancelled while handed" if anyio_backend == "asyncio" else "cancelled holding"
    assert order[0].startswith(expected)
    assert order[1:] == ["next"]
    assert slots.held == 0 and slots.waiting == 0


async def test_many_cancelled_waiters_are_compacted_away():
    slots, order = Slots(1), []
    assert slots.take_nowait()
    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            for _ in range(200):
                doomed.start_soon(_queue, slots, order, "gone")
            await _until_waiting(slots, 200)
            doomed.cancel_scope.cancel()
        assert slots.waiting == 0
        tg.start_soon(_queue, slots, order, "live")
        await _until_waiting(slots, 1)
        assert len(slots._fresh) + len(slots._returning) < 100  # the gone do not pile up
        slots.release()
    assert order == ["live"]
    assert slots.held == 0


async def test_the_wait_is_measured_and_metered():
    slots, now = Slots(1), [0.0]
    assert slots.take_nowait()
    waited: list[float] = []

    async def wait() -> None:
        with queue_meter() as meter:
            waited.append(await slots.take(lambda: now[0]))
            waited.append(meter.waited)
        slots.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await _until_waiting(slots, 1)
        now[0] = 2.5
        slots.release()
    assert waited == [2.5, 2.5]


async def test_a_meter_sees_a_wait_going_on_and_one_cut_short():
    slots, now, meters = Slots(1), [10.0], []
    assert slots.take_nowait()

    async def wait() -> None:
        with queue_meter() as meter:
            meters.append(meter)
            await slots.take(lambda: now[0])

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await _until_waiting(slots, 1)
        assert meters[0].waiting(now=12.0) == 2.0
        now[0] = 13.0
        tg.cancel_scope.cancel()  # a deadline passes while it waits
    assert (meters[0].waited, meters[0].cut, meters[0].waiting(now=20.0)) == (3.0, 1, 0.0)
    assert slots.waiting == 0 and slots.held == 1


def test_a_timeout_says_how_long_the_request_waited_before_it():
    error = APITimeoutError("no answer within the 60 s deadline")
    note_waits(error, 42.12, 3.0)
    assert str(error) == (
        "no answer within the 60 s deadline (before it, the request waited 42.1 s for a "
        "connection and 3.0 s for its rate limit's turn)"
    )
    quiet = APITimeoutError("no answer")
    note_waits(quiet, 0.0)
    assert str(quiet) == "no answer"
