"""This instance's claim on the jobs lease: take it or renew it every poll, and say whether the
jobs that must run once (timeouts, alerts, delivery, compaction) may run here now.

The lease is asked for `duration_s = ttl - 2 * poll` at a time and renewed every `poll = ttl
/ 10`: a live holder keeps it through several missed renewals, and when it dies another
instance takes over at most `duration + poll` (0.9 TTL) after its last renewal. The holder
counts its term from the moment it asked, on its own monotonic clock, so it stops running
jobs before the store would let another take over; the fencing token covers what a pause
could still slip through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from obt.errors import StoreError
from obt.store.lease import Fence, Lease, fence_task

log = logging.getLogger(__name__)


def lease_timing(ttl_s: float) -> tuple[float, float]:
    """(duration of one take or renewal, poll interval) for a lease TTL."""
    poll = ttl_s / 10
    return ttl_s - 2 * poll, poll


class LeaseKeeper:
    def __init__(
        self,
        lease: Lease,
        *,
        poll_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.poll_s = poll_s
        self._monotonic = monotonic
        self.token: int | None = None
        self._valid_until = 0.0
        self.terms = 0  # how many times this instance became the holder
        self.last_error: str | None = None

    @property
    def holding(self) -> bool:
        return self.token is not None and self._monotonic() < self._valid_until

    async def tick(self) -> bool:
        """Take or renew the lease once; whether this instance holds it now."""
        asked = self._monotonic()
        try:
            token = await self.lease.acquire()
        except StoreError as exc:
            self.last_error = str(exc)
            log.warning("jobs lease not renewed: %s", exc)
            return self.holding  # still ours until the term we had runs out
        self.last_error = None
        if token is None:
            if self.token is not None:
                log.warning("jobs lease lost: another instance holds it now")
            self.token = None
            return False
        if token != self.token:
            self.terms += 1
            log.info("this instance (%s) holds the jobs lease, token %d", self.lease.holder, token)
        self.token = token
        self._valid_until = asked + self.lease.duration_s
        return True

    def hold_reason(self) -> str | None:
        """None when the jobs may run now, and from then on the calling task's appends carry
        this term's fencing token; otherwise why not."""
        if self.holding:
            assert self.token is not None
            fence_task(Fence(self.lease.name, self.token))
            return None
        fence_task(None)
        return "another instance holds the jobs lease"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)

    async def release(self) -> None:
        if self.token is None:
            return
        self.token = None
        try:
            await self.lease.release()
        except StoreError as exc:
            log.warning("jobs lease not released (another instance takes it on expiry): %s", exc)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.lease.name,
            "instance": self.lease.holder,
            "holding": self.holding,
            "token": self.token,
            "terms": self.terms,
            "last_error": self.last_error,
        }
