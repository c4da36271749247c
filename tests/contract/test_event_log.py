"""Event store contract, items 1-5 and 8: appends, ids, positions, reads, catch-up, upcasting."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from obt.errors import CorruptEvent, DuplicateEventId, WrongExpectedVersion
from obt.store.codec import EventCodec
from obt.store.ports import ANY, NO_STREAM, NewEvent, Put, Store

from .harness import Harness

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def event(type_: str = "HeartbeatReceived", **data: object) -> NewEvent:
    return NewEvent(
        id=str(uuid.uuid4()),
        type=type_,
        data=data or {"seq": next(_ids)},
        metadata={"correlation_id": "c-1"},
    )


async def append(store: Store, stream: str, *events: NewEvent, expected: int | None = ANY):
    return await store.append(stream, events, expected_version=expected, recorded_at=T0)


# 1. expected versions ------------------------------------------------------------------------


async def test_an_empty_store_has_head_zero_and_nothing_to_read(store: Store) -> None:
    assert await store.head() == 0
    assert await store.stream_version("client-a") == 0
    assert await store.read_all() == []
    assert await store.read_stream("client-a") == []
    assert await store.position_at(T0) == 0


async def test_append_with_no_stream_any_and_exact_versions(store: Store) -> None:
    first = await append(store, "client-a", event(), event(), expected=NO_STREAM)
    assert (first.version, first.positions, first.last_position) == (2, (1, 2), 2)
    second = await append(store, "client-a", event(), expected=ANY)
    assert (second.version, second.positions) == (3, (3,))
    third = await append(store, "client-a", event(), expected=3)
    assert (third.version, third.positions) == (4, (4,))
    assert await store.stream_version("client-a") == 4
    assert await store.head() == 4


async def test_a_stale_expected_version_conflicts_and_stores_nothing(store: Store) -> None:
    await append(store, "client-a", event(), event(), expected=NO_STREAM)
    with pytest.raises(WrongExpectedVersion) as stale:
        await append(store, "client-a", event(), expected=1)
    assert (stale.value.stream, stale.value.expected, stale.value.actual) == ("client-a", 1, 2)
    with pytest.raises(WrongExpectedVersion):
        await append(store, "client-a", event(), expected=NO_STREAM)
    with pytest.raises(WrongExpectedVersion):
        await append(store, "client-b", event(), expected=1)
    assert await store.head() == 2
    assert await store.stream_version("client-b") == 0


async def test_of_racing_writers_on_one_stream_exactly_one_wins(store: Store) -> None:
    await append(store, "client-a", event(), expected=NO_STREAM)
    results = await asyncio.gather(
        *(append(store, "client-a", event(), event(), expected=1) for _ in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, WrongExpectedVersion) for r in losers)
    assert await store.stream_version("client-a") == 3
    assert [e.version for e in await store.read_stream("client-a")] == [1, 2, 3]


async def test_racing_writers_in_two_store_instances_exactly_one_wins(harness: Harness) -> None:
    if not harness.durable:
        pytest.skip("a second instance only shares storage with a durable adapter")
    one, two = await harness.open(), await harness.open()
    try:
        await append(one, "client-a", event(), expected=NO_STREAM)
        results = await asyncio.gather(
            *(append(s, "client-a", event(), expected=1) for s in (one, two, one, two)),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(
            isinstance(r, WrongExpectedVersion) for r in results if isinstance(r, BaseException)
        )
        assert await two.stream_version("client-a") == 2
        assert await one.head() == 2
    finally:
        await one.close()
        await two.close()


# 2. uniqueness and idempotency ---------------------------------------------------------------


async def test_versions_in_a_stream_are_unique_and_contiguous(store: Store) -> None:
    for _ in range(3):
        await append(store, "client-a", event(), event())
        await append(store, "client-b", event())
    assert [e.version for e in await store.read_stream("client-a")] == [1, 2, 3, 4, 5, 6]
    assert [e.version for e in await store.read_stream("client-b")] == [1, 2, 3]


async def test_re_sending_the_same_ids_is_a_no_op(store: Store) -> None:
    batch = (event(), event())
    first = await append(store, "client-a", *batch, expected=NO_STREAM)
    await append(store, "client-a", event())
    again = await append(store, "client-a", *batch, expected=NO_STREAM)
    assert again.positions == ()
    assert again.version == first.version == 2
    assert await store.head() == 3
    assert [e.id for e in await store.read_stream("client-a")][:2] == [b.id for b in batch]


async def test_the_same_id_with_another_payload_conflicts(store: Store) -> None:
    original = event(seq=1)
    await append(store, "client-a", original)
    changed = NewEvent(id=original.id, type=original.type, data={"seq": 2})
    with pytest.raises(DuplicateEventId) as conflict:
        await append(store, "client-a", changed)
    assert conflict.value.event_id == original.id
    with pytest.raises(DuplicateEventId):  # the same payload in another stream
        await append(store, "client-b", original)
    with pytest.raises(DuplicateEventId):  # a re-sent id next to a new event
        await append(store, "client-a", original, event())
    same_twice = event()
    with pytest.raises(DuplicateEventId):
        await append(store, "client-c", same_twice, same_twice)
    assert await store.head() == 1
    assert await store.stream_version("client-b") == 0


# 3. global positions -------------------------------------------------------------------------


async def test_positions_are_gapless_ordered_and_never_interleaved(harness: Harness) -> None:
    store = await harness.open()
    try:
        per_writer = harness.scale
        batch = 5

        async def writer(stream: str) -> list[tuple[int, ...]]:
            appended = []
            for _ in range(per_writer // batch):
                result = await append(store, stream, *(event() for _ in range(batch)))
                appended.append(result.positions)
            return appended

        runs = await asyncio.gather(writer("client-a"), writer("client-b"))
        for positions in runs:
            # Commit order: each writer's later append got later positions, contiguously.
            flat = [p for run in positions for p in run]
            assert flat == sorted(flat)
            assert all(run == tuple(range(run[0], run[0] + batch)) for run in positions)
        events = await store.read_all(limit=10 * per_writer)
        assert [e.position for e in events] == list(range(1, 2 * per_writer + 1))
        for stream in ("client-a", "client-b"):
            versions = [e.version for e in events if e.stream == stream]
            assert versions == list(range(1, per_writer + 1))
    finally:
        await store.close()


# 4. reads ------------------------------------------------------------------------------------


async def test_read_stream_honours_bounds_and_limits(store: Store) -> None:
    await append(store, "client-a", *(event() for _ in range(5)))
    await append(store, "client-b", event())
    assert [e.version for e in await store.read_stream("client-a", after_version=2)] == [3, 4, 5]
    assert [e.version for e in await store.read_stream("client-a", limit=2)] == [1, 2]
    assert [e.version for e in await store.read_stream("client-a", after_version=1, limit=2)] == [
        2,
        3,
    ]
    assert await store.read_stream("client-a", after_version=5) == []


async def test_read_all_honours_bounds_filters_and_limits(store: Store) -> None:
    for i in range(6):
        type_ = "ModelAdded" if i % 2 else "HeartbeatReceived"
        await store.append(
            f"client-{'ab'[i % 2]}",
            [event(type_)],
            expected_version=ANY,
            recorded_at=T0 + timedelta(seconds=i),
        )
    assert [e.position for e in await store.read_all(after=2)] == [3, 4, 5, 6]
    assert [e.position for e in await store.read_all(after=2, until=4)] == [3, 4]
    assert [e.position for e in await store.read_all(limit=2)] == [1, 2]
    models = await store.read_all(types=["ModelAdded"])
    assert [e.position for e in models] == [2, 4, 6]
    both = await store.read_all(types={"ModelAdded", "HeartbeatReceived"}, after=4)
    assert [e.position for e in both] == [5, 6]
    assert [e.position for e in await store.read_all(stream="client-a", limit=2)] == [1, 3]
    assert await store.read_all(types=["ModelAdded"], stream="client-a") == []
    window = await store.read_all(
        recorded_from=T0 + timedelta(seconds=1), recorded_to=T0 + timedelta(seconds=4)
    )
    assert [e.position for e in window] == [2, 3, 4]  # from inclusive, to exclusive
    recorded = (await store.read_all(after=5))[0]
    assert recorded.recorded_at == T0 + timedelta(seconds=5)
    assert (recorded.stream, recorded.version, recorded.type) == ("client-b", 3, "ModelAdded")
    assert recorded.metadata == {"correlation_id": "c-1"}


async def test_position_at_finds_the_last_event_at_or_before_a_moment(store: Store) -> None:
    for i in range(3):
        await store.append(
            "client-a",
            [event(), event()],
            expected_version=ANY,
            recorded_at=T0 + timedelta(minutes=i),
        )
    assert await store.position_at(T0 - timedelta(seconds=1)) == 0
    assert await store.position_at(T0) == 2
    assert await store.position_at(T0 + timedelta(seconds=90)) == 4
    assert await store.position_at(T0 + timedelta(days=1)) == 6


async def test_recorded_at_never_goes_back_along_positions(store: Store) -> None:
    await store.append("client-a", [event()], expected_version=ANY, recorded_at=T0)
    late = T0 - timedelta(seconds=5)  # a clock step back, or a slow appender
    await store.append("client-a", [event()], expected_version=ANY, recorded_at=late)
    times = [e.recorded_at for e in await store.read_all()]
    assert times == [T0, T0]
    assert await store.position_at(T0) == 2


# 5. catch-up from history to live -----------------------------------------------------------


async def test_wait_for_append_wakes_on_an_append_and_times_out_at_the_head(
    store: Store,
) -> None:
    assert await store.wait_for_append(0, timeout=0.01) == 0
    waiter = asyncio.create_task(store.wait_for_append(0, timeout=30))
    await append(store, "client-a", event())
    assert await asyncio.wait_for(waiter, 10) == 1
    assert await store.wait_for_append(0, timeout=30) == 1


async def test_a_tailing_reader_misses_nothing_and_repeats_nothing(harness: Harness) -> None:
    store = await harness.open()
    try:
        writers, appends = 10, max(harness.scale // 20, 20)
        total = writers * appends
        seen: list[tuple[int, str]] = []

        async def tail() -> None:
            position = 0
            while len(seen) < total:
                await store.wait_for_append(position, timeout=5)
                for recorded in await store.read_all(after=position, limit=97):
                    seen.append((recorded.position, recorded.id))
                    position = recorded.position

        async def writer(n: int) -> list[str]:
            ids = []
            for _ in range(appends):
                new = event()
                await append(store, f"client-{n}", new)
                ids.append(new.id)
            return ids

        reader = asyncio.create_task(tail())
        written = await asyncio.gather(*(writer(n) for n in range(writers)))
        await asyncio.wait_for(reader, 60)
        assert [p for p, _ in seen] == list(range(1, total + 1))
        assert sorted(i for _, i in seen) == sorted(i for ids in written for i in ids)
    finally:
        await store.close()


# 8. upcasting and corruption ----------------------------------------------------------------


def renamed_codec() -> EventCodec:
    """v1 HeartbeatReceived had `latency`; v2 calls it `latency_ms`."""

    def v1_to_v2(data: dict[str, object]) -> dict[str, object]:
        upcast = {k: v for k, v in data.items() if k != "latency"}
        upcast["latency_ms"] = data["latency"]
        return upcast

    return EventCodec({("HeartbeatReceived", 1): v1_to_v2}, {"HeartbeatReceived": 2})


async def test_upcasters_apply_on_every_read_path(harness: Harness) -> None:
    store = await harness.open(renamed_codec())
    try:
        old = NewEvent(id=str(uuid.uuid4()), type="HeartbeatReceived", data={"latency": 12})
        new = NewEvent(
            id=str(uuid.uuid4()),
            type="HeartbeatReceived",
            data={"latency_ms": 7},
            schema_version=2,
        )
        await append(store, "client-a", old, new)
        for read in (
            await store.read_stream("client-a"),
            await store.read_all(),
            await store.read_all(types=["HeartbeatReceived"], stream="client-a"),
        ):
            assert [(e.schema_version, e.data) for e in read] == [
                (2, {"latency_ms": 12}),
                (2, {"latency_ms": 7}),
            ]
        # The stored payload is untouched: an idempotent re-send still matches it.
        assert (await append(store, "client-a", old, new)).positions == ()
    finally:
        await store.close()


async def test_a_corrupt_stored_event_raises_corrupt_event_naming_its_position(
    harness: Harness,
) -> None:
    store = await harness.open()
    try:
        await append(store, "client-a", event(), event(), event())
        await harness.corrupt(2)
        with pytest.raises(CorruptEvent) as corrupt:
            await store.read_all()
        assert corrupt.value.position == 2
        assert "position 2" in str(corrupt.value)
        with pytest.raises(CorruptEvent):
            await store.read_stream("client-a")
        assert [e.position for e in await store.read_all(after=2)] == [3]
    finally:
        await store.close()


async def test_nothing_is_lost_across_close_and_reopen(harness: Harness) -> None:
    if not harness.durable:
        pytest.skip("the memory store keeps nothing across instances")
    store = await harness.open()
    await append(store, "client-a", event(), event(), expected=NO_STREAM)
    await store.commit(
        "clients", expected_checkpoint=0, new_checkpoint=2, ops=[Put("clients", "a", {"name": "a"})]
    )
    await store.close()
    reopened = await harness.open()
    try:
        assert await reopened.head() == 2
        assert await reopened.stream_version("client-a") == 2
        assert await reopened.checkpoint("clients") == 2
        assert await reopened.get("clients", "a") == {"name": "a"}
        result = await append(reopened, "client-a", event(), expected=2)
        assert result.positions == (3,)
    finally:
        await reopened.close()
