"""The archive as an `archive` collection (the MongoDB store's), so every instance sees one.

One document per segment: its manifest entry's fields and the compressed bytes. A document is
inserted whole or not at all, and a unique index on `sequence` keeps two instances from both
writing the next segment.
"""

from __future__ import annotations

from typing import Any

from bson import Binary
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from obt.errors import ArchiveError, StoreUnavailable
from obt.store.archive import ManifestEntry, Segment, check_chain

COLLECTION = "archive"


class MongoArchive:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db[COLLECTION]
        self._indexed = False

    async def _ready(self) -> None:
        if not self._indexed:
            await self._collection.create_indexes(
                [IndexModel([("sequence", ASCENDING)], unique=True, name="sequence")]
            )
            self._indexed = True

    async def entries(self) -> list[ManifestEntry]:
        try:
            docs = (
                await self._collection.find({}, {"body": 0}).sort("sequence", ASCENDING).to_list()
            )
        except PyMongoError as exc:
            raise StoreUnavailable(f"the MongoDB archive cannot be read: {exc}") from None
        return [ManifestEntry.from_doc(_without_id(d)) for d in docs]

    async def append(self, segment: Segment) -> None:
        entries = await self.entries()
        check_chain(entries[-1] if entries else None, segment.entry)
        doc = {
            "_id": segment.entry.segment_id,
            **segment.entry.to_doc(),
            "body": Binary(segment.body),
        }
        try:
            await self._ready()
            await self._collection.insert_one(doc)
        except DuplicateKeyError:
            raise ArchiveError(
                f"segment {segment.entry.segment_id} (sequence {segment.entry.sequence}) "
                "was written by another instance first"
            ) from None
        except PyMongoError as exc:
            raise StoreUnavailable(f"the MongoDB archive cannot be written: {exc}") from None

    async def body(self, segment_id: str) -> bytes:
        try:
            doc = await self._collection.find_one({"_id": segment_id}, {"body": 1})
        except PyMongoError as exc:
            raise StoreUnavailable(f"the MongoDB archive cannot be read: {exc}") from None
        if doc is None or "body" not in doc:
            raise ArchiveError(f"segment {segment_id} is missing from the archive collection")
        return bytes(doc["body"])

    async def size_bytes(self) -> int:
        try:
            found = await self._collection.aggregate(
                [{"$group": {"_id": None, "bytes": {"$sum": "$compressed_bytes"}}}]
            )
            docs = await found.to_list()
        except PyMongoError as exc:
            raise StoreUnavailable(f"the MongoDB archive cannot be read: {exc}") from None
        return int(docs[0]["bytes"]) if docs else 0


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}
