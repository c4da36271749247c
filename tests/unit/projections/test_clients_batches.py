"""The clients read model does not depend on where batch boundaries fall."""

from __future__ import annotations

from obt.bootstrap import make_codec
from obt.projections.runner import ProjectionRunner
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


async def test_a_heartbeat_then_a_timeout_in_one_batch_keep_the_heartbeats_last_seen() -> None:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    await fleet.register("a")
    fleet.clock.advance(10)
    await fleet.heartbeat("a")
    beat_at = fleet.clock.now().isoformat()
    fleet.clock.advance(120)
    assert await fleet.sweep() == ["a"]
    one_batch = ProjectionRunner(fleet.store, batch_size=1000)
    await one_batch.start()
    await one_batch.catch_up()
    doc = await fleet.store.get("clients", "a")
    assert doc is not None
    assert (doc["status"], doc["last_seen"]) == ("offline", beat_at)
