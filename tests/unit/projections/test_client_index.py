"""Fleet pages from the client index: every match once, in order, across pages; the live index
(fed by the projector's change feed) pages exactly like one built afresh from the documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from obt.bootstrap import make_codec
from obt.live import status_counts
from obt.projections.client_index import (
    SORT_FIELDS,
    STATUS_RANK,
    ClientIndex,
    ClientQuery,
    InvalidCursor,
    encode_cursor,
)
from obt.projections.clients import ClientChanges, ClientsProjector
from obt.projections.queries import ReadModels
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(MemoryStore(make_codec()))
    await f.start()
    return f


def projector(fleet: Fleet) -> ClientsProjector:
    return next(p for p in fleet.runner.projectors if isinstance(p, ClientsProjector))


async def mixed_fleet(fleet: Fleet, n: int = 24) -> None:
    """Clients in every status but unknown, with different model counts and versions."""
    for i in range(n):
        await fleet.register(f"c{i:02d}", reachable=i % 5 != 1)
    fleet.clock.advance(20)
    for i in range(n):
        if i % 5 == 0:
            await fleet.heartbeat(f"c{i:02d}")
        if i % 4 == 0:
            await fleet.models(f"c{i:02d}", {f"m{k}": "sha256:a" for k in range(i % 3 + 1)})
    fleet.clock.advance(15)  # the ones without a heartbeat since registration time out
    for i in range(n):
        if i % 5 in (0, 1):
            await fleet.heartbeat(f"c{i:02d}", reachable=i % 5 == 0)
    await fleet.sweep()
    await fleet.deregister("c03")
    await fleet.decommission("c07")
    await fleet.project()


def fresh_index(fleet: Fleet, few: int = 5000) -> ClientIndex:
    docs = projector(fleet).docs
    return ClientIndex(lambda: docs, ClientChanges(), few=few)


def walk(index: ClientIndex, query: ClientQuery, now: datetime, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = index.page(ClientQuery(**{**query.__dict__, "limit": limit, "cursor": cursor}), now)
        assert len(page.ids) <= limit
        seen += page.ids
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("paging never ended")


REFERENCE: dict[str, Any] = {
    "hostname": lambda d: (d["hostname"], d["client_id"]),
    "client_id": lambda d: (d["client_id"],),
    "status": lambda d: (STATUS_RANK[d["status"]], d["hostname"], d["client_id"]),
    "models_count": lambda d: (d["models_count"], d["hostname"], d["client_id"]),
    "last_seen": lambda d: (d["last_seen"] or "", d["hostname"], d["client_id"]),
}


async def test_pages_hold_every_match_once_in_the_asked_order(fleet: Fleet) -> None:
    await mixed_fleet(fleet)
    now = fleet.clock.now()
    index = fresh_index(fleet)
    docs = list(projector(fleet).docs.values())
    assert {d["status"] for d in docs} >= {"online", "degraded", "offline", "stopped"}
    for sort in SORT_FIELDS:
        for order in ("asc", "desc"):
            query = ClientQuery(sort=sort, order=order)  # type: ignore[arg-type]
            everything = index.page(query, now).ids
            assert sorted(everything) == sorted(d["client_id"] for d in docs)
            for limit in (1, 5, 7, 100):
                assert walk(index, query, now, limit) == everything, (sort, order, limit)
            if sort in REFERENCE:
                expected = [
                    d["client_id"]
                    for d in sorted(docs, key=REFERENCE[sort], reverse=order == "desc")
                ]
                assert everything == expected, (sort, order)


@pytest.mark.parametrize("few", [5000, 0], ids=["sorted-directly", "walked"])
async def test_filters_and_counts(fleet: Fleet, few: int) -> None:
    await mixed_fleet(fleet)
    now = fleet.clock.now()
    index = fresh_index(fleet, few)
    docs = list(projector(fleet).docs.values())
    by_status: dict[str, int] = {}
    for d in docs:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    index.sync(now)
    assert {k: v for k, v in index.counts.items() if v} == by_status

    def ids(**kw: Any) -> tuple[list[str], int]:
        page = index.page(ClientQuery(**kw), now)
        return page.ids, page.matched

    online = sorted(d["client_id"] for d in docs if d["status"] == "online")
    assert ids(statuses=frozenset({"online"})) == (online, len(online))
    two = frozenset({"online", "offline"})
    expected = sorted(d["client_id"] for d in docs if d["status"] in two)
    assert ids(statuses=two, sort="client_id") == (expected, len(expected))
    rack = sorted(d["client_id"] for d in docs if d["labels"]["rack"] == "1")
    assert ids(labels=(("rack", "1"),), sort="client_id") == (rack, len(rack))
    for order in ("asc", "desc"):
        query = ClientQuery(labels=(("rack", "1"),), sort="status", order=order)  # type: ignore[arg-type]
        assert walk(index, query, now, 2) == index.page(query, now).ids
        assert sorted(index.page(query, now).ids) == rack
    assert ids(search="HOST-C1", sort="client_id")[0] == [f"c{i}" for i in range(10, 20)]
    assert ids(search="host-c1  C11", sort="client_id")[0] == ["c11"]  # every term matches
    assert ids(search="c1 nothing") == ([], 0)
    page = index.page(ClientQuery(search="c1", sort="client_id", limit=3), now)
    assert page.ids == ["c10", "c11", "c12"]
    assert page.matched == 10
    assert page.next_cursor is not None
    assert "rack=1" in index.labels()


async def test_the_live_index_follows_every_change(fleet: Fleet) -> None:
    await mixed_fleet(fleet, 12)
    read = ReadModels(fleet.store, projector(fleet))
    queries = [ClientQuery(sort=s, order=o) for s in SORT_FIELDS for o in ("asc", "desc")]  # type: ignore[arg-type]

    async def agree() -> None:
        now = fleet.clock.now()
        fresh = fresh_index(fleet)
        for q in queries:
            live = await read.client_page(q, now)
            assert [c["client_id"] for c in live["items"]] == fresh.page(q, now).ids, q
            assert live["counts"] == fresh.counts
        summary = await read.fleet_counts(now)
        assert summary["total"] == 12
        # The live feed's counts come from the index: the same as counting the fleet.
        assert read.status_counts(now) == status_counts(projector(fleet))

    await agree()  # builds every ordering
    fleet.clock.advance(5)
    await fleet.heartbeat("c00")  # same status: only last_seen moves
    await fleet.heartbeat("c05", reachable=False)  # online -> degraded
    await fleet.register("c03", new_session=True)  # stopped -> online again
    await fleet.models("c10", {"a": "sha256:1", "b": "sha256:2", "c": "sha256:3"})
    await fleet.register("c99")  # a new client
    await fleet.project()
    read_total = await read.fleet_counts(fleet.clock.now())
    assert read_total["total"] == 13
    queries.append(ClientQuery(sort="status", statuses=frozenset({"online"})))
    fleet.clock.advance(40)
    await fleet.sweep()
    await fleet.project()
    fleet.clock.advance(1)
    # after the reload a projector does on a rebuild, the index starts over
    await projector(fleet).load(fleet.store)
    await fleet.project()
    now = fleet.clock.now()
    fresh = fresh_index(fleet)
    for q in queries:
        assert [c["client_id"] for c in (await read.client_page(q, now))["items"]] == (
            fresh.page(q, now).ids
        )
    assert read.status_counts(now) == status_counts(projector(fleet))


async def test_cursors_are_checked(fleet: Fleet) -> None:
    await mixed_fleet(fleet, 8)
    now = fleet.clock.now()
    index = fresh_index(fleet)
    first = index.page(ClientQuery(sort="hostname", limit=2), now)
    assert first.next_cursor is not None
    with pytest.raises(InvalidCursor, match="another sort"):
        index.page(ClientQuery(sort="status", limit=2, cursor=first.next_cursor), now)
    with pytest.raises(InvalidCursor, match="another sort"):
        index.page(
            ClientQuery(sort="hostname", order="desc", limit=2, cursor=first.next_cursor), now
        )
    for forged in ("!!!", "bm90IGpzb24", encode_cursor("hostname", "asc", ())):
        with pytest.raises(InvalidCursor):
            index.page(ClientQuery(sort="hostname", limit=2, cursor=forged), now)
    wrong_types = encode_cursor("hostname", "asc", (1, 2))
    with pytest.raises(InvalidCursor):
        index.page(ClientQuery(sort="hostname", limit=2, cursor=wrong_types), now)
    rank = encode_cursor("status", "asc", ("x", "h", "c"))
    with pytest.raises(InvalidCursor):
        index.page(ClientQuery(sort="status", limit=2, cursor=rank), now)


async def test_an_idle_heartbeat_ordering_is_dropped_and_built_again(fleet: Fleet) -> None:
    await mixed_fleet(fleet, 8)
    read = ReadModels(fleet.store, projector(fleet))
    query = ClientQuery(sort="last_seen", order="desc")

    async def newest_first() -> list[str]:
        return [c["client_id"] for c in (await read.client_page(query, fleet.clock.now()))["items"]]

    await newest_first()
    fleet.clock.advance(180)  # nobody sorted by last_seen for three minutes
    await fleet.heartbeat("c05")
    await fleet.project()
    await read.fleet_counts(fleet.clock.now())  # a sync: the idle ordering goes
    fleet.clock.advance(1)
    await fleet.heartbeat("c00")
    await fleet.project()
    assert (await newest_first())[:2] == ["c00", "c05"]
    assert await newest_first() == fresh_index(fleet).page(query, fleet.clock.now()).ids


async def test_among_restricts_to_given_clients(fleet: Fleet) -> None:
    await mixed_fleet(fleet, 8)
    index = fresh_index(fleet)
    now = fleet.clock.now()
    page = index.page(ClientQuery(among=frozenset({"c06", "c02", "gone"}), limit=1), now)
    assert (page.ids, page.matched) == (["c02"], 2)
    rest = index.page(
        ClientQuery(among=frozenset({"c06", "c02"}), limit=1, cursor=page.next_cursor), now
    )
    assert (rest.ids, rest.next_cursor) == (["c06"], None)
