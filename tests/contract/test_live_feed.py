"""The live feed on every store: nothing is lost across a reconnect, whoever was subscribed in
between; a cut between two messages of one position loses nothing; too far back is a reset."""

from __future__ import annotations

import asyncio
from typing import Any

from obt.live import LiveHub, LiveMessage, Subscription, status_counts
from obt.live_changes import Watch
from obt.projections.clients import ClientsProjector
from obt.projections.models import ModelsProjector
from obt.projections.queries import ReadModels
from obt.projections.timeline import TIMELINE
from obt.store.ports import Store
from tests.support.fleet import Fleet

DocId = tuple[str, str]


async def fleet_and_hub(store: Store, **options: Any) -> tuple[Fleet, LiveHub]:
    fleet = Fleet(store)
    await fleet.start()
    clients = fleet.runner.projector("clients")
    models = fleet.runner.projector("models")
    assert isinstance(clients, ClientsProjector) and isinstance(models, ModelsProjector)
    hub = LiveHub(
        ReadModels(store, clients, models),
        fleet.clock,
        counts=lambda: status_counts(clients),
        **options,
    )
    hub.begin(max(fleet.runner.positions.values()))
    fleet.runner.subscribe(hub.publish)
    return fleet, hub


def drain(sub: Subscription) -> list[LiveMessage]:
    out: list[LiveMessage] = []
    while not sub.queue.empty():
        out.extend(sub.queue.get_nowait())
    return out


async def connect(
    hub: LiveHub, last_event_id: int | None, watch: Watch | None = None
) -> tuple[Subscription, list[LiveMessage]]:
    """Subscribe and take everything the next flush sends, as a reconnecting page would."""
    sub, first = hub.subscribe(last_event_id, watch)
    await hub.flush()
    return sub, first + drain(sub)


def doc_id(message: LiveMessage) -> DocId:
    key = {"client": "client_id", "timeline": "position", "model": "name"}[message.event]
    return message.event, str(message.data[key])


def latest(messages: list[LiveMessage]) -> dict[DocId, dict[str, Any]]:
    seen: dict[DocId, dict[str, Any]] = {}
    for m in messages:
        if m.event in ("client", "timeline", "model"):
            seen[doc_id(m)] = m.data
    return seen


async def changed_after(fleet: Fleet, hub: LiveHub, position: int) -> dict[DocId, dict[str, Any]]:
    """What a subscriber that saw everything up to `position` is owed, worked out from the read
    models themselves: every client, model and timeline entry as it is now."""
    now = fleet.clock.now()
    owed: dict[DocId, dict[str, Any]] = {}
    read = hub._read_models
    for client in await read.clients(now):
        if client["position"] > position:
            owed["client", client["client_id"]] = client
    for entry in await fleet.store.find(TIMELINE):
        if entry["position"] > position:
            owed["timeline", str(entry["position"])] = entry
    return owed


async def a_busy_absence(fleet: Fleet) -> None:
    """Registrations, model changes, an Ollama outage and timeouts, while nobody listens."""
    await fleet.register("c")
    await fleet.models("a", {"llama3:8b": "d1", "qwen:1b": "d2"}, loaded={"llama3:8b": 512})
    await fleet.heartbeat("b", reachable=False)
    await fleet.models("b", {"llama3:8b": "d9"})
    fleet.clock.advance(40)  # a and c fall silent past the timeout ...
    await fleet.heartbeat("b", reachable=False)
    await fleet.sweep()
    await fleet.register("d")  # ... and one more joins after the timeouts
    await fleet.project()


