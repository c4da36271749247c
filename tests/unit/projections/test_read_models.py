"""Read models built by the real handlers and projectors on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from obt.bootstrap import make_codec
from obt.projections.clients import ClientsProjector
from obt.projections.models import ModelsProjector
from obt.projections.queries import ReadModels
from obt.projections.replay import client_state, fleet_state
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(MemoryStore(make_codec()))
    await f.start()
    return f


async def statuses(fleet: Fleet) -> dict[str, str]:
    await fleet.project()
    clients = await ReadModels(fleet.store).clients(fleet.clock.now())
    return {c["client_id"]: c["status"] for c in clients}


async def test_status_follows_registration_heartbeats_timeout_and_recovery(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.register("b", reachable=False)
    assert await statuses(fleet) == {"a": "online", "b": "degraded"}
    fleet.clock.advance(10)
    await fleet.heartbeat("a", reachable=False)
    await fleet.heartbeat("b", reachable=True)
    assert await statuses(fleet) == {"a": "degraded", "b": "online"}
    fleet.clock.advance(31)
    assert sorted(await fleet.sweep()) == ["a", "b"]
    assert await fleet.sweep() == []  # once per silence
    assert await statuses(fleet) == {"a": "offline", "b": "offline"}
    fleet.clock.advance(5)
    await fleet.heartbeat("a")
    await fleet.deregister("b")
    assert await statuses(fleet) == {"a": "online", "b": "stopped"}
    await fleet.decommission("b")
    assert await statuses(fleet) == {"a": "online", "b": "decommissioned"}


async def test_offline_starts_one_interval_after_the_last_heartbeat(fleet: Fleet) -> None:
    await fleet.register("a")
    started = fleet.clock.now()
    fleet.clock.advance(31)
    await fleet.sweep()
    await fleet.project()
    doc = await ReadModels(fleet.store).client("a", fleet.clock.now())
    assert doc is not None
    assert doc["status"] == "offline"
    assert doc["status_since"] == (started + timedelta(seconds=10)).isoformat()


async def test_server_outage_is_unknown_not_downtime(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.register("s")
    await fleet.deregister("s")
    t0 = fleet.clock.now()
    fleet.clock.advance(600)
    await fleet.heartbeat("a")
    await fleet.restart_server(clean=True, down_for_s=3600)
    assert (await statuses(fleet))["a"] == "unknown"
    assert (await statuses(fleet))["s"] == "stopped"  # back to what it was before the outage
    # Grace window: no timeout within one timeout window after the start.
    fleet.clock.advance(29)
    assert await fleet.sweep() == []
    fleet.clock.advance(2)
    assert await fleet.sweep() == ["a"]
    await fleet.project()
    read = ReadModels(fleet.store)
    doc = await read.client("a", fleet.clock.now())
    assert doc is not None
    assert doc["status"] == "offline"
    # Offline from the server start, not from before the outage.
    assert doc["status_since"] == (t0 + timedelta(seconds=600 + 3600)).isoformat()
    uptime = await read.uptime(
        "a", t0, fleet.clock.now() + timedelta(seconds=1), "day", fleet.clock.now()
    )
    totals = {k: sum(i[k] for i in uptime["items"]) for k in ("up_s", "unknown_s", "down_s")}
    assert totals["up_s"] == pytest.approx(600)
    assert totals["unknown_s"] == pytest.approx(3600)
    assert totals["down_s"] == pytest.approx(31)
    statuses_seen = [i["status"] for i in uptime["intervals"]]
    assert statuses_seen == ["online", "unknown", "offline"]


async def test_unclean_stop_counts_from_the_last_event(fleet: Fleet) -> None:
    await fleet.register("a")
    fleet.clock.advance(20)
    await fleet.heartbeat("a")
    last_event = fleet.clock.now()
    await fleet.restart_server(clean=False, down_for_s=100)
    await fleet.project()
    doc = await ReadModels(fleet.store).client("a", fleet.clock.now())
    assert doc is not None
    assert doc["status"] == "unknown"
    assert doc["status_since"] == last_event.isoformat()
    fleet.clock.advance(3)
    await fleet.heartbeat("a")
    assert (await statuses(fleet))["a"] == "online"


async def test_uptime_buckets_split_at_hour_boundaries(fleet: Fleet) -> None:
    fleet.clock.current = fleet.clock.current.replace(minute=30)
    start = fleet.clock.now()
    await fleet.register("a")
    for _ in range(6 * 60):  # one hour of heartbeats
        fleet.clock.advance(10)
        await fleet.heartbeat("a")
    await fleet.project()
    fleet.clock.advance(40)
    await fleet.sweep()  # offline since last heartbeat + 10 s
    fleet.clock.advance(600)
    await fleet.project()
    read = ReadModels(fleet.store)
    now = fleet.clock.now()
    uptime = await read.uptime("a", start, now, "hour", now)
    items = uptime["items"]
    assert [i["up_s"] for i in items] == [1800.0, 1810.0]
    assert items[1]["down_s"] == pytest.approx(now.minute * 60 + now.second - 1810)
    client = await read.client("a", now)
    assert client is not None
    assert client["uptime_24h"] == pytest.approx(3610 / (3610 + 630), rel=1e-4)


async def test_timeline_pages_backwards(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.models("a", {"m1": "sha256:1", "m2": "sha256:2"}, {"m1": 500})
    await fleet.heartbeat("a", reachable=False)
    await fleet.project()
    read = ReadModels(fleet.store)
    items, next_before = await read.timeline("a", None, 2)
    assert [i["type"] for i in items] == ["OllamaBecameUnavailable", "ModelLoaded"]
    assert next_before == items[-1]["position"]
    rest, more = await read.timeline("a", next_before, 10)
    assert [i["type"] for i in rest] == ["ModelAdded", "ModelAdded", "ClientRegistered"]
    assert more is None
    fleet_items, _ = await read.timeline(None, None, 100)
    assert fleet_items[-1]["type"] == "ServerStarted"


async def test_model_availability_and_drift(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.register("b")
    await fleet.models("a", {"llama3": "sha256:aaa", "qwen": "sha256:q"}, {"llama3": 100})
    await fleet.models("b", {"llama3": "sha256:bbb"})
    await fleet.project()
    models = {m["name"]: m for m in await ReadModels(fleet.store).models()}
    assert models["llama3"]["drift"] is True
    assert models["llama3"]["installed_count"] == 2
    assert models["llama3"]["loaded_count"] == 1
    assert models["qwen"]["drift"] is False
    await fleet.models("b", {"llama3": "sha256:aaa"})
    await fleet.models("a", {"llama3": "sha256:aaa"})
    await fleet.project()
    models = {m["name"]: m for m in await ReadModels(fleet.store).models()}
    assert set(models) == {"llama3"}
    assert models["llama3"]["drift"] is False
    await fleet.decommission("b")
    await fleet.project()
    models = {m["name"]: m for m in await ReadModels(fleet.store).models()}
    assert [h["client_id"] for h in models["llama3"]["hosts"]] == ["a"]


async def test_state_as_of_before_a_model_change(fleet: Fleet) -> None:
    await fleet.register("a")
    await fleet.models("a", {"old": "sha256:1"})
    fleet.clock.advance(60)
    before = fleet.clock.now()
    fleet.clock.advance(60)
    await fleet.models("a", {"new": "sha256:2"})
    _, doc = await client_state(fleet.store, "a", before)
    assert doc is not None
    assert [m["name"] for m in doc["models"]] == ["old"]
    fleet.clock.advance(5)
    await fleet.heartbeat("a")
    beat = fleet.clock.now()
    _, now_doc = await client_state(fleet.store, "a", fleet.clock.now())
    assert now_doc is not None
    assert [m["name"] for m in now_doc["models"]] == ["new"]
    assert now_doc["last_seen"] == beat.isoformat()
    _, fleet_now = await fleet_state(fleet.store, beat)
    assert fleet_now[0]["last_seen"] == beat.isoformat()
    position, clients = await fleet_state(fleet.store, before)
    assert [c["client_id"] for c in clients] == ["a"]
    assert position < await fleet.store.head()
    _, nobody = await client_state(fleet.store, "a", before - timedelta(days=1))
    assert nobody is None


async def test_cached_lists_follow_every_change() -> None:
    """With the running projectors as the source, lists are cached per change and second."""
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    clients = fleet.runner.projector("clients")
    models = fleet.runner.projector("models")
    assert isinstance(clients, ClientsProjector)
    assert isinstance(models, ModelsProjector)
    read = ReadModels(fleet.store, clients, models)
    await fleet.register("a")
    await fleet.project()
    now = fleet.clock.now()
    first = await read.clients(now)
    assert await read.clients(now) is first  # nothing changed: the same list
    await fleet.heartbeat("a", reachable=False)
    await fleet.project()
    assert [c["status"] for c in await read.clients(now)] == ["degraded"]
    assert await read.models() == []
    await fleet.models("a", {"m": "sha256:1"})
    await fleet.project()
    assert [m["name"] for m in await read.models()] == ["m"]
