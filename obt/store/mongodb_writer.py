"""MongoDB group commit: every append queued during a transaction goes into the next one.

One transaction per batch reads the stream heads and any re-sent ids, decides each append on
its own (only the offending caller fails), takes n positions from the counter document with
one $inc and inserts all events with one insert_many; the driver retries the whole
transaction on TransientTransactionError (WriteConflict) and unknown commit results.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from obt.errors import LeaseLost
from obt.store.codec import dumps, loads_object
from obt.store.lease import Fence
from obt.store.mongodb_lease import check_fences
from obt.store.ports import AppendResult
from obt.store.rules import (
    EncodedEvent,
    StoredIdentity,
    check_expected,
    duplicate_ids_in,
    resend_version,
)

COUNTER_ID = "events"


@dataclass(slots=True)
class AppendJob:
    future: asyncio.Future[AppendResult]
    stream: str
    events: list[EncodedEvent]
    expected_version: int | None
    recorded_at: float
    fence: Fence | None = None  # a job's append: refused unless the token is still the lease's


Outcome = tuple[AppendResult | None, BaseException | None]


async def append_batch(
    db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession, jobs: list[AppendJob]
) -> tuple[list[Outcome], int]:
    """Decide and write every job in one transaction; return the outcomes and the new head."""
    fences = {job.fence for job in jobs if job.fence is not None}
    stale = await check_fences(db, session, fences) if fences else set()
    streams = list({job.stream for job in jobs})
    versions = {
        doc["_id"]: doc["version"]
        async for doc in db.streams.find({"_id": {"$in": streams}}, session=session)
    }
    ids = [event.id for job in jobs for event in job.events]
    stored = {
        doc["_id"]: _identity(doc)
        async for doc in db.events.find(
            {"_id": {"$in": ids}},
            {"position": 0, "recorded_at": 0},
            session=session,
        )
    }
    outcomes: list[Outcome] = []
    accepted: list[tuple[int, AppendJob, int]] = []  # (outcome index, job, first version)
    for job in jobs:
        if job.fence in stale:
            outcomes.append((None, LeaseLost(f"the {job.fence.lease} lease has a newer holder")))
            continue
        try:
            duplicate_ids_in(job.events)
            mine = {e.id: stored[e.id] for e in job.events if e.id in stored}
            resent = resend_version(job.stream, job.events, mine)
            if resent is not None:
                outcomes.append((AppendResult(job.stream, resent, ()), None))
                continue
            version = versions.get(job.stream, 0)
            check_expected(job.stream, job.expected_version, version)
        except Exception as exc:
            outcomes.append((None, exc))
            continue
        if not job.events:
            outcomes.append((AppendResult(job.stream, version, ()), None))
            continue
        accepted.append((len(outcomes), job, version))
        outcomes.append((None, None))  # filled in once positions are known
        versions[job.stream] = version + len(job.events)
        for i, event in enumerate(job.events, start=1):
            # Later jobs of this batch see these ids as stored, exactly as in SQLite.
            stored[event.id] = StoredIdentity(
                job.stream, version + i, event.type, event.schema_version, event.data,
                event.metadata,
            )  # fmt: skip
    if not accepted:
        return outcomes, 0
    count = sum(len(job.events) for _, job, _ in accepted)
    latest = max(job.recorded_at for _, job, _ in accepted)
    before = await db.counters.find_one_and_update(
        {"_id": COUNTER_ID},
        {"$inc": {"seq": count}, "$max": {"recorded_at": latest}},
        upsert=True,
        return_document=ReturnDocument.BEFORE,
        session=session,
    )
    head = 0 if before is None else int(before.get("seq", 0))
    last_at = float("-inf") if before is None else float(before.get("recorded_at", "-inf"))
    docs: list[dict[str, Any]] = []
    for index, job, version in accepted:
        when = max(job.recorded_at, last_at)  # positions and times move forward together
        last_at = when
        first = head + 1
        for i, event in enumerate(job.events, start=1):
            head += 1
            docs.append(_event_doc(event, job.stream, version + i, head, when))
        result = AppendResult(job.stream, version + len(job.events), tuple(range(first, head + 1)))
        outcomes[index] = (result, None)
    await db.events.insert_many(docs, ordered=True, session=session)
    await db.streams.bulk_write(
        [
            UpdateOne({"_id": stream}, {"$set": {"version": version}}, upsert=True)
            for stream, version in versions.items()
        ],
        ordered=False,
        session=session,
    )
    return outcomes, head


def _event_doc(
    event: EncodedEvent, stream: str, version: int, position: int, when: float
) -> dict[str, Any]:
    return {
        "_id": event.id,
        "position": position,
        "stream": stream,
        "version": version,
        "type": event.type,
        "schema_version": event.schema_version,
        # Stored as BSON documents, so operators can query payloads in the mongo shell.
        "data": loads_object(event.data),
        "metadata": loads_object(event.metadata),
        "recorded_at": when,
    }


def _identity(doc: dict[str, Any]) -> StoredIdentity:
    data, metadata = doc.get("data"), doc.get("metadata")
    return StoredIdentity(
        doc["stream"],
        doc["version"],
        doc["type"],
        doc["schema_version"],
        dumps(data) if isinstance(data, dict) else repr(data),
        dumps(metadata) if isinstance(metadata, dict) else repr(metadata),
    )