async def test_a_lone_subscriber_that_comes_back_gets_every_change_of_its_absence(
    store: Store,
) -> None:
    fleet, hub = await fleet_and_hub(store)
    await fleet.register("a")
    await fleet.register("b")
    await fleet.project()
    sub, seen = await connect(hub, None)
    await fleet.heartbeat("a")
    await fleet.project()
    await hub.flush()
    seen += drain(sub)
    assert seen, "the subscriber was sent nothing while connected"
    gone_at = seen[-1].id
    hub.unsubscribe(sub)
    assert hub.subscriber_count == 0

    await a_busy_absence(fleet)

    back, resumed = await connect(hub, gone_at)
    assert "reset" not in [m.event for m in resumed]
    owed = await changed_after(fleet, hub, gone_at)
    got = latest(resumed)
    assert {k for k in owed if k[0] == "client"} == {("client", c) for c in ("a", "b", "c", "d")}, (
        "the test's absence changed every client"
    )
    assert any(e["type"] == "ClientTimedOut" for k, e in owed.items() if k[0] == "timeline")
    for key, doc in owed.items():
        assert key in got, f"{key} changed while away and was not sent on resume"
        if key[0] == "timeline":
            assert got[key] == doc
        else:
            assert got[key]["status"] == doc["status"]
            assert got[key]["position"] == doc["position"]
    models = {k[1]: v for k, v in got.items() if k[0] == "model"}
    assert set(models) == {"llama3:8b", "qwen:1b"}
    assert {h["client_id"] for h in models["llama3:8b"]["hosts"]} == {"a", "b"}
    assert models["llama3:8b"]["drift"] is True
    assert resumed[-1].id == hub.index.head
    hub.unsubscribe(back)


async def test_a_cut_between_any_two_messages_loses_nothing(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store)
    await fleet.register("a")
    await fleet.register("b")
    await fleet.project()
    start = hub.index.head
    await a_busy_absence(fleet)
    await fleet.start()  # a server start: one position that changes every client
    await fleet.project()
    sub, everything = await connect(hub, start)
    hub.unsubscribe(sub)
    owed = await changed_after(fleet, hub, start)
    positions = [m.data.get("position") for m in everything]
    inside_a_position = [
        i
        for i in range(len(everything) - 1)
        if positions[i] is not None and positions[i] == positions[i + 1]
    ]
    assert inside_a_position, "no two messages of one position: the test cannot cut there"

    for cut in range(len(everything)):
        received = everything[: cut + 1]
        sub, resumed = await connect(hub, received[-1].id)
        hub.unsubscribe(sub)
        assert "reset" not in [m.event for m in resumed]
        got = latest(received + resumed)
        missing = [k for k in owed if k not in got or (k[0] == "timeline" and got[k] != owed[k])]
        assert not missing, f"cut after message {cut} (id {received[-1].id}) lost {missing}"
        for key, doc in owed.items():
            if key[0] == "client":
                assert got[key]["position"] == doc["position"], (cut, key)


async def test_ids_never_claim_a_position_whose_messages_are_still_coming(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store)
    sub, _ = hub.subscribe(None)
    for cid in ("a", "b", "c"):
        await fleet.register(cid)
    await fleet.start()
    await fleet.project()
    await hub.flush()
    messages = drain(sub)
    for i, message in enumerate(messages):
        later = [m.data["position"] for m in messages[i + 1 :] if "position" in m.data]
        assert all(p > message.id for p in later), f"message {i} id {message.id} over-claims"
    assert [m.id for m in messages] == sorted(m.id for m in messages)


async def test_too_far_back_for_the_index_is_a_reset(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store, history=5)
    await fleet.register("a")
    await fleet.project()
    sub, _ = await connect(hub, None)
    hub.unsubscribe(sub)
    mark = hub.index.head
    for cid in ("b", "c", "d", "e"):
        await fleet.register(cid)  # two documents each: more than five are remembered
    await fleet.project()
    assert not hub.index.covers(mark)
    _, resumed = await connect(hub, mark)
    assert [m.event for m in resumed] == ["reset"]
    assert resumed[0].id == hub.index.head
    _, ahead = await connect(hub, hub.index.head + 10)  # an id this server never gave
    assert [m.event for m in ahead] == ["reset"]


