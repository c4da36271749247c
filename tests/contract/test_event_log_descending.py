"""Event store contract, item 4 read backwards: `read_all(descending=True)` returns the newest
`limit` events that pass the same bounds and filters, newest first."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from obt.store.ports import ANY, NewEvent, Store
from obt.store.sqlite import SQLiteStore, select_events

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TYPES = ("HeartbeatReceived", "ModelAdded", "ClientTimedOut")
_ids = itertools.count(1)


def event(type_: str) -> NewEvent:
    return NewEvent(id=str(uuid.uuid4()), type=type_, data={"seq": next(_ids)})


async def fill(store: Store, count: int) -> None:
    """Event i (position i + 1): stream client-<a|b|c> by i % 3, type by i % 5, i seconds in."""
    for i in range(count):
        type_ = TYPES[0] if i % 5 < 3 else TYPES[1 + i % 5 - 3]
        await store.append(
            f"client-{'abc'[i % 3]}",
            [event(type_)],
            expected_version=ANY,
            recorded_at=T0 + timedelta(seconds=i),
        )


def positions(events: list[Any]) -> list[int]:
    return [e.position for e in events]


async def test_an_empty_store_reads_nothing_backwards(store: Store) -> None:
    assert await store.read_all(descending=True) == []
    assert await store.read_all(descending=True, until=10, types=["ModelAdded"]) == []


async def test_descending_takes_the_newest_within_the_bounds(store: Store) -> None:
    await fill(store, 12)
    assert positions(await store.read_all(descending=True)) == list(range(12, 0, -1))
    assert positions(await store.read_all(descending=True, limit=3)) == [12, 11, 10]
    assert positions(await store.read_all(descending=True, until=7, limit=3)) == [7, 6, 5]
    assert positions(await store.read_all(descending=True, after=8)) == [12, 11, 10, 9]
    assert positions(await store.read_all(descending=True, after=3, until=6)) == [6, 5, 4]
    assert positions(await store.read_all(descending=True, after=3, until=6, limit=1)) == [6]
    assert await store.read_all(descending=True, after=6, until=6) == []
    assert await store.read_all(descending=True, after=9, until=4) == []
    assert await store.read_all(descending=True, limit=0) == []
    assert positions(await store.read_all(descending=True, until=100, limit=2)) == [12, 11]
    assert await store.read_all(descending=True, after=12) == []


async def test_descending_honours_types_streams_and_times(store: Store) -> None:
    await fill(store, 15)
    # i % 5 == 3 -> ModelAdded (positions 4, 9, 14); == 4 -> ClientTimedOut (5, 10, 15).
    models = await store.read_all(descending=True, types=["ModelAdded"])
    assert positions(models) == [14, 9, 4]
    both = await store.read_all(descending=True, types={"ModelAdded", "ClientTimedOut"}, limit=4)
    assert positions(both) == [15, 14, 10, 9]
    # A type named twice must not return its events twice.
    twice = await store.read_all(descending=True, types=["ModelAdded", "ModelAdded", "Nope"])
    assert positions(twice) == [14, 9, 4]
    assert await store.read_all(descending=True, types=[]) == []
    assert await store.read_all(descending=True, types=["Nope"]) == []
    # i % 3 == 1 -> client-b: positions 2, 5, 8, 11, 14.
    stream = await store.read_all(descending=True, stream="client-b", until=13, limit=2)
    assert positions(stream) == [11, 8]
    assert all(e.stream == "client-b" for e in stream)
    mixed = await store.read_all(
        descending=True, stream="client-b", types=["ModelAdded", "ClientTimedOut"]
    )
    assert positions(mixed) == [14, 5]
    assert await store.read_all(descending=True, stream="client-z") == []
    window = await store.read_all(
        descending=True,
        recorded_from=T0 + timedelta(seconds=2),
        recorded_to=T0 + timedelta(seconds=9),
        limit=4,
    )
    assert positions(window) == [9, 8, 7, 6]  # from inclusive, to exclusive
    windowed_models = await store.read_all(
        descending=True,
        types=["ModelAdded", "HeartbeatReceived"],
        recorded_to=T0 + timedelta(seconds=9),
        after=1,
    )
    assert positions(windowed_models) == [9, 8, 7, 6, 4, 3, 2]  # 5 is ClientTimedOut


async def test_descending_equals_the_ascending_read_reversed(store: Store) -> None:
    await fill(store, 40)
    cases: list[dict[str, Any]] = [
        {},
        {"after": 7, "until": 33},
        {"types": ["ModelAdded"]},
        {"types": ["ModelAdded", "ClientTimedOut"], "until": 30},
        {"stream": "client-c", "after": 5},
        {"stream": "client-a", "types": ["HeartbeatReceived"]},
        {"recorded_from": T0 + timedelta(seconds=10), "recorded_to": T0 + timedelta(seconds=25)},
    ]
    for filters in cases:
        forward = await store.read_all(limit=1000, **filters)
        backward = await store.read_all(limit=1000, descending=True, **filters)
        assert backward == forward[::-1], filters
        assert backward, filters
        newest = await store.read_all(limit=3, descending=True, **filters)
        assert newest == forward[::-1][:3], filters


# SQLite: the index that serves each descending read -------------------------------------------

PLAN_CASES: list[dict[str, Any]] = [
    {},
    {"until": 100},
    {"types": ["ModelAdded"], "until": 100},
    {"types": TYPES, "until": 100, "recorded_to": T0},
    {"stream": "client-a", "until": 100},
    {"stream": "client-a", "types": TYPES},
]


@pytest.mark.parametrize("filters", PLAN_CASES)
async def test_sqlite_reads_backwards_along_an_index_without_sorting(
    tmp_path: Path, filters: dict[str, Any]
) -> None:
    store = SQLiteStore(tmp_path / "obt.db")
    await store.open()
    await fill(store, 30)
    await store.close()
    options: dict[str, Any] = {
        "after": 0,
        "limit": 10,
        "types": None,
        "stream": None,
        "until": None,
        "recorded_from": None,
        "recorded_to": None,
        **filters,
    }
    sql, params = select_events(descending=True, **options)
    with contextlib.closing(sqlite3.connect(tmp_path / "obt.db")) as connection:
        for analyzed in (False, True):
            if analyzed:  # the plan must hold with statistics too
                connection.execute("ANALYZE")
            plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            reads = [step for step in plan if " events" in step]
            assert reads, plan
            assert all(step.startswith("SEARCH events USING") for step in reads), plan
            # Only a merge of per-type pages (each at most `limit` rows) may sort.
            sorts = [step for step in plan if "TEMP B-TREE" in step]
            assert not sorts or "MERGE (UNION ALL)" in plan, plan
