"""Compaction: heartbeats past OBT_HEARTBEAT_RETENTION that no read model needs move from the
live log into the archive, in bounded batches, crash-safe at every step.

One segment at a time: (1) the segment is written to the archive and read back and checked;
(2) its events are removed from the log in small transactions, so appends keep flowing;
(3) LogCompacted is appended to the system stream (its id comes from the segment id, so
appending it twice stores it once). A crash after (1) leaves a segment that no LogCompacted
records: `recover()` (run before every compaction and at server start) checks the segment
again, removes whatever of it is still in the log and records it. So after recovery every event
is in the log or in a verified segment, never in neither and never in both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from obt.domain.events import SYSTEM_STREAM, LogCompacted
from obt.errors import ArchiveError, StoreError
from obt.metrics import Metrics
from obt.projections.retention import RetentionScan
from obt.store.archive import (
    ManifestEntry,
    build_segment,
    read_events,
    segment_id_for,
    uncompress,
)
from obt.store.archive_verify import compactions
from obt.store.ports import CompactableStore, NewEvent, RecordedEvent

log = logging.getLogger(__name__)

# Crash points a test may stop compaction at (see `fault`).
STEPS = ("segment_written", "events_removed_partly", "events_removed", "recorded")
ID_NAMESPACE = uuid.UUID("1c5b7e0a-8d0f-4b52-9d43-5a0a4c2f7e61")


@dataclass(slots=True)
class CompactionReport:
    horizon_position: int = 0
    scanned: int = 0
    removed: int = 0
    segments: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would move" if self.dry_run else "moved"
        text = (
            f"scanned {self.scanned} events up to position {self.horizon_position}; "
            f"{verb} {self.removed} heartbeats to the archive"
        )
        if self.segments:
            text += f" in {len(self.segments)} segment(s)"
        if self.recovered:
            text += f"; finished {len(self.recovered)} interrupted compaction(s)"
        return f"{text} ({self.seconds:.1f} s)"


class Compactor:
    def __init__(
        self,
        store: CompactableStore,
        retention: timedelta,
        clock: Callable[[], datetime],
        *,
        segment_events: int = 100_000,
        read_batch: int = 10_000,
        remove_batch: int = 2_000,
        pause_s: float = 0.0,
        fault: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._archive = store.archive()
        self.retention = retention
        self._clock = clock
        self._segment_events = segment_events
        self._read_batch = read_batch
        self._remove_batch = remove_batch
        self._pause_s = pause_s  # between remove transactions: other writers go first
        self._fault = fault or (lambda step: None)
        self._lock = asyncio.Lock()
        self.last: CompactionReport | None = None

    async def run(self, *, dry_run: bool = False) -> CompactionReport:
        now = self._clock()
        async with self._lock:
            started = time.perf_counter()
            report = CompactionReport(dry_run=dry_run)
            if not dry_run:
                report.recovered = await self._recover()
            report.horizon_position = await self._store.position_at(now - self.retention)
            await self._compact(report, dry_run=dry_run)
            report.seconds = time.perf_counter() - started
            if not dry_run:
                self.last = report
            return report

    async def recover(self) -> list[str]:
        async with self._lock:
            return await self._recover()

    # the steps -----------------------------------------------------------------------------

    async def _compact(self, report: CompactionReport, *, dry_run: bool) -> None:
        records = await compactions(self._store)
        after = max((int(e.data["last_position"]) for e in records), default=0)
        scan = RetentionScan(horizon=report.horizon_position)
        pending: list[RecordedEvent] = []
        while after < report.horizon_position:
            batch = await self._store.read_all(after=after, limit=self._read_batch)
            if not batch:
                break
            after = batch[-1].position
            report.scanned += len(batch)
            scan.feed(batch)
            pending.extend(scan.take(final=after >= report.horizon_position))
            while len(pending) >= self._segment_events:
                pending = await self._take(pending, report, dry_run=dry_run)
        pending.extend(scan.take(final=True))
        while pending:
            pending = await self._take(pending, report, dry_run=dry_run)

    async def _take(
        self, pending: list[RecordedEvent], report: CompactionReport, *, dry_run: bool
    ) -> list[RecordedEvent]:
        """Archive one segment's worth of `pending`; return the rest."""
        chunk, rest = pending[: self._segment_events], pending[self._segment_events :]
        report.removed += len(chunk)
        if not dry_run:
            report.segments.append(await self._move(chunk))
        return rest

    async def _move(self, events: list[RecordedEvent]) -> str:
        entries = await self._archive.entries()
        previous = entries[-1] if entries else None
        sequence = 1 if previous is None else previous.sequence + 1
        # Off the event loop: encoding and compressing 100,000 events takes a while.
        segment = await asyncio.to_thread(
            build_segment, events, previous, segment_id_for(sequence, events[0].position)
        )
        await self._archive.append(segment)
        await self._check_stored(segment.entry, parse=False)
        self._fault("segment_written")
        await self._remove([e.position for e in events])
        self._fault("events_removed")
        await self._record(segment.entry)
        self._fault("recorded")
        log.info(
            "compaction: segment %s holds %d heartbeats (positions %d..%d)",
            segment.entry.segment_id,
            segment.entry.count,
            segment.entry.first_position,
            segment.entry.last_position,
        )
        return segment.entry.segment_id

    async def _check_stored(self, entry: ManifestEntry, *, parse: bool = True) -> list[int]:
        """Read the segment back from the archive and check it; the positions it holds
        (`parse`: after a crash they are known only from the segment itself)."""
        raw = await asyncio.to_thread(uncompress, await self._archive.body(entry.segment_id))
        if hashlib.sha256(raw).hexdigest() != entry.sha256:
            raise ArchiveError(f"segment {entry.segment_id} does not read back as written")
        if raw.count(b"\n") != entry.count:
            raise ArchiveError(f"segment {entry.segment_id} does not hold {entry.count} events")
        return [line["position"] for line in read_events(raw)] if parse else []

    async def _remove(self, positions: list[int]) -> None:
        for start in range(0, len(positions), self._remove_batch):
            await self._store.remove_events(positions[start : start + self._remove_batch])
            if start + self._remove_batch < len(positions):
                self._fault("events_removed_partly")
            if self._pause_s:
                await asyncio.sleep(self._pause_s)

    async def _record(self, entry: ManifestEntry) -> None:
        event = LogCompacted(
            first_position=entry.first_position,
            last_position=entry.last_position,
            removed=entry.count,
            segment_id=entry.segment_id,
            segment_sha256=entry.sha256,
        )
        await self._store.append(
            SYSTEM_STREAM,
            [
                NewEvent(
                    id=str(uuid.uuid5(ID_NAMESPACE, entry.segment_id + entry.sha256)),
                    type=event.type_name(),
                    data=event.to_data(),
                )
            ],
            expected_version=None,
            recorded_at=self._clock(),
        )

    async def _recover(self) -> list[str]:
        recorded = {e.data["segment_id"] for e in await compactions(self._store)}
        finished = []
        for entry in await self._archive.entries():
            if entry.segment_id in recorded:
                continue
            positions = await self._check_stored(entry)
            log.warning(
                "compaction: finishing segment %s, which an interrupted compaction wrote",
                entry.segment_id,
            )
            await self._remove(positions)
            await self._record(entry)
            finished.append(entry.segment_id)
        return finished


