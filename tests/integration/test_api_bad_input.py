"""Bad input from outside never gets a 500: a table of hostile and mistaken requests, each with
the answer a client can act on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from obt.api.app import create_app
from obt.settings import load_settings

ENROLL = "enroll-" + "e" * 32
ADMIN = "admin-" + "a" * 32


@dataclass
class Api:
    client: httpx.AsyncClient
    secret: str
    session: str
    other_secret: str


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = load_settings(
        data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN, max_body_bytes=4096
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as client:
            session = str(uuid.uuid4())
            secrets = []
            for cid in ("known", "other"):
                r = await client.post(
                    "/api/v1/agents/register",
                    json={"client_id": cid, "hostname": cid, "session_id": session},
                    headers={"Authorization": f"Bearer {ENROLL}"},
                )
                assert r.status_code == 201, r.text
                secrets.append(r.json()["client_secret"])
            # Read models follow the log: wait until both clients are in them.
            deadline = asyncio.get_running_loop().time() + 10
            while (await client.get("/api/v1/clients/other")).status_code != 200:
                assert asyncio.get_running_loop().time() < deadline, "projections did not follow"
                await asyncio.sleep(0.01)
            yield Api(client, secrets[0], session, secrets[1])


def heartbeat_body(session: str, seq: int = 1) -> dict[str, Any]:
    return {"seq": seq, "session_id": session, "ollama": {"reachable": True}}


# (method, path, body: dict, bytes or a callable of Api, credential kind, status, code)
CASES: list[tuple[str, str, Any, str, int, str]] = [
    ("POST", "/api/v1/agents/register", b"{not json", "enroll", 422, "validation_error"),
    # The heartbeat route parses its body itself: the same answers as everywhere else.
    ("POST", "/api/v1/agents/known/heartbeats", b"{not json", "secret", 422, "validation_error"),
    ("POST", "/api/v1/agents/known/heartbeats", b"", "secret", 422, "validation_error"),
    ("POST", "/api/v1/agents/known/heartbeats", b"[1, 2]", "secret", 422, "validation_error"),
    ("POST", "/api/v1/agents/known/heartbeats", b"{not json", "junk", 401, "not_authenticated"),
    ("POST", "/api/v1/agents/register", b"[1,2]", "enroll", 422, "validation_error"),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": 5, "hostname": []},
        "enroll",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "../etc", "hostname": "h"},
        "enroll",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "x" * 200, "hostname": "h"},
        "enroll",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "new1", "hostname": "h"},
        "none",
        401,
        "not_authenticated",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "new1", "hostname": "h"},
        "junk",
        401,
        "not_authenticated",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "known", "hostname": "h"},
        "other",
        403,
        "forbidden",
    ),
    (
        "POST",
        "/api/v1/agents/register",
        {"client_id": "b", "hostname": "h" * 5000},
        "enroll",
        413,
        "body_too_large",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(a.session),
        "none",
        401,
        "not_authenticated",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(a.session),
        "junk",
        401,
        "not_authenticated",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(a.session),
        "other",
        403,
        "forbidden",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(a.session),
        "enroll",
        403,
        "forbidden",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(a.session, -1),
        "secret",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        {"seq": "one", "session_id": 3, "ollama": None},
        "secret",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: {**heartbeat_body(a.session), "sent_at": "yesterday"},
        "secret",
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/agents/known/heartbeats",
        lambda a: heartbeat_body(str(uuid.uuid4())),
        "secret",
        409,
        "session_mismatch",
    ),
    (
        "POST",
        "/api/v1/agents/nobody/heartbeats",
        lambda a: heartbeat_body(a.session),
        "secret",
        403,
        "forbidden",
    ),
    (
        "POST",
        "/api/v1/agents/nobody/heartbeats",
        lambda a: heartbeat_body(a.session),
        "junk",
        404,
        "unknown_client",
    ),
    (
        "POST",
        "/api/v1/agents/..%2F..%2Fetc/heartbeats",
        lambda a: heartbeat_body(a.session),
        "secret",
        404,
        "not_found",
    ),
    (
        "POST",
        "/api/v1/agents/" + "x" * 200 + "/heartbeats",
        lambda a: heartbeat_body(a.session),
        "secret",
        422,
        "validation_error",
    ),
    ("POST", "/api/v1/agents/known/heartbeats", b"x" * 10_000, "secret", 413, "body_too_large"),
    (
        "PUT",
        "/api/v1/agents/known/models",
        {"models": [{"name": "a"}]},
        "secret",
        422,
        "validation_error",
    ),
    (
        "PUT",
        "/api/v1/agents/known/models",
        {"models": [{"name": "a", "digest": "d", "size": -5}]},
        "secret",
        422,
        "validation_error",
    ),
    (
        "PUT",
        "/api/v1/agents/known/models",
        {"models": [{"name": "a", "digest": "d"}, {"name": "a", "digest": "e"}]},
        "secret",
        422,
        "validation_error",
    ),
    ("PUT", "/api/v1/agents/known/models", {"models": "all"}, "secret", 422, "validation_error"),
    ("POST", "/api/v1/agents/known/deregister", None, "other", 403, "forbidden"),
    ("GET", "/api/v1/clients/nobody", None, "none", 404, "unknown_client"),
    ("GET", "/api/v1/clients/a%2Fb", None, "none", 404, "not_found"),
    ("GET", "/api/v1/clients/" + "y" * 200, None, "none", 422, "validation_error"),
    ("GET", "/api/v1/clients/nobody/uptime", None, "none", 404, "unknown_client"),
    ("GET", "/api/v1/clients/known/uptime?bucket=week", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/clients/known/uptime?from=soon", None, "none", 422, "validation_error"),
    (
        "GET",
        "/api/v1/clients/known/uptime?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        None,
        "none",
        422,
        "validation_error",
    ),
    (
        "GET",
        "/api/v1/clients/known/uptime?from=2000-01-01T00:00:00Z&bucket=hour",
        None,
        "none",
        422,
        "range_too_large",
    ),
    (
        "GET",
        "/api/v1/clients/known/uptime?from=0001-01-01T00:00:00Z&bucket=day",
        None,
        "none",
        422,
        "range_too_large",
    ),
    ("GET", "/api/v1/clients/known/timeline?limit=0", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/clients/known/timeline?limit=5000", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/timeline?before=-3", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?after=abc", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?after=99999999999999999999999", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?from=not-a-date", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?before=0", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?before=-5", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?before=soon", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?before=99999999999999999999999", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/events?after=3&before=9", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/clients/known/state?at=banana", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/clients/known/state", None, "none", 422, "validation_error"),
    ("GET", "/api/v1/fleet/state?at=2026-13-45T99:99:99Z", None, "none", 422, "validation_error"),
    ("DELETE", "/api/v1/clients/known", None, "none", 401, "not_authenticated"),
    ("DELETE", "/api/v1/clients/known", None, "secret", 403, "forbidden"),
    ("DELETE", "/api/v1/clients/nobody", None, "admin", 404, "unknown_client"),
    ("POST", "/api/v1/clients/known/revoke-secret", None, "enroll", 403, "forbidden"),
    ("GET", "/api/v1/nothing-here", None, "none", 404, "not_found"),
    ("PATCH", "/api/v1/clients", None, "none", 405, "method_not_allowed"),
]


def _auth(api: Api, kind: str) -> dict[str, str]:
    token = {
        "none": None,
        "secret": api.secret,
        "other": api.other_secret,
        "enroll": ENROLL,
        "admin": ADMIN,
        "junk": "not-a-real-token",
    }[kind]
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.mark.parametrize(("method", "path", "body", "auth", "status", "code"), CASES)
async def test_bad_input_gets_a_clear_answer(
    api: Api, method: str, path: str, body: Any, auth: str, status: int, code: str
) -> None:
    if callable(body):
        body = body(api)
    kwargs: dict[str, Any] = {"headers": _auth(api, auth)}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"]["content-type"] = "application/json"
    elif body is not None:
        kwargs["json"] = body
    response = await api.client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == code
    assert isinstance(payload["detail"], str)
    assert payload["detail"]


async def test_replayed_heartbeat_is_acknowledged_once(api: Api) -> None:
    headers = _auth(api, "secret")
    for _ in range(3):
        r = await api.client.post(
            "/api/v1/agents/known/heartbeats", json=heartbeat_body(api.session, 7), headers=headers
        )
        assert r.status_code == 200
    r = await api.client.post(
        "/api/v1/agents/known/heartbeats", json=heartbeat_body(api.session, 6), headers=headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "stale_seq"
    events = await api.client.get(
        "/api/v1/events", params={"stream": "client-known", "type": "HeartbeatReceived"}
    )
    assert [e["data"]["seq"] for e in events.json()["items"]] == [7]


async def test_a_flood_from_one_client_is_rate_limited_without_hurting_others(api: Api) -> None:
    statuses = []
    for seq in range(1, 80):
        r = await api.client.post(
            "/api/v1/agents/known/heartbeats",
            json=heartbeat_body(api.session, seq),
            headers=_auth(api, "secret"),
        )
        statuses.append(r.status_code)
    assert 429 in statuses
    limited = statuses.index(429)
    assert all(s == 200 for s in statuses[:limited])
    r = await api.client.post(
        "/api/v1/agents/other/heartbeats",
        json=heartbeat_body(api.session, 1),
        headers=_auth(api, "other"),
    )
    assert r.status_code == 200


async def test_events_never_show_credentials(api: Api) -> None:
    r = await api.client.get("/api/v1/events", params={"type": "ClientRegistered"})
    assert r.status_code == 200
    assert r.json()["items"]
    assert all("secret_sha256" not in e["data"] for e in r.json()["items"])
    assert api.secret not in r.text


async def test_dashboard_has_security_headers(api: Api) -> None:
    r = await api.client.get("/")
    assert r.status_code == 200
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    r = await api.client.get("/clients/known")  # a dashboard route: the single-page app
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


async def test_credentials_says_what_a_token_is(api: Api) -> None:
    r = await api.client.get("/api/v1/agents/credentials", headers=_auth(api, "enroll"))
    assert r.json() == {"kind": "enrollment_token", "client_id": None}
    r = await api.client.get("/api/v1/agents/credentials", headers=_auth(api, "secret"))
    assert r.json() == {"kind": "client_secret", "client_id": "known"}
    for kind in ("junk", "none"):
        r = await api.client.get("/api/v1/agents/credentials", headers=_auth(api, kind))
        assert r.status_code == 401
        assert r.json()["code"] == "not_authenticated"
