"""The jobs lease as one document in the `leases` collection, shared by every instance.

`{_id: name, holder, token, expires_ms}`: one conditional update takes a free or expired
lease (the token grows by one) or renews the holder's own (the token stays). Expiry is judged
by the server's clock (`$$NOW`), never an instance's. Appends that carry a fence check the
token inside their transaction (mongodb_writer), and that check writes the lease document, so
a takeover and a stale holder's append cannot both commit.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from obt.errors import StoreUnavailable
from obt.store.lease import JOBS_LEASE, Fence

COLLECTION = "leases"
# The server's clock in milliseconds. Times are compared as numbers: the stand-in compares
# dates inside expressions wrongly, and numbers mean the same on every server.
NOW_MS = {"$toLong": "$$NOW"}


class MongoLease:
    shared = True

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        holder: str,
        duration_s: float,
        *,
        name: str = JOBS_LEASE,
    ) -> None:
        self.name = name
        self.holder = holder
        self.duration_s = duration_s
        self._db = db

    async def acquire(self) -> int | None:
        mine = {"$eq": ["$holder", self.holder]}
        live = {"$gt": ["$expires_ms", NOW_MS]}  # a missing expires_ms (a new lease) is not
        take = {"$or": [mine, {"$not": [live]}]}
        new_term = {"$not": [{"$and": [mine, live]}]}
        update = [
            {
                "$set": {
                    "token": {
                        "$cond": [
                            {"$and": [take, new_term]},
                            {"$add": [{"$ifNull": ["$token", 0]}, 1]},
                            "$token",
                        ]
                    },
                    "holder": {"$cond": [take, self.holder, "$holder"]},
                    "expires_ms": {
                        "$cond": [
                            take,
                            {"$add": [NOW_MS, int(self.duration_s * 1000)]},
                            "$expires_ms",
                        ]
                    },
                }
            }
        ]
        try:
            doc = await self._db[COLLECTION].find_one_and_update(
                {"_id": self.name}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except PyMongoError as exc:
            raise StoreUnavailable(f"the {self.name} lease could not be renewed: {exc}") from None
        if doc is None or doc.get("holder") != self.holder:
            return None
        return int(doc["token"])

    async def release(self) -> None:
        try:
            await self._db[COLLECTION].update_one(
                {"_id": self.name, "holder": self.holder}, [{"$set": {"expires_ms": NOW_MS}}]
            )
        except PyMongoError as exc:
            raise StoreUnavailable(f"the {self.name} lease could not be released: {exc}") from None

    async def current_holder(self) -> str | None:
        try:
            doc = await self._db[COLLECTION].find_one_and_update(
                {"_id": self.name},
                [{"$set": {"checked_ms": NOW_MS}}],
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as exc:
            raise StoreUnavailable(f"the {self.name} lease could not be read: {exc}") from None
        if doc is None or doc.get("expires_ms") is None or doc["expires_ms"] <= doc["checked_ms"]:
            return None
        return str(doc["holder"])


async def check_fences(
    db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession, fences: set[Fence]
) -> set[Fence]:
    """Inside an append's transaction: the fences whose token is no longer their lease's.

    The check writes the lease document (a counter of fenced writes), so a takeover that
    commits meanwhile conflicts with this transaction, which is then retried and refused.
    """
    stale = set()
    for fence in fences:
        result = await db[COLLECTION].update_one(
            {"_id": fence.lease, "token": fence.token},
            {"$inc": {"fenced_writes": 1}},
            session=session,
        )
        if result.matched_count == 0:
            stale.add(fence)
    return stale
