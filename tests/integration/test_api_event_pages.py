"""GET /api/v1/events pages back from the newest event with `before` and forward with `after`,
over a few hundred real events, and the two directions agree with each other and the log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obt.api.app import create_app
from obt.settings import load_settings

ENROLL = "enroll-" + "e" * 32
ADMIN = "admin-" + "a" * 32
CLIENTS = ("alpha", "beta", "gamma")
HEARTBEATS = 100  # per client
NEWEST = 2**53 - 1  # what the dashboard sends for "the newest page"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN, rate_limit_per_min=10_000
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as http:
            session = str(uuid.uuid4())
            secrets: dict[str, str] = {}
            for cid in CLIENTS:
                r = await http.post(
                    "/api/v1/agents/register",
                    json={"client_id": cid, "hostname": cid, "session_id": session},
                    headers={"Authorization": f"Bearer {ENROLL}"},
                )
                assert r.status_code == 201, r.text
                secrets[cid] = r.json()["client_secret"]
            for seq in range(1, HEARTBEATS + 1):
                for cid in CLIENTS:
                    r = await http.post(
                        f"/api/v1/agents/{cid}/heartbeats",
                        json={"seq": seq, "session_id": session, "ollama": {"reachable": True}},
                        headers={"Authorization": f"Bearer {secrets[cid]}"},
                    )
                    assert r.status_code == 200, r.text
            yield http


async def get_page(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await http.get("/api/v1/events", params=params)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    positions = [e["position"] for e in page["items"]]
    assert positions == sorted(positions), "items are always in ascending position order"
    return page


def positions_of(page: dict[str, Any]) -> list[int]:
    return [e["position"] for e in page["items"]]


async def whole_log(http: httpx.AsyncClient, **filters: Any) -> list[int]:
    found: list[int] = []
    page = await get_page(http, limit=1000, **filters)
    found += positions_of(page)
    assert page["next_after"] is None
    return found


async def page_backwards(http: httpx.AsyncClient, limit: int, **filters: Any) -> list[list[int]]:
    pages: list[list[int]] = []
    page = await get_page(http, before=NEWEST, limit=limit, **filters)
    while True:
        pages.append(positions_of(page))
        if page["next_before"] is None:
            return pages
        assert page["next_before"] == positions_of(page)[0]
        page = await get_page(http, before=page["next_before"], limit=limit, **filters)


async def test_paging_back_from_the_newest_event_covers_the_log_once(
    client: httpx.AsyncClient,
) -> None:
    log = await whole_log(client)
    assert len(log) > 3 * HEARTBEATS
    pages = await page_backwards(client, limit=40)
    assert pages[0] == log[-40:]  # the newest page first
    assert all(len(p) == 40 for p in pages[:-1])
    assert [p for page in reversed(pages) for p in page] == log
    newest = await get_page(client, before=NEWEST, limit=40)
    assert newest["next_after"] is None  # nothing is newer than the newest page
    oldest = await get_page(client, before=pages[-1][0], limit=40)
    assert oldest == {"items": [], "next_after": pages[-1][0] - 1, "next_before": None}


async def test_newer_and_older_cursors_lead_to_the_adjacent_pages(
    client: httpx.AsyncClient,
) -> None:
    log = await whole_log(client)
    middle = await get_page(client, before=log[200], limit=50)
    assert positions_of(middle) == log[150:200]
    assert middle["next_before"] == log[150]
    assert middle["next_after"] == log[199]
    newer = await get_page(client, after=middle["next_after"], limit=50)
    assert positions_of(newer) == log[200:250]
    assert newer["next_before"] == log[200]  # and back again
    back = await get_page(client, before=newer["next_before"], limit=50)
    assert back == middle
    older = await get_page(client, before=middle["next_before"], limit=50)
    assert positions_of(older) == log[100:150]

    # Paging forward from the start, next_before is null on the first page only.
    first = await get_page(client, limit=50)
    assert positions_of(first) == log[:50]
    assert first["next_before"] is None
    assert first["next_after"] == log[49]
    forward: list[int] = []
    page = first
    while True:
        forward += positions_of(page)
        if page["next_after"] is None:
            break
        page = await get_page(client, after=page["next_after"], limit=50)
        assert page["next_before"] == positions_of(page)[0]
    assert forward == log


async def test_filters_apply_to_pages_and_cursors_alike(client: httpx.AsyncClient) -> None:
    filters = {"stream": "client-beta", "type": "HeartbeatReceived"}
    beats = await whole_log(client, **filters)
    assert len(beats) == HEARTBEATS
    pages = await page_backwards(client, limit=30, **filters)
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    assert [p for page in reversed(pages) for p in page] == beats
    newest = await get_page(client, before=NEWEST, limit=30, **filters)
    assert newest["next_after"] is None
    # A cursor between matching events: the next newer one is found, whatever lies between.
    gap = await get_page(client, before=beats[50] + 1, limit=10, **filters)
    assert positions_of(gap) == beats[41:51]
    assert gap["next_after"] == beats[50]
    several = {"type": "ClientRegistered,ServerStarted"}
    starts = await whole_log(client, **several)
    assert len(starts) == len(CLIENTS) + 1
    last_two = await get_page(client, before=NEWEST, limit=2, **several)
    assert positions_of(last_two) == starts[-2:]
    assert last_two["next_before"] == starts[-2]


async def test_a_time_window_pages_backwards_too(client: httpx.AsyncClient) -> None:
    events = (await client.get("/api/v1/events", params={"limit": 1000})).json()["items"]
    start, end = events[60]["recorded_at"], events[240]["recorded_at"]
    window = {"from": start, "to": end}
    inside = await whole_log(client, **window)
    assert inside
    pages = await page_backwards(client, limit=25, **window)
    assert [p for page in reversed(pages) for p in page] == inside


async def test_after_and_before_together_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/events", params={"after": 5, "before": 50})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert "after" in r.json()["detail"]
    assert "before" in r.json()["detail"]


async def test_openapi_documents_the_before_cursor(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/events"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"after", "before", "limit", "stream", "type", "from", "to"} <= names
    page_schema = spec["components"]["schemas"]["EventPage"]
    assert {"items", "next_after", "next_before"} <= set(page_schema["properties"])
