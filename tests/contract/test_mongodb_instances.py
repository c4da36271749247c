"""The instance registry on MongoDB: an instance that stops renewing its record (it died) has
its sessions killed by a survivor, so a transaction it left open no longer holds the log's
counter; an instance that keeps renewing is never swept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from obt.store.codec import EventCodec
from obt.store.mongodb import MongoStore
from obt.store.mongodb_instances import InstanceRegistry
from obt.store.ports import ANY, NewEvent

from .harness import MongoHarness

pytestmark = pytest.mark.mongodb

EXPIRE_S = 0.5


@pytest.fixture
async def mongo(secantus_uri: str) -> AsyncIterator[tuple[MongoHarness, Any]]:
    harness = MongoHarness(secantus_uri, scale=300)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(secantus_uri, tz_aware=True)
    try:
        yield harness, client[harness.db_name]
    finally:
        await client.close()
        await harness.cleanup()


def _event(n: int) -> NewEvent:
    return NewEvent(id=f"after-crash-{n}", type="ServerStarted", data={"n": n})


async def test_a_dead_instances_open_transaction_is_aborted_and_appends_go_on(
    mongo: tuple[MongoHarness, Any],
) -> None:
    harness, db = mongo
    survivor = MongoStore(harness.uri, harness.db_name, EventCodec(), instance_expire_s=EXPIRE_S)
    await survivor.open()
    try:
        now = datetime.now(UTC)
        await survivor.append("system", [_event(1)], expected_version=ANY, recorded_at=now)
        # The dead instance: it named its session, took the counter inside a transaction,
        # and never renewed its record again.
        dead = InstanceRegistry(db, name="dead", expire_s=EXPIRE_S)
        async with dead.session() as session:
            await session.start_transaction()
            await db.counters.update_one({"_id": "events"}, {"$inc": {"seq": 1}}, session=session)
            appended = await survivor.append(
                "system", [_event(2)], expected_version=ANY, recorded_at=now
            )
            assert appended.positions == (2,)  # the position the dead transaction never took
            assert survivor.instances is not None and "dead" in survivor.instances.swept
            with contextlib.suppress(Exception):
                await session.abort_transaction()
        assert await db.instances.find_one({"name": "dead"}) is None
    finally:
        await survivor.close()


async def test_an_instance_that_keeps_renewing_is_never_swept(
    mongo: tuple[MongoHarness, Any],
) -> None:
    _, db = mongo
    sweeper = InstanceRegistry(db, name="sweeper", expire_s=EXPIRE_S)
    live = InstanceRegistry(db, name="live", expire_s=EXPIRE_S, renew_s=0.05)
    stop = asyncio.Event()
    renewing = asyncio.create_task(live.run(stop))
    try:
        async with live.session():
            pass  # it names a session, as an instance does before its first transaction
        for _ in range(10):  # over 3 expiry periods, each sweep finds it renewed
            assert await sweeper.sweep(await sweeper.renew()) == []
            await asyncio.sleep(EXPIRE_S / 6)
        assert sweeper.sessions_killed == 0
        stop.set()
        await renewing
        # Stopped renewing: the next sweep after the expiry finds it.
        found: list[str] = []
        for _ in range(100):
            found = await sweeper.sweep(await sweeper.renew())
            if found:
                break
            await asyncio.sleep(EXPIRE_S / 5)
        assert found == ["live"]
        assert sweeper.sessions_killed == 1
    finally:
        stop.set()
        await renewing
        await live.close()
        await sweeper.close()