async def test_a_busy_client_is_one_message_per_flush_and_watches_filter(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store)
    for cid in ("a", "b"):
        await fleet.register(cid)
    await fleet.project()
    plain, _ = hub.subscribe(None)
    one, first = hub.subscribe(None, Watch.parse(["client:a,counts"]))
    assert [m.event for m in first] == ["counts"]
    assert first[0].data["by_status"]["online"] == 2
    for _ in range(5):
        fleet.clock.advance(1)
        await fleet.heartbeat("a")
        await fleet.heartbeat("b")
        await fleet.project()
    await hub.flush()
    everything = drain(plain)
    assert sorted(m.data["client_id"] for m in everything if m.event == "client") == ["a", "b"]
    assert "counts" not in {m.event for m in everything}
    watched = drain(one)
    assert [m.event for m in watched] == ["client", "counts"]
    assert watched[0].data["client_id"] == "a"
    assert watched[0].data["last_seen"] == fleet.clock.now().isoformat()

    await fleet.heartbeat("b", reachable=False)  # nothing `one` watches, but the counts move
    await fleet.project()
    await hub.flush()
    watched = drain(one)
    assert [m.event for m in watched] == ["counts"]
    assert watched[0].data["by_status"]["degraded"] == 1
    assert watched[0].id == hub.index.head  # its watermark moves on all the same


async def test_more_than_a_page_can_take_is_a_reset(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store, budget=3)
    sub, _ = hub.subscribe(None)
    small, _ = hub.subscribe(None, Watch.parse(["client:a"]))
    for cid in ("a", "b"):
        await fleet.register(cid)  # four documents: two clients, two timeline entries
    await fleet.project()
    await hub.flush()
    assert [m.event for m in drain(sub)] == ["reset"]
    assert [m.event for m in drain(small)] == ["client"]


async def test_named_clients_are_sent_as_they_are_when_the_watch_begins(store: Store) -> None:
    fleet, hub = await fleet_and_hub(store)
    for cid in ("a", "b", "c"):
        await fleet.register(cid)
    await fleet.project()
    await fleet.heartbeat("b", reachable=False)
    await fleet.project()
    mark = hub.index.head
    await fleet.heartbeat("c", reachable=False)
    await fleet.project()

    fresh, first = await connect(hub, None, Watch.parse(["client:a,client:b"]))
    assert {m.data["client_id"]: m.data["status"] for m in first} == {
        "a": "online",
        "b": "degraded",
    }
    assert all(m.id == hub.index.head > mark for m in first)
    resumed, again = await connect(hub, mark, Watch.parse(["client:a,client:c"]))
    assert [(m.data["client_id"], m.data["status"]) for m in again] == [
        ("a", "online"),  # unchanged since `mark`, sent because it is named ...
        ("c", "degraded"),  # ... then what changed after `mark`
    ]
    assert mark <= again[0].id < again[1].data["position"]
    assert again[1].id == hub.index.head
    await fleet.heartbeat("a")
    await fleet.project()
    await hub.flush()
    assert [m.data["client_id"] for m in drain(fresh)] == ["a"]  # named once, then changes
    assert [m.data["client_id"] for m in drain(resumed)] == ["a"]


async def test_the_hub_task_holds_changes_for_the_interval_but_not_a_newcomer(
    store: Store,
) -> None:
    fleet, hub = await fleet_and_hub(store, interval_s=3600)
    watcher, _ = hub.subscribe(None)
    hub.start()
    try:
        await fleet.register("a")
        await fleet.project()
        first = await asyncio.wait_for(watcher.queue.get(), 10)  # the log was quiet: at once
        assert {m.event for m in first} == {"client", "timeline"}

        await fleet.register("b")  # within the interval: held back ...
        await fleet.project()
        newcomer, _ = hub.subscribe(first[-1].id)
        caught_up = await asyncio.wait_for(newcomer.queue.get(), 10)  # ... a newcomer is not
        assert {m.data.get("client_id") for m in caught_up} == {"b"}
        assert watcher.queue.empty(), "a change was sent before the interval passed"
    finally:
        await hub.stop()
