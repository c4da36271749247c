"""Runs the one store contract suite on every adapter: memory, SQLite and MongoDB."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from obt.store.ports import Store

from .harness import Harness, MemoryHarness, MongoHarness, SQLiteHarness

REAL_MONGODB_URI = os.environ.get("OBT_TEST_MONGODB_URI")


@pytest.fixture(scope="session")
def secantus_uri() -> Iterator[str]:
    """A MongoDB-wire stand-in for the whole session (it takes ~2 s to stop)."""
    secantus = pytest.importorskip("secantus")
    server = secantus.SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    server.start()
    try:
        yield with_option(server.uri, "retryWrites=false")
    finally:
        server.stop()


def with_option(uri: str, option: str) -> str:
    if option.split("=")[0] in uri:
        return uri
    if "?" in uri:
        return f"{uri}&{option}"
    return f"{uri}?{option}" if uri.endswith("/") or uri.count("/") > 2 else f"{uri}/?{option}"


ADAPTERS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.mongodb),
    pytest.param(
        "mongodb-real",
        id="mongodb-real",
        marks=[
            pytest.mark.mongodb,
            pytest.mark.skipif(not REAL_MONGODB_URI, reason="OBT_TEST_MONGODB_URI is not set"),
        ],
    ),
]


def make_harness(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if kind == "memory":
        return MemoryHarness()
    if kind == "sqlite":
        return SQLiteHarness(tmp_path)
    if kind == "mongodb":
        # The stand-in manages ~1k writes/s: heavy tests write fewer events there.
        return MongoHarness(request.getfixturevalue("secantus_uri"), scale=300)
    assert REAL_MONGODB_URI
    return MongoHarness(REAL_MONGODB_URI, scale=2000)


@pytest.fixture(params=ADAPTERS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    made = make_harness(request.param, request, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
async def store(harness: Harness) -> AsyncIterator[Store]:
    opened = await harness.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def opened(harness: Harness) -> AsyncIterator[Store]:
    """A store with the server's codec (upcasters), for tests that drive the real handlers."""
    from obt.bootstrap import make_codec

    store = await harness.open(make_codec())
    try:
        yield store
    finally:
        await store.close()
