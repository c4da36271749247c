"""Background work driven from the log and the clock, in one place: alert evaluation and
notification delivery (and whatever else must run beside the projections).

Each job is a small object with `run_once()`; `BackgroundJobs` runs them in turn on one task,
every tick or sooner when woken (a projection batch that brought something for them). A store
outage holds them, as it holds the timeout scheduler: silence then is OBT's, not the fleet's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from obt.errors import StoreError
from obt.projections.base import Change

log = logging.getLogger(__name__)


class Job(Protocol):
    name: str

    async def run_once(self) -> int:
        """Do what is due now; how many things it did (events appended, notices sent)."""
        ...


class BackgroundJobs:
    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        tick_s: float = 1.0,
        hold: Callable[[], str | None] = lambda: None,
        wake_on: Collection[str] = ("alert", "alert_rule", "alert_notice", "operation"),
    ) -> None:
        self.jobs = list(jobs)
        self._wake_on = frozenset(wake_on)  # read-model changes that bring jobs work
        self._tick_s = tick_s
        self._hold = hold  # says why not to run now (the store is down)
        self._wake = asyncio.Event()
        self.running = False
        self.held: str | None = None
        self.errors: dict[str, str] = {}
        self.done: dict[str, int] = {job.name: 0 for job in self.jobs}

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def wake(self) -> None:
        self._wake.set()

    def on_changes(self, changes: Sequence[Change]) -> None:
        """A projection-runner listener: wake for the changes the jobs act on."""
        if any(c.kind in self._wake_on for c in changes):
            self._wake.set()

    async def run_once(self) -> int:
        """Every job once, in order; a store error stops only the job it hit."""
        self.held = self._hold()
        if self.held is not None:
            return 0
        total = 0
        for job in self.jobs:
            try:
                n = await job.run_once()
            except StoreError as exc:
                self.errors[job.name] = str(exc)
                log.warning("job %s paused: %s", job.name, exc)
                continue
            self.errors.pop(job.name, None)
            self.done[job.name] += n
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        self.running = True
        try:
            while not stop.is_set():
                self._wake.clear()
                await self.run_once()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED),
                        timeout=self._tick_s,
                    )
                for task in (waiter, stopper):
                    task.cancel()
                await asyncio.gather(waiter, stopper, return_exceptions=True)
        finally:
            self.running = False

    async def close(self) -> None:
        """Let every job that holds resources (connections, tasks) let go of them."""
        for job in self.jobs:
            close = getattr(job, "close", None)
            if close is not None:
                await close()

    def describe(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "tick_s": self._tick_s,
            "jobs": [
                {"name": j.name, "done": self.done[j.name], "error": self.errors.get(j.name)}
                for j in self.jobs
            ],
            "held": self.held,
        }
