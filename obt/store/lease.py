"""The lease for the jobs that must run once among several instances: who holds it, until
when, and a fencing token that grows with each new holder.

Two adapters behind one port: `MemoryLease` (one process: SQLite and tests; the lease is
trivially held) and `MongoLease` (obt/store/mongodb_lease.py: one document every instance
shares). A job's appends carry its holder's token (`fenced`): the MongoDB store checks it
inside the append's transaction and refuses a stale one with LeaseLost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

JOBS_LEASE = "jobs"


@dataclass(frozen=True, slots=True)
class Fence:
    lease: str
    token: int


_fence: ContextVar[Fence | None] = ContextVar("obt_fence", default=None)


def current_fence() -> Fence | None:
    """The fence the calling task's appends carry (None: not a job's write)."""
    return _fence.get()


def fence_task(fence: Fence | None) -> None:
    """From now on, every append the calling task makes carries `fence` (None: no fence)."""
    _fence.set(fence)


class Lease(Protocol):
    name: str
    holder: str
    shared: bool  # other processes may hold it (False: this process is the only one)
    duration_s: float  # how long a take or renewal holds, from the moment it is asked

    async def acquire(self) -> int | None:
        """Take the lease if it is free or expired, renew it if held: the token while this
        holder has it, None while another does."""
        ...

    async def release(self) -> None:
        """Give the lease up now (a clean stop), so another instance takes it at once."""
        ...

    async def current_holder(self) -> str | None:
        """Who holds the lease now (None: nobody, or it expired)."""
        ...


@dataclass
class _Record:
    holder: str
    token: int
    expires_at: float


class MemoryLeases:
    """Leases in one process's memory, on an injectable monotonic clock (seconds)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.records: dict[str, _Record] = {}


class MemoryLease:
    shared = False

    def __init__(
        self,
        holder: str,
        duration_s: float,
        *,
        name: str = JOBS_LEASE,
        leases: MemoryLeases | None = None,
    ) -> None:
        self.name = name
        self.holder = holder
        self.duration_s = duration_s
        self._leases = leases or MemoryLeases()

    async def acquire(self) -> int | None:
        now = self._leases.monotonic()
        record = self._leases.records.get(self.name)
        if record is not None and record.expires_at > now:
            if record.holder != self.holder:
                return None
            record.expires_at = now + self.duration_s
            return record.token
        token = (record.token if record else 0) + 1  # a new holder (or a new term): a new token
        self._leases.records[self.name] = _Record(self.holder, token, now + self.duration_s)
        return token

    async def release(self) -> None:
        record = self._leases.records.get(self.name)
        if record is not None and record.holder == self.holder:
            record.expires_at = self._leases.monotonic()

    async def current_holder(self) -> str | None:
        record = self._leases.records.get(self.name)
        if record is None or record.expires_at <= self._leases.monotonic():
            return None
        return record.holder
