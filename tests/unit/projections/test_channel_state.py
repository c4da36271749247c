"""The client read model's connection facts, from ChannelOpened/ChannelClosed and heartbeats."""

from __future__ import annotations

from typing import Any

import pytest

from obt.bootstrap import make_codec
from obt.projections.queries import ReadModels
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet

CONNECTION = ("transport", "connected_since", "connection_lost", "reconnects_24h")


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(MemoryStore(make_codec()))
    await f.start()
    return f


async def connection(fleet: Fleet, cid: str = "a") -> dict[str, Any]:
    await fleet.project()
    doc = await ReadModels(fleet.store).client(cid, fleet.clock.now())
    assert doc is not None
    return {k: doc[k] for k in (*CONNECTION, "last_disconnect", "status")}


async def test_transport_follows_the_channel_and_http(fleet: Fleet) -> None:
    await fleet.register("a")
    registered = fleet.clock.now().isoformat()
    got = await connection(fleet)
    assert (got["transport"], got["connected_since"]) == ("http", registered)
    fleet.clock.advance(1)
    await fleet.open_channel("a")
    opened = fleet.clock.now().isoformat()
    got = await connection(fleet)
    assert (got["transport"], got["connected_since"], got["reconnects_24h"]) == (
        "channel",
        opened,
        0,
    )
    fleet.clock.advance(5)
    await fleet.heartbeat("a")  # over the channel: nothing changes
    assert (await connection(fleet))["connected_since"] == opened


async def test_a_dropped_channel_is_connection_lost_at_once_until_the_agent_talks_again(
    fleet: Fleet,
) -> None:
    await fleet.register("a")
    await fleet.open_channel("a")
    fleet.clock.advance(3)
    await fleet.close_channel("a", "error")
    dropped = fleet.clock.now().isoformat()
    got = await connection(fleet)
    assert got["connection_lost"] is True
    assert got["transport"] is None
    assert got["last_disconnect"] == {"at": dropped, "reason": "error"}
    assert got["status"] == "online"  # status still follows heartbeats and the timeout
    fleet.clock.advance(2)
    await fleet.heartbeat("a")  # no channel open: this one came over HTTP
    got = await connection(fleet)
    assert (got["transport"], got["connection_lost"]) == ("http", False)
    assert got["connected_since"] == fleet.clock.now().isoformat()


async def test_reconnects_of_one_agent_run_are_counted_for_24_hours(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.open_channel("a")  # the run's first channel: not a reconnect
    for _ in range(3):
        fleet.clock.advance(60)
        await fleet.close_channel("a", "error")
        await fleet.open_channel("a")
    assert (await connection(fleet))["reconnects_24h"] == 3
    fleet.clock.advance(60)
    await fleet.open_channel("a")  # replaces the open one: the same run again
    assert (await connection(fleet))["reconnects_24h"] == 4
    fleet.clock.advance(24 * 3600 - 60)  # the first two fall out of the window
    assert (await connection(fleet))["reconnects_24h"] == 2
    await fleet.register("a", new_session=True)  # a restarted agent starts counting afresh
    await fleet.open_channel("a")
    assert (await connection(fleet))["reconnects_24h"] == 2


async def test_a_clean_close_after_a_deregistration_is_not_a_lost_connection(
    fleet: Fleet,
) -> None:
    await fleet.register("a")
    await fleet.open_channel("a")
    await fleet.deregister("a")
    await fleet.close_channel("a", "idle")
    got = await connection(fleet)
    assert (got["status"], got["connection_lost"], got["transport"]) == ("stopped", False, None)


async def test_channels_end_with_the_server_even_when_their_close_was_never_recorded(
    fleet: Fleet,
) -> None:
    await fleet.register("a")
    await fleet.open_channel("a")
    await fleet.restart_server(clean=False, down_for_s=10)
    got = await connection(fleet)
    assert (got["transport"], got["connection_lost"]) == (None, False)


async def test_the_close_of_a_replaced_channel_does_not_end_its_successor(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.open_channel("a")
    old = fleet.agents["a"].channel
    await fleet.open_channel("a")
    fleet.agents["a"].channel, new = old, fleet.agents["a"].channel
    await fleet.close_channel("a", "error")  # the old one's late close
    fleet.agents["a"].channel = new
    got = await connection(fleet)
    assert (got["transport"], got["connection_lost"]) == ("channel", False)
