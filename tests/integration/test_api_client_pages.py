"""GET /clients paged, sorted and filtered on the server, the fleet summary, and what the HTTP
edge does for the dashboard: gzip for JSON and assets, cache headers for the build."""

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
HOSTS = 23


SECRETS: dict[str, str] = {}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    build = tmp_path / "build"
    (build / "_app" / "immutable" / "chunks").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><title>OBT</title>" + " " * 4000)
    (build / "_app" / "immutable" / "chunks" / "app.abc123.js").write_text(
        "export const x = 1;\n" * 500
    )
    (build / "_app" / "version.json").write_text('{"version":"1"}')
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, dashboard_dir=build)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as client:
            for i in range(HOSTS):
                r = await client.post(
                    "/api/v1/agents/register",
                    json={
                        "client_id": f"c{i:02d}",
                        "hostname": f"host-{i:02d}",
                        "agent_version": "0.2.0" if i % 3 == 0 else "0.1.9",
                        "labels": {"rack": str(i % 4)},
                        "ollama": {"reachable": i % 5 != 0},
                        "session_id": str(uuid.uuid4()),
                    },
                    headers={"Authorization": f"Bearer {ENROLL}"},
                )
                assert r.status_code == 201, r.text
                SECRETS[f"c{i:02d}"] = r.json()["client_secret"]
            deadline = asyncio.get_running_loop().time() + 10
            while len((await client.get("/api/v1/clients")).json()["items"]) < HOSTS:
                assert asyncio.get_running_loop().time() < deadline, "projections did not follow"
                await asyncio.sleep(0.01)
            yield client


