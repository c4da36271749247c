"""Event store contract, items 6-7: checkpoints move with read-model changes; rebuilds reset."""

from __future__ import annotations

import pytest

from obt.errors import CheckpointConflict
from obt.store.ports import Delete, Increment, Put, Store


async def test_a_new_projection_starts_at_checkpoint_zero(store: Store) -> None:
    assert await store.checkpoint("clients") == 0
    assert await store.get("clients", "a") is None
    assert await store.find("clients") == []


async def test_ops_and_the_checkpoint_are_committed_together(store: Store) -> None:
    await store.commit(
        "clients",
        expected_checkpoint=0,
        new_checkpoint=7,
        ops=[
            Put("clients", "a", {"status": "online", "n": 1}, client_id="a", sort=1.0),
            Put("clients", "b", {"status": "offline"}, client_id="b", sort=2.0),
            Increment("uptime", "a:h0", {"up_s": 10, "down_s": 0.5}, {"hour": 0}),
            Delete("clients", "b"),
        ],
    )
    assert await store.checkpoint("clients") == 7
    assert await store.get("clients", "a") == {"status": "online", "n": 1}
    assert await store.get("clients", "b") is None
    assert await store.get("uptime", "a:h0") == {"hour": 0, "up_s": 10, "down_s": 0.5}
    await store.commit(
        "clients",
        expected_checkpoint=7,
        new_checkpoint=9,
        ops=[
            Increment("uptime", "a:h0", {"up_s": 5}, {"hour": 99}),
            Put("clients", "a", {"status": "degraded"}, client_id="a", sort=1.0),
        ],
    )
    assert await store.get("uptime", "a:h0") == {"hour": 0, "up_s": 15, "down_s": 0.5}
    assert await store.get("clients", "a") == {"status": "degraded"}
    assert await store.checkpoint("clients") == 9


async def test_a_moved_checkpoint_conflicts_and_applies_nothing(store: Store) -> None:
    await store.commit("clients", expected_checkpoint=0, new_checkpoint=5, ops=[])
    with pytest.raises(CheckpointConflict) as conflict:
        await store.commit(
            "clients",
            expected_checkpoint=3,
            new_checkpoint=8,
            ops=[Put("clients", "a", {"x": 1})],
        )
    assert (conflict.value.projection, conflict.value.expected, conflict.value.actual) == (
        "clients",
        3,
        5,
    )
    assert await store.get("clients", "a") is None
    assert await store.checkpoint("clients") == 5
    assert await store.checkpoint("uptime") == 0  # checkpoints are per projection


async def test_a_commit_failing_midway_applies_nothing(store: Store) -> None:
    """A crash between ops and checkpoint must leave both as they were: no double-apply."""
    await store.commit(
        "uptime", expected_checkpoint=0, new_checkpoint=1, ops=[Increment("u", "k", {"s": 1}, {})]
    )
    with pytest.raises((TypeError, ValueError)):
        await store.commit(
            "uptime",
            expected_checkpoint=1,
            new_checkpoint=2,
            ops=[
                Increment("u", "k", {"s": 1}, {}),
                Put("u", "other", {"fine": True}),
                Put("u", "bad", {"not json": {1, 2}}),  # a set: JSON cannot hold it
            ],
        )
    assert await store.checkpoint("uptime") == 1
    assert await store.get("u", "k") == {"s": 1}
    assert await store.get("u", "other") is None
    # Resuming at the checkpoint applies the batch exactly once.
    await store.commit(
        "uptime", expected_checkpoint=1, new_checkpoint=2, ops=[Increment("u", "k", {"s": 1}, {})]
    )
    assert await store.get("u", "k") == {"s": 2}


async def test_reset_clears_stale_documents_and_the_checkpoint(store: Store) -> None:
    await store.commit(
        "timeline",
        expected_checkpoint=0,
        new_checkpoint=4,
        ops=[
            Put("timeline", "1", {"e": 1}),
            Put("timeline_fleet", "1", {"e": 1}),
            Put("clients", "keep", {"e": 1}),
        ],
    )
    await store.reset("timeline", ["timeline", "timeline_fleet"])
    assert await store.checkpoint("timeline") == 0
    assert await store.find("timeline") == []
    assert await store.get("timeline_fleet", "1") is None
    assert await store.get("clients", "keep") == {"e": 1}
    # A rebuild from 0 then produces the live documents again, and nothing stale.
    await store.commit(
        "timeline", expected_checkpoint=0, new_checkpoint=4, ops=[Put("timeline", "2", {"e": 2})]
    )
    assert await store.find("timeline") == [{"e": 2}]


async def test_find_filters_by_client_and_sort_range_in_sort_then_key_order(
    store: Store,
) -> None:
    ops = [
        Put("timeline", "k3", {"n": 3}, client_id="a", sort=30.0),
        Put("timeline", "k1", {"n": 1}, client_id="a", sort=10.0),
        Put("timeline", "k2b", {"n": 22}, client_id="a", sort=20.0),
        Put("timeline", "k2a", {"n": 21}, client_id="a", sort=20.0),
        Put("timeline", "kb", {"n": 99}, client_id="b", sort=15.0),
        Put("timeline", "nosort", {"n": 0}, client_id="a"),
    ]
    await store.commit("timeline", expected_checkpoint=0, new_checkpoint=1, ops=ops)

    async def ns(**query: object) -> list[int]:
        return [doc["n"] for doc in await store.find("timeline", **query)]  # type: ignore[arg-type]

    assert await ns(client_id="a") == [0, 1, 21, 22, 3]
    assert await ns() == [0, 1, 99, 21, 22, 3]
    assert await ns(client_id="a", sort_gte=10.0, sort_lt=30.0) == [1, 21, 22]
    assert await ns(client_id="a", descending=True) == [3, 22, 21, 1, 0]
    assert await ns(client_id="a", sort_lt=30.0, descending=True, limit=2) == [22, 21]
    assert await ns(sort_gte=15.0, limit=2) == [99, 21]
    assert await ns(client_id="nobody") == []


async def test_increment_keeps_indexed_fields_it_does_not_name(store: Store) -> None:
    await store.commit(
        "uptime",
        expected_checkpoint=0,
        new_checkpoint=1,
        ops=[Increment("uptime", "a:1", {"up_s": 1}, {"start": 1}, client_id="a", sort=1.0)],
    )
    await store.commit(
        "uptime",
        expected_checkpoint=1,
        new_checkpoint=2,
        ops=[Increment("uptime", "a:1", {"up_s": 2}, {"start": 1})],
    )
    assert await store.find("uptime", client_id="a", sort_gte=1.0) == [{"start": 1, "up_s": 3}]
