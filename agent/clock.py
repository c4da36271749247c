"""Time as a port: the loop schedules on `monotonic()`, stamps with `now()` and waits through
`wait()`, so tests drive it with FakeClock in virtual time instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        """Wait `seconds` or until `stop` is set; True when stopped."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        if stop.is_set() or seconds <= 0:
            return stop.is_set()
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return False
        return True


class FakeClock:
    """Virtual time: every wait returns at once, having moved the clock forward."""

    def __init__(self, start: datetime = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) -> None:
        self._mono = 1000.0
        self._start_mono = self._mono
        self._start = start
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._mono - self._start_mono)

    def advance(self, seconds: float) -> None:
        self._mono += seconds

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        await asyncio.sleep(0)  # let other tasks (a test's stopper) run first
        if stop.is_set():
            return True
        self.waits.append(seconds)
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)
        return stop.is_set()