async def pages(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await api.get(
            "/api/v1/clients", params={**params, "cursor": cursor} if cursor else params
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= params["limit"]
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_a_plain_list_answers_as_before(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/v1/clients")).json()
    assert list(body) == ["items"]
    assert [c["hostname"] for c in body["items"]] == [f"host-{i:02d}" for i in range(HOSTS)]


async def test_pages_walk_the_fleet_once_in_order(api: httpx.AsyncClient) -> None:
    everything = (await api.get("/api/v1/clients")).json()["items"]
    walked = await pages(api, limit=5)
    assert [c["client_id"] for c in walked] == [c["client_id"] for c in everything]
    desc = await pages(api, limit=4, sort="hostname", order="desc")
    assert [c["client_id"] for c in desc] == [c["client_id"] for c in reversed(everything)]
    by_status = await pages(api, limit=6, sort="status")
    statuses = [c["status"] for c in by_status]
    assert statuses == ["degraded"] * statuses.count("degraded") + ["online"] * statuses.count(
        "online"
    )
    first = (await api.get("/api/v1/clients", params={"limit": 5, "sort": "status"})).json()
    assert first["total"] == HOSTS
    assert first["matched"] == HOSTS
    assert first["counts"]["degraded"] == 5
    assert first["counts"]["online"] == HOSTS - 5
    assert set(first["counts"]) == {
        "online",
        "degraded",
        "offline",
        "stopped",
        "unknown",
        "decommissioned",
    }


async def test_filters(api: httpx.AsyncClient) -> None:
    async def ids(**params: Any) -> tuple[list[str], int]:
        r = await api.get("/api/v1/clients", params={"sort": "client_id", **params})
        assert r.status_code == 200, r.text
        body = r.json()
        return [c["client_id"] for c in body["items"]], body["matched"]

    assert await ids(status="degraded") == (["c00", "c05", "c10", "c15", "c20"], 5)
    assert (await ids(status="degraded,offline"))[1] == 5
    assert (await ids(status=["degraded", "online"]))[1] == HOSTS
    assert await ids(label="rack=1") == (["c01", "c05", "c09", "c13", "c17", "c21"], 6)
    assert await ids(label=["rack=1", "rack=2"]) == ([], 0)
    assert await ids(label="rack=1", status="degraded") == (["c05"], 1)
    assert await ids(q="HOST-1") == ([f"c{i}" for i in range(10, 20)], 10)
    assert await ids(q="0.2.0 host-1") == (["c12", "c15", "c18"], 3)
    assert await ids(q="c2", limit=2) == (["c20", "c21"], 3)
    summary = (await api.get("/api/v1/fleet/summary")).json()
    assert summary["total"] == HOSTS
    assert summary["counts"]["degraded"] == 5
    assert summary["labels"] == ["rack=0", "rack=1", "rack=2", "rack=3"]


@pytest.mark.parametrize(
    ("params", "code", "detail"),
    [
        ({"limit": 0}, "validation_error", "limit"),
        ({"limit": 1001}, "validation_error", "limit"),
        ({"limit": "ten"}, "validation_error", "limit"),
        ({"sort": "colour"}, "validation_error", "sort"),
        ({"order": "up"}, "validation_error", "order"),
        ({"status": "asleep"}, "validation_error", "asleep"),
        ({"status": "online,asleep"}, "validation_error", "asleep"),
        ({"label": "rack"}, "validation_error", "key=value"),
        ({"label": "=1"}, "validation_error", "key=value"),
        ({"q": "x" * 201}, "validation_error", "q"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor", "cursor"),
        ({"cursor": "x" * 2001}, "validation_error", "cursor"),
    ],
)
async def test_bad_parameters_are_422(
    api: httpx.AsyncClient, params: dict[str, Any], code: str, detail: str
) -> None:
    r = await api.get("/api/v1/clients", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert detail in str(r.json()["detail"]) + str(r.json().get("errors", ""))


async def test_a_cursor_of_another_sort_is_refused(api: httpx.AsyncClient) -> None:
    first = (await api.get("/api/v1/clients", params={"limit": 2})).json()
    r = await api.get(
        "/api/v1/clients", params={"limit": 2, "sort": "status", "cursor": first["next_cursor"]}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_cursor"
    assert "another sort" in r.json()["detail"]


async def test_json_and_assets_are_gzipped_and_hashed_assets_cached_for_ever(
    api: httpx.AsyncClient,
) -> None:
    gz = {"Accept-Encoding": "gzip"}
    r = await api.get("/api/v1/clients", headers=gz)
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert len(r.json()["items"]) == HOSTS  # httpx inflated it
    plain = await api.get("/api/v1/clients", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers

    asset = "/_app/immutable/chunks/app.abc123.js"
    r = await api.get(asset, headers=gz)
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in r.headers["content-type"]
    assert r.text == "export const x = 1;\n" * 500
    assert int(r.headers["content-length"]) < 500  # compressed, not the 10 KB file
    again = await api.get(asset, headers=gz)
    assert again.content == r.content
    raw = await api.get(asset, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert raw.text == r.text

    for path in ("/", "/clients/c01", "/_app/version.json"):
        r = await api.get(path, headers=gz)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-cache", path
    index = await api.get("/", headers=gz)
    assert index.headers["content-encoding"] == "gzip"


async def report_models(api: httpx.AsyncClient, cid: str, models: dict[str, str]) -> None:
    r = await api.put(
        f"/api/v1/agents/{cid}/models",
        json={
            "models": [
                {"name": n, "model": n, "size": 100, "digest": d, "details": {}}
                for n, d in models.items()
            ],
            "loaded": [{"name": n, "model": n, "size": 100, "size_vram": 50} for n in models][:1],
        },
        headers={"Authorization": f"Bearer {SECRETS[cid]}"},
    )
    assert r.status_code == 200, r.text


async def test_models_by_a_page_of_hosts(api: httpx.AsyncClient) -> None:
    for i in range(0, HOSTS, 2):  # every other host holds models; host-02 holds a drifted one
        await report_models(
            api, f"c{i:02d}", {"llama": "sha256:b" if i == 2 else "sha256:a", "qwen": "sha256:q"}
        )
    holders = [f"c{i:02d}" for i in range(0, HOSTS, 2)]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        full = (await api.get("/api/v1/models")).json()["items"]
        if full and len(full[0]["hosts"]) == len(holders):
            break
        assert asyncio.get_running_loop().time() < deadline, "projections did not follow"
        await asyncio.sleep(0.01)
    assert [m["name"] for m in full] == ["llama", "qwen"]  # the plain answer: every host

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"hosts_limit": 5}
        if cursor:
            params["hosts_cursor"] = cursor
        r = await api.get("/api/v1/models", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        page_hosts = [h["client_id"] for h in body["hosts"]]
        assert len(page_hosts) <= 5
        assert body["hosts_total"] == len(holders)
        llama, qwen = body["items"]
        assert llama["installed_count"] == len(holders)
        assert llama["loaded_count"] == len(holders)  # the first model is the loaded one
        assert llama["digest_counts"] == {"sha256:a": len(holders) - 1, "sha256:b": 1}
        assert llama["drift"] is True
        assert qwen["drift"] is False
        assert [h["client_id"] for h in llama["hosts"]] == page_hosts
        assert {h["hostname"] for h in llama["hosts"]} == {h["hostname"] for h in body["hosts"]}
        seen += page_hosts
        cursor = body["next_hosts_cursor"]
        if cursor is None:
            break
    assert seen == holders  # by hostname, each once

    bad = await api.get("/api/v1/models", params={"hosts_limit": 5, "hosts_cursor": "nope"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"
    for params in ({"hosts_limit": 0}, {"hosts_limit": 1001}):
        r = await api.get("/api/v1/models", params=params)
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"
