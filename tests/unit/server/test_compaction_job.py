"""The daily compaction job: due on the clock, run on its own task, reported when done."""

from __future__ import annotations

from datetime import timedelta

from obt.bootstrap import make_codec
from obt.compaction import CompactionJob, Compactor
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


async def beating_fleet() -> Fleet:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    await fleet.register("a")
    for _ in range(10):
        fleet.clock.advance(10)
        await fleet.heartbeat("a")
    return fleet


async def test_the_job_runs_once_a_day_after_a_settling_delay() -> None:
    fleet = await beating_fleet()
    store = fleet.store
    compactor = Compactor(store, timedelta(hours=1), fleet.clock.now)  # type: ignore[arg-type]
    seen: list[float] = []
    job = CompactionJob(
        compactor,
        fleet.clock.now,
        first_after=timedelta(minutes=5),
        observe=lambda report: seen.append(report.removed),
    )
    fleet.clock.advance(2 * 3600)
    assert await job.run_once() == 0 and not job.running  # the first tick only schedules
    fleet.clock.advance(4 * 60)
    assert await job.run_once() == 0 and not job.running
    fleet.clock.advance(60)
    assert await job.run_once() == 0 and job.running
    report = await job.finished()
    assert report is not None and report.removed == 8  # heartbeats 2..9 of one run
    assert seen == []
    assert await job.run_once() == 8  # reported once, on the next tick
    assert seen == [8]
    assert await job.run_once() == 0 and not job.running
    fleet.clock.advance(23 * 3600)
    assert await job.run_once() == 0 and not job.running  # not yet a day since
    fleet.clock.advance(3600)
    await job.run_once()
    assert job.running
    await job.finished()
    assert await job.run_once() == 0  # nothing more to move
    await job.stop()


async def test_a_retention_of_zero_turns_the_job_off() -> None:
    fleet = await beating_fleet()
    compactor = Compactor(fleet.store, timedelta(0), fleet.clock.now)  # type: ignore[arg-type]
    job = CompactionJob(compactor, fleet.clock.now, first_after=timedelta(0))
    fleet.clock.advance(3 * 86_400)
    assert await job.run_once() == 0
    assert not job.running
    assert await fleet.store.archive().entries() == []  # type: ignore[attr-defined]
