"""The instances sharing one MongoDB: each names the sessions it runs transactions on and
renews a record of itself; any survivor kills the sessions of an instance whose record expired.

Why: a process killed inside a transaction leaves it open until the server's transaction
lifetime runs out (`transactionLifetimeLimitSeconds`, 60 s by default), and the counter
document it incremented stays locked, so every other instance's appends conflict until then.
Killing the dead instance's sessions (`killSessions`) aborts that transaction at once. Time is
the server's (`$$NOW`), so the instances' clocks do not matter. Killing a live but slow
instance's session only aborts its open transaction, which the driver retries: nothing
acknowledged depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from obt.errors import StoreUnavailable

log = logging.getLogger(__name__)

COLLECTION = "instances"


class InstanceRegistry:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        name: str,
        expire_s: float,
        renew_s: float | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self._db = db
        self.expire_s = expire_s
        self.renew_s = renew_s if renew_s is not None else max(0.2, expire_s / 5)
        self._idle: list[AsyncClientSession] = []
        self._lsids: list[Any] = []
        self.sessions_killed = 0
        self.swept: list[str] = []  # names of dead instances whose sessions were killed
        self.last_error: str | None = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncClientSession]:
        """A session of this instance's own, named in its record before its first use."""
        session = self._idle.pop() if self._idle else await self._new_session()
        try:
            yield session
        finally:
            self._idle.append(session)

    async def _new_session(self) -> AsyncClientSession:
        session = self._db.client.start_session()
        self._lsids.append(session.session_id["id"])
        try:
            await self.renew()  # the record names it before any transaction uses it
        except BaseException:
            self._lsids.pop()
            await session.end_session()
            raise
        return session

    async def renew(self) -> int:
        """Write this instance's record (again, if a survivor swept it); the server's time
        (milliseconds since the epoch)."""
        update = [
            {
                "$set": {
                    "name": self.name,
                    "lsids": {"$literal": list(self._lsids)},
                    "renewed_ms": {"$toLong": "$$NOW"},  # numbers: see mongodb_lease
                }
            }
        ]
        for _ in range(3):  # two upserts of one new record may race: the loser tries again
            doc = await self._db[COLLECTION].find_one_and_update(
                {"_id": self.id}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return int(doc["renewed_ms"])
        raise StoreUnavailable(f"instance record of {self.name} could not be written")

    async def sweep(self, now_ms: int) -> list[str]:
        """Kill the sessions of every instance not renewed for `expire_s` before `now_ms`."""
        cutoff = now_ms - int(self.expire_s * 1000)
        swept: list[str] = []
        async for doc in self._db[COLLECTION].find(
            {"renewed_ms": {"$lt": cutoff}, "_id": {"$ne": self.id}}
        ):
            lsids = doc.get("lsids") or []
            if lsids:
                await self._db.client.admin.command("killSessions", [{"id": i} for i in lsids])
            # Only that record as read: an instance that was merely slow re-creates its own.
            await self._db[COLLECTION].delete_one(
                {"_id": doc["_id"], "renewed_ms": doc["renewed_ms"]}
            )
            self.sessions_killed += len(lsids)
            swept.append(str(doc.get("name", doc["_id"])))
            log.warning(
                "instance %s stopped renewing its record: %d session(s) killed, so a "
                "transaction it left open holds no lock",
                doc.get("name", doc["_id"]),
                len(lsids),
            )
        self.swept.extend(swept)
        return swept

    async def run(self, stop: asyncio.Event) -> None:
        """Renew and sweep every `renew_s` until `stop`; store errors are logged and retried."""
        while not stop.is_set():
            try:
                await self.sweep(await self.renew())
                self.last_error = None
            except (PyMongoError, StoreUnavailable) as exc:
                self.last_error = str(exc)
                log.warning("instance record not renewed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.renew_s)

    async def close(self) -> None:
        """End this instance's sessions and remove its record (a clean stop)."""
        idle, self._idle = self._idle, []
        for session in idle:
            with contextlib.suppress(PyMongoError):
                await session.end_session()
        with contextlib.suppress(PyMongoError):
            await self._db[COLLECTION].delete_one({"_id": self.id})

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "expire_s": self.expire_s,
            "sessions_killed": self.sessions_killed,
            "swept": self.swept[-10:],
            "last_error": self.last_error,
        }
