"""Archive contract (files for SQLite, a collection for MongoDB, memory): one suite for all,
and `verify_archive` finding each altered, missing, reordered or unrecorded segment."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

import pytest

from obt.domain.events import SYSTEM_STREAM, LogCompacted
from obt.errors import ArchiveError
from obt.store.archive import (
    GENESIS,
    Archive,
    build_segment,
    read_events,
    segment_id_for,
    uncompress,
)
from obt.store.archive_verify import verify_archive
from obt.store.ports import CompactableStore, NewEvent, RecordedEvent, Store

from .harness import Harness, archive_drop, archive_overwrite, archive_swap_entries
from .test_event_log import T0, event


def archive_of(store: Store) -> Archive:
    return cast("CompactableStore", store).archive()


async def some_events(store: Store, count: int, stream: str = "client-a") -> list[RecordedEvent]:
    for minute in range(count):
        await store.append(
            stream, [event()], expected_version=None, recorded_at=T0 + timedelta(minutes=minute)
        )
    return await store.read_all(limit=10_000)


async def archived(store: Store, groups: list[list[RecordedEvent]]) -> list[str]:
    """Write one segment per group and record each with LogCompacted, as compaction does."""
    archive = archive_of(store)
    ids = []
    for group in groups:
        entries = await archive.entries()
        previous = entries[-1] if entries else None
        sequence = 1 if previous is None else previous.sequence + 1
        segment = build_segment(group, previous, segment_id_for(sequence, group[0].position))
        await archive.append(segment)
        recorded = LogCompacted(
            first_position=segment.entry.first_position,
            last_position=segment.entry.last_position,
            removed=segment.entry.count,
            segment_id=segment.entry.segment_id,
            segment_sha256=segment.entry.sha256,
        )
        await store.append(
            SYSTEM_STREAM,
            [NewEvent(id=str(uuid.uuid4()), type=recorded.type_name(), data=recorded.to_data())],
            expected_version=None,
            recorded_at=T0 + timedelta(days=1),
        )
        ids.append(segment.entry.segment_id)
    return ids


async def test_an_empty_archive_has_no_entries_and_no_bytes(store: Store) -> None:
    archive = archive_of(store)
    assert await archive.entries() == []
    assert await archive.size_bytes() == 0
    with pytest.raises(ArchiveError):
        await archive.body("00000001-000000000001")
    report = await verify_archive(archive, store)
    assert report.ok and report.segments == 0


async def test_segments_come_back_whole_in_order_with_a_hash_chain(store: Store) -> None:
    events = await some_events(store, 9)
    ids = await archived(store, [events[:4], events[4:7]])
    entries = await archive_of(store).entries()
    assert [e.segment_id for e in entries] == ids
    first, second = entries
    assert (first.sequence, first.first_position, first.last_position, first.count) == (1, 1, 4, 4)
    assert first.previous_sha256 == GENESIS
    assert second.previous_sha256 == first.entry_sha256()
    assert first.first_recorded_at == events[0].recorded_at.isoformat()
    assert second.last_recorded_at == events[6].recorded_at.isoformat()
    lines = read_events(uncompress(await archive_of(store).body(second.segment_id)))
    assert [line["position"] for line in lines] == [5, 6, 7]
    assert lines[0]["id"] == events[4].id and lines[0]["data"] == events[4].data
    assert await archive_of(store).size_bytes() == first.compressed_bytes + second.compressed_bytes
    report = await verify_archive(archive_of(store), store)
    assert report.ok, report.findings
    assert (report.segments, report.events, report.first_position, report.last_position) == (
        2, 7, 1, 7,
    )  # fmt: skip


async def test_a_segment_that_does_not_chain_is_refused_and_not_kept(store: Store) -> None:
    events = await some_events(store, 6)
    archive = archive_of(store)
    await archived(store, [events[:2]])
    unchained = build_segment(events[2:4], None, segment_id_for(1, 3))  # claims to be first
    with pytest.raises(ArchiveError):
        await archive.append(unchained)
    entries = await archive.entries()
    overlapping = build_segment(events[1:3], entries[-1], segment_id_for(2, 2))
    with pytest.raises(ArchiveError):
        await archive.append(overlapping)
    assert len(await archive.entries()) == 1


async def test_the_archive_survives_reopening_the_store(harness: Harness) -> None:
    if not harness.durable:
        pytest.skip("the memory store keeps nothing across instances")
    store = await harness.open()
    try:
        events = await some_events(store, 3)
        await archived(store, [events[:2]])
    finally:
        await store.close()
    again = await harness.open()
    try:
        assert [e.count for e in await archive_of(again).entries()] == [2]
        assert (await verify_archive(archive_of(again), again)).ok
    finally:
        await again.close()


async def test_verify_names_an_altered_segment(harness: Harness, store: Store) -> None:
    events = await some_events(store, 6)
    ids = await archived(store, [events[:2], events[2:4], events[4:5]])
    forged = build_segment(events[3:5], None, "x").body  # well-formed gzip, other events
    await archive_overwrite(harness, store, ids[1], forged)
    report = await verify_archive(archive_of(store), store)
    assert [(f.segment_id, f.problem) for f in report.findings] == [(ids[1], "altered")]


async def test_verify_names_a_missing_segment(harness: Harness, store: Store) -> None:
    events = await some_events(store, 6)
    ids = await archived(store, [events[:2], events[2:4]])
    await archive_drop(harness, store, ids[0])
    report = await verify_archive(archive_of(store), store)
    assert [(f.segment_id, f.problem) for f in report.findings] == [(ids[0], "missing")]


async def test_verify_names_reordered_segments(harness: Harness, store: Store) -> None:
    events = await some_events(store, 8)
    ids = await archived(store, [events[:2], events[2:4], events[4:6]])
    await archive_swap_entries(harness, store, 1, 2)
    report = await verify_archive(archive_of(store), store)
    named = {(f.segment_id, f.problem) for f in report.findings}
    assert named == {(ids[1], "reordered"), (ids[2], "reordered")}


async def test_verify_names_a_segment_whose_bytes_were_swapped_with_another(
    harness: Harness, store: Store
) -> None:
    events = await some_events(store, 6)
    ids = await archived(store, [events[:2], events[2:4]])
    first = await archive_of(store).body(ids[0])
    second = await archive_of(store).body(ids[1])
    await archive_overwrite(harness, store, ids[0], second)
    await archive_overwrite(harness, store, ids[1], first)
    report = await verify_archive(archive_of(store), store)
    assert {(f.segment_id, f.problem) for f in report.findings} == {
        (ids[0], "reordered"),
        (ids[1], "reordered"),
    }


async def test_verify_names_a_segment_no_log_compacted_records(store: Store) -> None:
    events = await some_events(store, 4)
    archive = archive_of(store)
    segment = build_segment(events[:2], None, segment_id_for(1, 1))
    await archive.append(segment)
    report = await verify_archive(archive, store)
    assert [(f.segment_id, f.problem) for f in report.findings] == [
        (segment.entry.segment_id, "unrecorded")
    ]
