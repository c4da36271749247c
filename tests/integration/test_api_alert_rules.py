"""Alert rules over HTTP: admin only, validated with stable codes, recorded as events, listed
from their read model with webhook secrets masked (in the audit log too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from obt.api.app import create_app
from obt.settings import load_settings

ENROLL = "enroll-" + "e" * 32
ADMIN = "admin-" + "a" * 32
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
RULES = "/api/v1/alerts/rules"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ADMIN)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as c:
            yield c


def rule(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "rack 1 down",
        "scope": {"labels": {"rack": "1"}},
        "condition": {"kind": "status", "statuses": ["offline", "stopped"], "for_s": 120},
        "notify": {
            "urls": ["json://127.0.0.1:9/hook"],
            "webhooks": [{"url": "http://127.0.0.1:9/obt", "secret": "s3cret"}],
        },
    }
    body.update(overrides)
    return body


async def until(check: Callable[[], Any], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + 10
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)
    return result


async def test_rule_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.post(RULES, json=rule(), headers=AS_ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    rule_id = body["id"]
    assert body["send_resolved"] is True and body["remind_every_s"] is None
    assert body["notify"]["webhooks"] == [{"url": "http://127.0.0.1:9/obt", "has_secret": True}]

    async def listed() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await client.get(RULES, headers=AS_ADMIN)).json()["items"]
        return items

    items = await until(listed, "the rule never reached its read model")
    assert [r["id"] for r in items] == [rule_id]
    assert "s3cret" not in (await client.get(RULES, headers=AS_ADMIN)).text

    # A PUT without the webhook's secret keeps the stored one (the API never shows it).
    changed = rule(
        name="rack 1 still down",
        remind_every_s=3600,
        notify={"webhooks": [{"url": "http://127.0.0.1:9/obt"}]},
    )
    put = await client.put(f"{RULES}/{rule_id}", json=changed, headers=AS_ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "rack 1 still down"

    async def renamed() -> bool:
        r = await client.get(f"{RULES}/{rule_id}", headers=AS_ADMIN)
        return bool(r.json()["name"] == "rack 1 still down")

    await until(renamed, "the change never reached the read model")

    events = (await client.get("/api/v1/events", params={"stream": f"alert-rule-{rule_id}"})).json()
    assert [e["type"] for e in events["items"]] == ["AlertRuleCreated", "AlertRuleChanged"]
    assert "s3cret" not in str(events) and "127.0.0.1:9/hook" not in str(events)
    assert events["items"][1]["data"]["notify"]["webhooks"][0]["secret"] == "(redacted)"

    assert (await client.delete(f"{RULES}/{rule_id}", headers=AS_ADMIN)).status_code == 204
    await until(lambda: _gone(client, rule_id), "the deleted rule stayed in the read model")
    again = await client.delete(f"{RULES}/{rule_id}", headers=AS_ADMIN)
    assert (again.status_code, again.json()["code"]) == (404, "unknown_alert_rule")


async def _gone(client: httpx.AsyncClient, rule_id: str) -> bool:
    return (await client.get(f"{RULES}/{rule_id}", headers=AS_ADMIN)).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", RULES, {}, 401, "not_authenticated"),
        ("POST", RULES, {"Authorization": f"Bearer {ENROLL}"}, 403, "forbidden"),
        ("GET", f"{RULES}/nope", AS_ADMIN, 404, "unknown_alert_rule"),
        ("PUT", f"{RULES}/nope", AS_ADMIN, 404, "unknown_alert_rule"),
        ("DELETE", f"{RULES}/nope", AS_ADMIN, 404, "unknown_alert_rule"),
        ("GET", f"{RULES}/bad%20id", AS_ADMIN, 422, "validation_error"),
    ],
)
async def test_credentials_and_unknown_rules(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    r = await client.request(method, path, json=rule(), headers=headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (rule(condition={"kind": "status", "statuses": ["unknown"]}), "validation_error", ""),
        (rule(condition={"kind": "cpu"}), "validation_error", ""),
        (rule(condition={"kind": "model_missing"}), "validation_error", "model"),
        (rule(notify={"urls": ["no scheme"]}), "invalid_alert_rule", "Apprise URL"),
        (
            rule(notify={"webhooks": [{"url": "https://example.test/x"}]}),
            "invalid_alert_rule",
            "secret",
        ),
        (
            rule(notify={"webhooks": [{"url": "http://[::1", "secret": "s"}]}),
            "invalid_alert_rule",
            "",
        ),
        (rule(remind_every_s=1), "invalid_alert_rule", "remind_every_s"),
        (rule(remind_every_s=-1), "validation_error", ""),
        (rule(name=""), "validation_error", "name"),
        (rule(scope={"client_ids": ["bad id!"]}), "validation_error", "client_ids"),
        ({"name": "no condition"}, "validation_error", "condition"),
    ],
)
async def test_invalid_rules_get_422_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, Any], code: str, says: str
) -> None:
    r = await client.post(RULES, json=body, headers=AS_ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert says in r.json()["detail"]


async def test_alerts_fire_and_resolve_through_the_api(client: httpx.AsyncClient) -> None:
    stopped = rule(
        scope={"client_ids": ["h1"]},
        condition={"kind": "status", "statuses": ["stopped"]},
    )
    assert (await client.post(RULES, json=stopped, headers=AS_ADMIN)).status_code == 201
    session = "0f8fad5b-d9cb-469f-a165-70867728950e"
    enroll = {"Authorization": f"Bearer {ENROLL}"}
    reg = await client.post(
        "/api/v1/agents/register",
        json={"client_id": "h1", "hostname": "h1", "session_id": session},
        headers=enroll,
    )
    secret = {"Authorization": f"Bearer {reg.json()['client_secret']}"}
    assert (await client.post("/api/v1/agents/h1/deregister", headers=secret)).status_code == 204

    async def firing() -> list[dict[str, Any]]:
        r = await client.get("/api/v1/alerts", params={"state": "firing"}, headers=AS_ADMIN)
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    (alert,) = await until(firing, "the stopped client never set off its alert")
    assert alert["client_id"] == "h1" and alert["status"] == "stopped"
    assert alert["dedupe_key"].endswith("/h1/1")

    again = await client.post(
        "/api/v1/agents/register",
        json={"client_id": "h1", "hostname": "h1", "session_id": session},
        headers=secret,
    )
    assert again.status_code == 200, again.text

    async def resolved() -> list[dict[str, Any]]:
        r = await client.get("/api/v1/alerts", headers=AS_ADMIN)
        body = r.json()
        done = [a for a in body["items"] if a["state"] == "resolved"]
        return done if body["firing"] == 0 else []

    (done,) = await until(resolved, "the alert did not resolve when the client came back")
    assert done["dedupe_key"] == alert["dedupe_key"] and done["resolve_reason"] == "cleared"
    jobs = (await client.get("/api/v1/health")).json()["jobs"]
    counts = {j["name"]: j["done"] for j in jobs["jobs"]}
    assert jobs["running"] and counts["alert-evaluation"] == 2  # fired, then resolved
    bad = await client.get("/api/v1/alerts", params={"state": "odd"}, headers=AS_ADMIN)
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    assert (await client.get("/api/v1/alerts")).status_code == 401
