"""The jobs lease, one contract on every store: the in-memory lease (memory, SQLite: one
process) and the shared lease document (MongoDB). One holder at a time; the token grows with
each new holder and stays while the holder renews; an expired or released lease is taken by
the next instance that asks. On MongoDB the store also refuses a job's append whose token is
stale (fencing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from obt.errors import LeaseLost
from obt.store.lease import Fence, Lease, MemoryLease, MemoryLeases, fence_task
from obt.store.ports import ANY, NewEvent, Store

DURATION_S = 0.5


class Leases:
    """Leases of several holders on one store, and a way to let a term run out."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.now = 0.0
        self.memory = MemoryLeases(lambda: self.now)

    @property
    def shared(self) -> bool:
        return callable(getattr(self.store, "lease", None))

    def of(self, holder: str) -> Lease:
        if self.shared:
            return self.store.lease(holder, DURATION_S)  # type: ignore[attr-defined,no-any-return]
        return MemoryLease(holder, DURATION_S, leases=self.memory)

    async def run_out(self, lease: Lease) -> None:
        """Let the current term expire: the fake clock moves, or (MongoDB, the server's
        clock) we wait until the server says nobody holds it, with a deadline."""
        if not self.shared:
            self.now += DURATION_S + 0.01
            return
        await until(lambda: _is_none(lease.current_holder()), 10)


async def _is_none(value: Awaitable[object]) -> bool:
    return await value is None


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def leases(store: Store) -> Leases:
    return Leases(store)


async def test_one_holder_at_a_time_and_the_token_stays_while_renewed(leases: Leases) -> None:
    a, b = leases.of("a"), leases.of("b")
    first = await a.acquire()
    assert first is not None
    assert await b.acquire() is None
    assert await a.acquire() == first  # a renewal keeps the term's token
    assert await b.acquire() is None
    assert await a.current_holder() == "a"
    assert await b.current_holder() == "a"


async def test_an_expired_lease_goes_to_the_next_instance_with_a_greater_token(
    leases: Leases,
) -> None:
    a, b = leases.of("a"), leases.of("b")
    first = await a.acquire()
    assert first is not None
    await leases.run_out(a)
    second = await b.acquire()
    assert second is not None and second > first
    assert await a.acquire() is None  # the old holder does not get it back while b renews
    assert await b.current_holder() == "b"


async def test_a_released_lease_is_taken_at_once(leases: Leases) -> None:
    a, b = leases.of("a"), leases.of("b")
    first = await a.acquire()
    assert first is not None
    await a.release()
    second = await b.acquire()
    assert second is not None and second > first


async def test_a_holder_that_asks_again_after_expiry_starts_a_new_term(leases: Leases) -> None:
    a = leases.of("a")
    first = await a.acquire()
    assert first is not None
    await leases.run_out(a)
    again = await a.acquire()
    assert again is not None and again > first


def _event(n: int) -> NewEvent:
    return NewEvent(id=f"fenced-{n}", type="ClientTimedOut", data={"n": n})


async def test_a_stale_holders_appends_are_refused_and_the_new_holders_accepted(
    leases: Leases, store: Store
) -> None:
    if not leases.shared:
        pytest.skip("one process holds the in-memory lease for its lifetime: nothing to fence")
    a, b = leases.of("a"), leases.of("b")
    old = await a.acquire()
    assert old is not None
    now = datetime.now(UTC)

    async def append_fenced(fence: Fence, n: int) -> None:
        fence_task(fence)  # as the job runner does on the holder's job task
        await store.append("system-jobs", [_event(n)], expected_version=ANY, recorded_at=now)

    await asyncio.create_task(append_fenced(Fence(a.name, old), 1))
    await leases.run_out(a)
    new = await b.acquire()
    assert new is not None and new > old
    with pytest.raises(LeaseLost):
        await asyncio.create_task(append_fenced(Fence(a.name, old), 2))
    await asyncio.create_task(append_fenced(Fence(b.name, new), 3))
    # Appends that are no job's carry no fence and are never refused.
    await store.append("system-jobs", [_event(4)], expected_version=ANY, recorded_at=now)
    stored = [e.id for e in await store.read_stream("system-jobs")]
    assert stored == ["fenced-1", "fenced-3", "fenced-4"]
