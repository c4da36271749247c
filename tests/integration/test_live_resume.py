"""The live feed of a real server, on SQLite and on a MongoDB-wire server: a lone dashboard that
drops off and comes back is sent everything that changed meanwhile; a cut between two messages
of one position loses nothing; watching a part of the fleet; bad watch items are a 422."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.simulated_agent import SimulatedAgent, client_status
from tests.support.processes import ServerProcess, wait_until
from tests.support.sse import SseReader, server_has_subscriber

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.mongodb),
]


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("live") / "data"
    if request.param == "mongodb":
        uri = request.getfixturevalue("mongodb_uri")
        db = f"obt_live_{uuid.uuid4().hex[:10]}"
        process = ServerProcess(data_dir, store="mongodb", mongodb_uri=uri, mongodb_db=db)
    else:
        process = ServerProcess(data_dir)
    with process.serving():
        yield process


def doc_id(message: dict[str, Any]) -> tuple[str, str]:
    data = json.loads(message["data"])
    key = {"client": "client_id", "timeline": "position", "model": "name"}[message["event"]]
    return message["event"], str(data[key])


def received(reader: SseReader) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest data of every document the reader was sent."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for m in list(reader.messages):
        if m["event"] in ("client", "timeline", "model"):
            out[doc_id(m)] = json.loads(m["data"])
    return out


def nobody_listens(server: ServerProcess) -> bool:
    return not server_has_subscriber(server)


def test_a_lone_subscriber_gets_everything_that_happened_while_it_was_away(
    server: ServerProcess,
) -> None:
    with server.client() as http:
        agents = {cid: SimulatedAgent(server, f"away-{cid}") for cid in ("a", "b", "c")}
        for cid in ("a", "b"):
            assert agents[cid].register(http).status_code == 201
        reader = SseReader(f"{server.api_url}/live")
        try:
            wait_until(
                lambda: ("client", "away-b") in received(reader), 10, "no live message for b"
            )
        finally:
            reader.close()
        gone_at = reader.messages[-1]["id"]
        wait_until(lambda: nobody_listens(server), 10, "the closed stream is still subscribed")

        # Away: a registration, a model report, an Ollama outage, timeouts.
        assert agents["c"].register(http).status_code == 201
        assert agents["a"].report_models(http, ["llama3:8b", "qwen:1b"]).status_code == 200
        assert agents["b"].heartbeat(http, reachable=False).status_code == 200
        for cid, agent in agents.items():
            wait_until(
                lambda agent=agent: client_status(http, agent.client_id) == "offline",
                30,
                f"{cid} did not time out",
            )
        clients = http.get("/clients").json()["items"]
        timeline = http.get("/timeline", params={"limit": 1000}).json()["items"]

    owed = {("client", c["client_id"]) for c in clients if c["position"] > int(gone_at)}
    owed |= {("timeline", str(e["position"])) for e in timeline if e["position"] > int(gone_at)}
    owed.add(("model", "llama3:8b"))
    assert ("client", "away-c") in owed
    assert any(e["type"] == "ClientTimedOut" for e in timeline if e["position"] > int(gone_at))

    resumed = SseReader(f"{server.api_url}/live", last_event_id=gone_at)
    try:
        wait_until(
            lambda: owed <= received(resumed).keys(),
            15,
            "changes made while nobody listened were not sent on resume",
        )
        got = received(resumed)
        for c in clients:
            if ("client", c["client_id"]) in owed:
                assert got["client", c["client_id"]]["status"] == "offline"
        assert {h["client_id"] for h in got["model", "llama3:8b"]["hosts"]} == {"away-a"}
        assert all(m["event"] != "reset" for m in resumed.messages)
    finally:
        resumed.close()


def test_a_cut_between_two_messages_of_one_position_loses_nothing(server: ServerProcess) -> None:
    with server.client() as http:
        head = http.get("/health").json()["store"]["head"]
        for i in range(3):
            agent = SimulatedAgent(server, f"cut-{i}")
            assert agent.register(http).status_code == 201  # a client and a timeline entry
    full = SseReader(f"{server.api_url}/live", last_event_id=str(head))
    try:
        wait_until(
            lambda: {("client", f"cut-{i}") for i in range(3)} <= received(full).keys(),
            10,
            "the registrations were not sent",
        )
    finally:
        full.close()
    messages = [m for m in full.messages if m["event"] in ("client", "timeline")]
    positions = [json.loads(m["data"])["position"] for m in messages]
    pairs = [i for i in range(len(messages) - 1) if positions[i] == positions[i + 1]]
    assert pairs, "no two messages share a position: nothing to cut between"
    for i in pairs:
        cut_after = messages[i]["id"]
        assert int(cut_after) < positions[i + 1], "an id claimed a position still being sent"
        # Resumed by query parameter, as the dashboard's EventSource does.
        after_cut = SseReader(f"{server.api_url}/live?last_event_id={cut_after}")
        try:
            wait_until(
                lambda after_cut=after_cut, i=i: doc_id(messages[i + 1]) in received(after_cut),
                10,
                f"the message after a cut at id {cut_after} was lost",
            )
        finally:
            after_cut.close()


def test_watching_one_client_and_the_counts(server: ServerProcess) -> None:
    with server.client() as http:
        watched, other = SimulatedAgent(server, "w-1"), SimulatedAgent(server, "w-2")
        assert watched.register(http).status_code == 201
        assert other.register(http).status_code == 201
        reader = SseReader(f"{server.api_url}/live?watch=client:w-1,counts")
        try:
            wait_until(lambda: reader.find("counts") is not None, 10, "no counts at connect")
            first = json.loads(reader.messages[0]["data"])
            assert sum(first["by_status"].values()) == first["total"] >= 2
            assert watched.heartbeat(http, reachable=False).status_code == 200
            assert other.heartbeat(http, reachable=False).status_code == 200
            wait_until(
                lambda: reader.find("client", lambda d: d["status"] == "degraded") is not None,
                10,
                "the watched client's change was not sent",
            )
        finally:
            reader.close()
    assert {doc_id(m) for m in reader.messages if m["event"] != "counts"} == {("client", "w-1")}


@pytest.mark.parametrize("watch", ["everything", "client:no/slash", "models:x"])
def test_an_unknown_watch_item_is_a_422(server: ServerProcess, watch: str) -> None:
    response = httpx.get(f"{server.api_url}/live", params={"watch": watch}, timeout=10)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_watch"
    assert "watch item" in response.json()["detail"]


def test_an_id_this_server_never_gave_is_a_reset(server: ServerProcess) -> None:
    for bad in ("not-a-number", str(2**62)):
        reader = SseReader(f"{server.api_url}/live", last_event_id=bad)
        try:
            wait_until(lambda r=reader: r.find("reset") is not None, 10, f"no reset for {bad}")
        finally:
            reader.close()


@pytest.fixture(autouse=True)
def _settled(server: ServerProcess) -> Iterator[None]:
    """Each test starts and ends with no subscriber left on the shared server."""
    yield
    wait_until(lambda: nobody_listens(server), 10, "a stream was left subscribed")
