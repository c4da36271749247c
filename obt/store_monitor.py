"""Watches the store while the server runs, so a store outage is a server outage.

While the store cannot be reached, writes are refused at once (503 with Retry-After, no request
waits on a dead store) and the timeout scheduler holds its sweeps. When the store answers again
the gap is recorded on the `system` stream as ServerStopped + ServerStarted: read models show
every client as *unknown* for it, and the start's grace window keeps anyone from being timed
out for silence the outage caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Protocol

from obt.commands.handlers import Clock
from obt.commands.lifecycle import ServerLifecycle
from obt.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)


class Pingable(Protocol):
    async def ping(self) -> float: ...


class StoreMonitor:
    def __init__(
        self,
        store: Pingable,
        lifecycle: ServerLifecycle,
        clock: Clock,
        *,
        interval_s: float = 1.0,
        ping_timeout_s: float = 2.0,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._clock = clock
        self.interval_s = interval_s
        self._ping_timeout_s = ping_timeout_s
        self.down_since: datetime | None = None
        self.last_error: str | None = None
        self.outages = 0

    @property
    def store_down(self) -> bool:
        return self.down_since is not None

    def refuse_writes_while_down(self) -> None:
        """Raise StoreUnavailable while the store is known to be down (the command gate)."""
        if self.down_since is not None:
            raise StoreUnavailable(
                f"the store has been unreachable since {self.down_since.isoformat()}: "
                f"{self.last_error}"
            )

    def hold_reason(self) -> str | None:
        """Why the timeout scheduler must not sweep now (None: it may)."""
        if self.down_since is None:
            return None
        return f"store unreachable since {self.down_since.isoformat()}"

    async def check(self) -> bool:
        """Ping once; record a recovery. True when the store is usable."""
        now = self._clock.now()
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                await self._store.ping()
        except (StoreError, TimeoutError) as exc:
            self.last_error = str(exc) or f"no answer within {self._ping_timeout_s} s"
            if self.down_since is None:
                self.down_since = now
                self.outages += 1
                log.error("store unreachable, writes refused: %s", self.last_error)
            return False
        if self.down_since is not None:
            try:
                await self._lifecycle.record_store_outage(self.down_since, self._clock.now())
            except StoreError as exc:  # it failed again at once: stay down, retry next tick
                self.last_error = str(exc)
                return False
            log.warning("store reachable again after an outage since %s", self.down_since)
            self.down_since = None
            self.last_error = None
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)

    def describe(self) -> dict[str, Any]:
        return {
            "down_since": self.down_since,
            "last_error": self.last_error,
            "outages": self.outages,
        }
