"""MongoDB-only behaviour: unreachable servers, servers without transactions, the indexes."""

from __future__ import annotations

import gc
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from pymongo import AsyncMongoClient

from obt.errors import StoreMisconfigured, StoreUnavailable
from obt.store.mongodb import MongoStore, hosts_of

pytestmark = pytest.mark.mongodb


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_is_unavailable_fast_naming_the_host_only() -> None:
    port = free_port()
    store = MongoStore(
        f"mongodb://obt:s3cret-pw@127.0.0.1:{port}/?retryWrites=false",
        "obt",
        server_selection_timeout_ms=300,
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as unavailable:
        await store.open()
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{port}" in str(unavailable.value)
    assert "s3cret-pw" not in str(unavailable.value)
    await store.close()


def test_hosts_of_drops_credentials_and_options() -> None:
    assert hosts_of("mongodb://u:p@a:1,b:2/obt?replicaSet=rs0") == "a:1,b:2"
    assert hosts_of("mongodb+srv://u:p%40x@cluster.example") == "cluster.example"


@pytest.fixture(scope="module")
def standalone_uri() -> Iterator[str]:
    secantus = pytest.importorskip("secantus")
    server = secantus.SecantusDBServer(
        host="127.0.0.1", port=0, storage_path=":memory:", replica_set_name=None
    )
    server.start()
    try:
        yield f"{server.uri}?retryWrites=false"
    finally:
        server.stop()


# pymongo can drop a monitor socket it was still opening when a refused client closes; collect
# it here so its ResourceWarning cannot land in (and fail) an unrelated later test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_server_without_transactions_is_refused_with_replica_set_help(
    standalone_uri: str,
) -> None:
    store = MongoStore(standalone_uri, f"obt_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreMisconfigured) as refused:
        await store.open()
    message = str(refused.value)
    assert "--replSet rs0" in message
    assert "rs.initiate()" in message
    await store.close()
    gc.collect()


async def test_open_creates_the_documented_indexes(secantus_uri: str) -> None:
    name = f"obt_{uuid.uuid4().hex[:8]}"
    store = MongoStore(secantus_uri, name)
    await store.open()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(secantus_uri)
    try:
        events = await client[name].events.index_information()
        assert events["position"].get("unique")
        assert events["stream_version"].get("unique")
        assert events["type_position"]["key"] == [("type", 1), ("position", 1)]
        assert "recorded_at" in events
        docs = await client[name].docs.index_information()
        assert docs["collection_key"].get("unique")
        assert "collection_client_sort" in docs
    finally:
        await client.close()
        await store.close()
