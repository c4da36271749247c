"""Heartbeats are served past the framework's routing: the same answers either way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from obt.api.agents import HeartbeatShortcut
from obt.api.app import create_app
from obt.api.middleware import Edge
from obt.settings import load_settings

ENROLL = "enroll-" + "e" * 32
ADMIN = "admin-" + "a" * 32


def test_the_shortcut_takes_only_what_the_route_would_take() -> None:
    shortcut = HeartbeatShortcut("/api/v1")

    def match(method: str, path: str) -> str | None:
        return shortcut.match({"type": "http", "method": method, "path": path})

    assert match("POST", "/api/v1/agents/gpu-box.lab_1/heartbeats") == "gpu-box.lab_1"
    assert match("GET", "/api/v1/agents/a/heartbeats") is None
    assert match("POST", "/api/v1/agents/a/models") is None
    assert match("POST", "/api/v1/agents//heartbeats") is None
    assert match("POST", "/api/v1/agents/a/b/heartbeats") is None
    assert match("POST", "/api/v1/agents/" + "x" * 65 + "/heartbeats") is None
    assert match("POST", "/api/v2/agents/a/heartbeats") is None
    assert shortcut.route.path == "/agents/{client_id}/heartbeats"  # as routed requests


def without_shortcut(app: FastAPI) -> None:
    """The same app with the edge middleware serving nothing itself."""
    for middleware in app.user_middleware:
        if middleware.cls is Edge:
            middleware.kwargs["shortcut"] = None


@pytest.fixture(params=["shortcut", "route"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN)
    app = create_app(settings)
    if request.param == "route":
        without_shortcut(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as http:
            yield http


async def answers(http: httpx.AsyncClient) -> list[tuple[int, Any]]:
    session = str(uuid.uuid4())
    r = await http.post(
        "/api/v1/agents/register",
        json={"client_id": "a", "hostname": "a", "session_id": session},
        headers={"Authorization": f"Bearer {ENROLL}"},
    )
    secret = r.json()["client_secret"]
    own = {"Authorization": f"Bearer {secret}"}
    body = {"seq": 1, "session_id": session, "ollama": {"reachable": True}}
    sent = [
        ("a", body, own),
        ("a", body, own),  # the same seq again: acknowledged once
        ("a", {**body, "seq": 0}, own),
        ("a", {**body, "seq": "x"}, own),
        ("a", body, {}),
        ("a", body, {"Authorization": f"Bearer {ENROLL}"}),
        ("b", body, own),
        ("b" * 65, body, own),
    ]
    out = []
    for cid, payload, headers in sent:
        r = await http.post(f"/api/v1/agents/{cid}/heartbeats", json=payload, headers=headers)
        data = r.json()
        if r.status_code == 200:
            data.pop("server_time")
        out.append((r.status_code, data.get("code", data)))
    return out


async def test_shortcut_and_route_give_the_same_answers(client: httpx.AsyncClient) -> None:
    assert await answers(client) == [
        (200, {"status": "online", "models_wanted": True, "next_in_s": 10.0}),
        (200, {"status": "online", "models_wanted": True, "next_in_s": 10.0}),
        (409, "stale_seq"),
        (422, "validation_error"),
        (401, "not_authenticated"),
        (403, "forbidden"),
        (403, "forbidden"),
        (422, "validation_error"),
    ]
    metrics = (await client.get("/metrics")).text
    assert 'route="/agents/{client_id}/heartbeats",status="200"} 2.0' in metrics


async def test_a_client_gone_before_its_body_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as http:
            r = await http.post(
                "/api/v1/agents/register",
                json={"client_id": "a", "hostname": "a"},
                headers={"Authorization": f"Bearer {ENROLL}"},
            )
            secret = r.json()["client_secret"]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/agents/a/heartbeats",
            "raw_path": b"/api/v1/agents/a/heartbeats",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"authorization", f"Bearer {secret}".encode()), (b"host", b"obt")],
            "client": ("127.0.0.1", 1),
            "server": ("obt", 80),
        }
        await app(scope, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
