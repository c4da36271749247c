"""`obt archive verify`: recompute every hash of the archive and check it against the log.

Each segment's bytes must hash to its manifest entry, hold the count and range the entry says,
and chain to the entry before it; each entry must match the LogCompacted event that recorded
it, and every LogCompacted event must name a segment that is there. A finding names the segment
and says whether it was altered, is missing, is out of order or was never recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from obt.domain.events import SYSTEM_STREAM, LogCompacted
from obt.errors import ArchiveError
from obt.store.archive import GENESIS, Archive, ManifestEntry, recorded_at_of, uncompress
from obt.store.codec import loads_object, to_datetime
from obt.store.ports import EventLog, RecordedEvent

ALTERED, MISSING, REORDERED, UNRECORDED = "altered", "missing", "reordered", "unrecorded"


@dataclass(frozen=True, slots=True)
class Finding:
    segment_id: str
    problem: str  # altered | missing | reordered | unrecorded
    detail: str

    def __str__(self) -> str:
        return f"segment {self.segment_id}: {self.problem}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    segments: int = 0
    events: int = 0
    uncompressed_bytes: int = 0
    compressed_bytes: int = 0
    first_position: int | None = None
    last_position: int | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if not self.segments:
            return "archive is empty: nothing to verify"
        span = f"positions {self.first_position}..{self.last_position}"
        return (
            f"{self.segments} segments, {self.events} events ({span}), "
            f"{self.compressed_bytes} bytes compressed, {self.uncompressed_bytes} uncompressed: "
            + ("every hash, count and range checks out" if self.ok else "PROBLEMS FOUND")
        )


async def compactions(log: EventLog) -> list[RecordedEvent]:
    """Every LogCompacted event on the system stream, oldest first."""
    found: list[RecordedEvent] = []
    after = 0
    while batch := await log.read_all(
        after=after, limit=1000, stream=SYSTEM_STREAM, types=[LogCompacted.type_name()]
    ):
        found.extend(batch)
        after = batch[-1].position
    return found


async def verify_archive(archive: Archive, log: EventLog) -> VerifyReport:
    report = VerifyReport()
    entries = await archive.entries()
    recorded = {e.data["segment_id"]: e for e in await compactions(log)}
    by_hash = {entry.sha256: entry for entry in entries}
    # Segments hold ascending, disjoint ranges: one listed out of that order was moved.
    in_order = sorted(entries, key=lambda e: e.first_position)
    moved = {e.segment_id for e, o in zip(entries, in_order, strict=True) if e is not o}
    previous: ManifestEntry | None = None
    body_trouble: set[str] = set()
    for index, entry in enumerate(in_order):
        report.segments += 1
        report.events += entry.count
        report.compressed_bytes += entry.compressed_bytes
        if report.first_position is None:
            report.first_position = entry.first_position
        report.last_position = entry.last_position
        problems = await _check_body(archive, entry, by_hash, report)
        if problems:
            body_trouble.add(entry.segment_id)
            report.findings.extend(problems)
        if entry.segment_id in moved:
            place = entries.index(entry) + 1
            report.findings.append(
                Finding(
                    entry.segment_id, REORDERED, f"listed as number {place}, belongs at {index + 1}"
                )
            )
        elif previous is None or previous.segment_id not in body_trouble | moved:
            chained = _check_place(entry, previous, index, entries)
            if chained is not None:
                report.findings.append(chained)
        report.findings.extend(_check_recorded(entry, recorded.pop(entry.segment_id, None)))
        previous = entry
    for segment_id, event in recorded.items():
        report.findings.append(
            Finding(
                segment_id,
                MISSING,
                f"LogCompacted at position {event.position} names it, the manifest does not",
            )
        )
    return report


async def _check_body(
    archive: Archive,
    entry: ManifestEntry,
    by_hash: dict[str, ManifestEntry],
    report: VerifyReport,
) -> list[Finding]:
    sid = entry.segment_id
    try:
        body = await archive.body(sid)
        raw = await asyncio.to_thread(uncompress, body) if len(body) > 65536 else uncompress(body)
    except ArchiveError as exc:
        kind = MISSING if "missing" in str(exc) else ALTERED
        return [Finding(sid, kind, str(exc))]
    report.uncompressed_bytes += len(raw)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry.sha256:
        other = by_hash.get(digest)
        if other is not None:
            return [Finding(sid, REORDERED, f"its file holds segment {other.segment_id}'s bytes")]
        return [Finding(sid, ALTERED, "its bytes do not hash to the manifest's sha256")]
    lines = raw.splitlines()
    try:
        first, last = loads_object(lines[0]), loads_object(lines[-1])
    except (ValueError, IndexError) as exc:
        return [Finding(sid, ALTERED, f"its events cannot be read: {exc}")]
    said = (
        entry.count,
        entry.first_position,
        entry.last_position,
        to_datetime(entry.first_recorded_at),
        to_datetime(entry.last_recorded_at),
    )
    holds = (
        len(lines),
        first["position"],
        last["position"],
        recorded_at_of(first),
        recorded_at_of(last),
    )
    if said != holds:
        return [
            Finding(sid, ALTERED, f"the manifest says {said[:3]}, the segment holds {holds[:3]}")
        ]
    return []


def _check_place(
    entry: ManifestEntry,
    previous: ManifestEntry | None,
    index: int,
    entries: list[ManifestEntry],
) -> Finding | None:
    sid = entry.segment_id
    expected = GENESIS if previous is None else previous.entry_sha256()
    if entry.sequence != index + 1 or (
        previous is not None and entry.first_position <= previous.last_position
    ):
        return Finding(
            sid, REORDERED, f"it is number {index + 1} in the manifest, sequence {entry.sequence}"
        )
    if entry.previous_sha256 != expected:
        chained_to = [e.segment_id for e in entries if e.entry_sha256() == entry.previous_sha256]
        if chained_to:
            return Finding(
                sid, REORDERED, f"it chains to segment {chained_to[0]}, not to its predecessor"
            )
        what = (
            "the entry before it was altered" if previous is not None else "its entry was altered"
        )
        return Finding(sid, ALTERED, f"the hash chain breaks here ({what})")
    return None


def _check_recorded(entry: ManifestEntry, event: RecordedEvent | None) -> list[Finding]:
    sid = entry.segment_id
    if event is None:
        return [Finding(sid, UNRECORDED, "no LogCompacted event records it")]
    data = event.data
    said = (
        data.get("segment_sha256"),
        data.get("first_position"),
        data.get("last_position"),
        data.get("removed"),
    )
    holds = (entry.sha256, entry.first_position, entry.last_position, entry.count)
    if said != holds:
        return [
            Finding(
                sid,
                ALTERED,
                f"LogCompacted at position {event.position} recorded {said}, "
                f"the manifest says {holds}",
            )
        ]
    return []
