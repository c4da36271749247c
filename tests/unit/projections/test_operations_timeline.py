"""Fleet operations in the timelines: each host sees its part start and end; the fleet sees the
request and the end; a restarted projector still names the operation's model."""

from __future__ import annotations

from obt.bootstrap import make_codec
from obt.projections.timeline import TIMELINE, TimelineProjector
from obt.store.memory import MemoryStore
from obt.store.ports import ReadStore
from tests.support.fleet import Fleet


async def summaries(store: ReadStore, client_id: str | None) -> list[str]:
    """The operation entries of one host's timeline, or the fleet's own (no client) entries."""
    docs = [d for d in await store.find(TIMELINE) if d["client_id"] == client_id]
    return [
        d["summary"] for d in sorted(docs, key=lambda d: d["position"]) if "Pull" in d["summary"]
    ]


async def test_each_host_timeline_shows_its_part_of_an_operation() -> None:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    await fleet.request_operation(["a", "b"], 2, "pull")
    await fleet.start_target(0, "a")
    await fleet.start_target(0, "b")
    await fleet.report_progress(0, "a", "pulling", 40)
    await fleet.report_result(0, "a", True)
    await fleet.project()

    # A projector started afresh on the same store (as after a restart) loads the names.
    fleet.runner.projectors[:] = [
        TimelineProjector() if isinstance(p, TimelineProjector) else p
        for p in fleet.runner.projectors
    ]
    await fleet.runner.start()
    await fleet.report_result(0, "b", False)
    await fleet.project()

    what = "Pull of llama3.2:3b (operation op1)"
    assert await summaries(fleet.store, "a") == [f"{what} started", f"{what} succeeded"]
    assert await summaries(fleet.store, "b") == [
        f"{what} started",
        f"{what} failed: pull failed",
    ]
    assert await summaries(fleet.store, None) == [
        f"{what} requested on 2 hosts",
        f"{what} finished: 1 succeeded, 1 failed",
    ]  # and progress stays off the timeline