class CompactionJob:
    """The daily compaction, as a background job (`run_once` on every tick of the jobs loop).

    The run itself goes on its own task, so a compaction of a large log (minutes, in bounded
    batches) holds up no other job; `run_once` reports it when it is done. The first run waits
    `first_after` past the start, so a restarting server settles first.
    """

    name = "compaction"

    def __init__(
        self,
        compactor: Compactor,
        clock: Callable[[], datetime],
        *,
        every: timedelta = timedelta(days=1),
        first_after: timedelta = timedelta(minutes=5),
        observe: Callable[[CompactionReport], None] = lambda report: None,
    ) -> None:
        self.compactor = compactor
        self._observe = observe  # e.g. the obt_compaction_seconds histogram
        self._clock = clock
        self.every = every
        self._first_after = first_after
        self.next_at: datetime | None = None
        self._task: asyncio.Task[CompactionReport] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run_once(self) -> int:
        """Start a run when one is due; report a finished one (heartbeats moved)."""
        if self._task is not None:
            if not self._task.done():
                return 0
            task, self._task = self._task, None
            try:
                report = task.result()
            except StoreError:
                raise  # the jobs loop logs it and tries again on the next day's run
            except Exception:
                log.exception("compaction failed; the next run is due at %s", self.next_at)
                return 0
            self._observe(report)
            log.info("compaction: %s", report.summary())
            return report.removed
        now = self._clock()
        if self.next_at is None:
            self.next_at = now + self._first_after
        if now < self.next_at or self.compactor.retention <= timedelta(0):
            return 0
        self.next_at = now + self.every
        self._task = asyncio.create_task(self.compactor.run(), name="compaction")
        return 0

    async def finished(self) -> CompactionReport | None:
        """Wait for the run in progress, if any (tests and a clean stop)."""
        if self._task is None:
            return None
        return await asyncio.shield(self._task)

    async def close(self) -> None:
        """At shutdown: a run cut short here is finished by the next one (see recover)."""
        await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def storage_sizes(store: object) -> dict[str, int]:
    """obt_log_bytes and obt_archive_bytes for a store that can tell them."""
    sizes: dict[str, int] = {}
    log_bytes = getattr(store, "log_bytes", None)
    archive = getattr(store, "archive", None)
    if callable(log_bytes):
        sizes["obt_log_bytes"] = int(await log_bytes())
    if callable(archive):
        sizes["obt_archive_bytes"] = int(await archive().size_bytes())
    return sizes


def compaction_job(
    store: object,
    clock: Callable[[], datetime],
    retention: timedelta,
    every: timedelta,
    observe: Callable[[CompactionReport], None],
) -> CompactionJob:
    """The server's daily job; bootstrap adds it to the jobs that run on the lease holder."""
    compactor = Compactor(cast("CompactableStore", store), retention, clock)
    return CompactionJob(compactor, clock, every=every, observe=observe)


async def measured_sizes(store: object, metrics: Metrics, now: float) -> dict[str, int]:
    """The storage sizes, re-measured when the last measure is old (shared by /metrics and
    /storage, so neither walks a large log on every request)."""
    if metrics.sizes_due(now):
        with contextlib.suppress(StoreError):  # shown again once the store answers
            metrics.set_sizes(now, await storage_sizes(store))
    return metrics.sizes
