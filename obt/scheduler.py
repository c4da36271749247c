"""The timeout scheduler: an APScheduler job that sweeps for silent clients every tick."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from obt.errors import StoreError

log = logging.getLogger(__name__)


class TimeoutScheduler:
    def __init__(
        self,
        sweep: Callable[[], Awaitable[list[str]]],
        tick_s: float,
        hold: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._sweep = sweep
        self._tick_s = tick_s
        # Says why not to sweep now (the store is down: silence then is not the clients').
        self._hold = hold
        self.held: str | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self.started_at: datetime | None = None
        self.last_error: str | None = None
        self.timeouts_emitted = 0

    @property
    def running(self) -> bool:
        return bool(self._scheduler and self._scheduler.running)

    def start(self, now: datetime) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self.run_once,
            "interval",
            seconds=self._tick_s,
            id="detect-timeouts",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler
        self.started_at = now

    async def run_once(self) -> list[str]:
        self.held = self._hold()
        if self.held is not None:
            return []
        try:
            timed_out = await self._sweep()
        except StoreError as exc:
            self.last_error = str(exc)
            log.warning("timeout sweep skipped: %s", exc)
            return []
        self.last_error = None
        self.timeouts_emitted += len(timed_out)
        return timed_out

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def describe(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "tick_s": self._tick_s,
            "timeouts_emitted": self.timeouts_emitted,
            "last_error": self.last_error,
            "held": self.held,
        }
