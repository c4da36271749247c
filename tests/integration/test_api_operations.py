"""The fleet operations API in process (ASGI): admin only, targets resolved by id or label,
refusals with stable codes, list/show from the read model, cancel."""

from __future__ import annotations

import asyncio
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
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as client:
            for cid, rack in (("a", "1"), ("b", "1"), ("c", "2")):
                r = await client.post(
                    "/api/v1/agents/register",
                    json={
                        "client_id": cid,
                        "hostname": cid,
                        "session_id": str(uuid.uuid4()),
                        "labels": {"rack": rack},
                    },
                    headers={"Authorization": f"Bearer {ENROLL}"},
                )
                r.raise_for_status()
            await until_listed(client, 3)
            yield client


POLL_S = 0.02
DEADLINE_S = 10.0


async def until_listed(http: httpx.AsyncClient, count: int) -> None:
    """Wait (bounded) until the clients read model lists `count` clients."""
    async with asyncio.timeout(DEADLINE_S):
        while len((await http.get("/api/v1/clients")).json()["items"]) < count:
            await asyncio.sleep(POLL_S)


async def shown(http: httpx.AsyncClient, operation_id: str, **want: Any) -> dict[str, Any]:
    """The operation's document once the read model shows `want` (bounded wait)."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            r = await http.get(f"/api/v1/operations/{operation_id}", headers=AS_ADMIN)
            doc: dict[str, Any] = r.json()
            if r.status_code == 200 and all(doc.get(k) == v for k, v in want.items()):
                return doc
            await asyncio.sleep(POLL_S)


def pull(**changes: Any) -> dict[str, Any]:
    return {"action": "pull", "model": "llama3.2:3b", "targets": {"client_ids": ["a"]}, **changes}


async def test_a_pull_by_label_is_accepted_listed_shown_and_cancelled(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post(
        "/api/v1/operations",
        json=pull(targets={"labels": {"rack": "1"}}, max_parallel=2),
        headers={**AS_ADMIN, "User-Agent": "ops-test"},
    )
    assert r.status_code == 202
    body = r.json()
    assert body["targets"] == ["a", "b"]
    op = body["operation_id"]
    doc = await shown(http, op, action="pull")
    assert doc["selector"] == {"labels": {"rack": "1"}}
    assert doc["counts"]["queued"] == 2
    listed = (await http.get("/api/v1/operations", headers=AS_ADMIN)).json()["items"]
    assert [d["id"] for d in listed] == [op]
    r = await http.post(f"/api/v1/operations/{op}/cancel", headers=AS_ADMIN)
    assert r.status_code == 200
    assert r.json()["agents_told"] == []  # none was running
    doc = await shown(http, op, counts={**doc["counts"], "queued": 0, "cancelled": 2})
    assert doc["finished_at"] is not None
    events = (await http.get("/api/v1/events", params={"stream": f"operation-{op}"})).json()
    requested = events["items"][0]
    assert requested["metadata"]["user_agent"] == "ops-test"
    assert requested["metadata"]["source"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (pull(model="https://evil.example/x"), "invalid_model_name"),
        (pull(action="delete", targets={"labels": {"rack": "1"}}), "explicit_targets_required"),
        (pull(targets={"client_ids": ["a", "nobody"]}), "unknown_targets"),
        (pull(targets={"labels": {"rack": "9"}}), "no_targets"),
        (pull(targets={}), "validation_error"),
        (pull(max_parallel=0), "validation_error"),
    ],
)
async def test_refusals_have_stable_codes(
    http: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    r = await http.post("/api/v1/operations", json=body, headers=AS_ADMIN)
    assert (r.status_code, r.json()["code"]) == (422, code)


async def test_only_the_admin_token_acts(http: httpx.AsyncClient) -> None:
    assert (await http.post("/api/v1/operations", json=pull())).status_code == 401
    r = await http.post(
        "/api/v1/operations", json=pull(), headers={"Authorization": f"Bearer {ENROLL}"}
    )
    assert r.status_code == 403
    assert (await http.get("/api/v1/operations")).status_code == 401
    missing = await http.get("/api/v1/operations/nope", headers=AS_ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_operation")
    cancel = await http.post("/api/v1/operations/nope/cancel", headers=AS_ADMIN)
    assert (cancel.status_code, cancel.json()["code"]) == (404, "unknown_operation")
