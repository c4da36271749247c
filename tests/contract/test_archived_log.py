"""The live log and its archive read as one: auditors lose nothing to compaction."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from obt.projections.replay import client_state, fleet_state
from obt.store.archived_log import ArchivedLog, with_archive
from obt.store.event_pages import EventFilter, page_after, page_before
from obt.store.ports import CompactableStore, RecordedEvent, Store

from .test_compaction import compactor, history


def same(a: list[RecordedEvent], b: list[RecordedEvent]) -> None:
    assert [(e.position, e.id, e.stream, e.version, e.type, e.data) for e in a] == [
        (e.position, e.id, e.stream, e.version, e.type, e.data) for e in b
    ]
    assert [e.recorded_at for e in a] == [e.recorded_at for e in b]


async def test_the_merged_log_reads_like_the_log_before_compaction(opened: Store) -> None:
    store = opened
    fleet = await history(store)
    original = await store.read_all(limit=10_000)
    report = await compactor(store, fleet).run()
    assert report.removed > 0
    merged = with_archive(store)
    assert isinstance(merged, ArchivedLog)
    everything = [e for e in await merged.read_all(limit=10_000) if e.type != "LogCompacted"]
    same(everything, original)
    for after, limit in ((0, 7), (5, 3), (20, 11)):
        want = [e for e in original if e.position > after][:limit]
        same(await merged.read_all(after=after, limit=limit), want)
    newest = await merged.read_all(until=30, limit=6, descending=True)
    same(newest, [e for e in original if e.position <= 30][-6:][::-1])
    beats_b = await merged.read_all(types=["HeartbeatReceived"], stream="client-b", limit=100)
    assert [e.data["seq"] for e in beats_b] == list(range(1, 13))
    stream_a = await merged.read_stream("client-a", after_version=3, limit=5)
    same(stream_a, [e for e in original if e.stream == "client-a" and e.version > 3][:5])
    page = await page_after(merged, 10, 4, EventFilter(types=["HeartbeatReceived"]))
    assert [e.position for e in page.items] == [
        e.position for e in original if e.position > 10 and e.type == "HeartbeatReceived"
    ][:4]
    back = await page_before(merged, 12, 3, EventFilter())
    assert [e.position for e in back.items] == [9, 10, 11]


async def test_state_as_of_inside_the_compacted_range_answers_as_before(opened: Store) -> None:
    store = opened
    fleet = await history(store)
    start = (await store.read_all(limit=1))[0].recorded_at
    moments = [start + timedelta(seconds=s) for s in (15, 45, 75, 95, 125)]
    before = [await fleet_state(store, at) for at in moments]
    before_a = [await client_state(store, "a", at) for at in moments]
    await compactor(store, fleet).run()
    archive = cast("CompactableStore", store).archive()
    assert await archive.entries()
    merged = ArchivedLog(store, archive)
    assert [await fleet_state(merged, at) for at in moments] == before
    assert [await client_state(merged, "a", at) for at in moments] == before_a
    # Without the archive the replay would miss heartbeats: the merged view is what answers.
    assert [await fleet_state(store, at) for at in moments] != before
