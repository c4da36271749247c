"""The fake Ollama is a test fixture that other processes drive, so its API is tested too."""

import aiohttp

from tests.fakes.ollama import FakeOllama


async def test_show_answers_details_and_404_for_unknown(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    url = fake_ollama.base_url + "/api/show"
    async with session.post(url, json={"model": "llama3.2:3b"}) as response:
        assert response.status == 200
        body = await response.json()
    assert {"details", "model_info", "capabilities"} <= set(body)
    async with session.post(url, json={"model": "nope"}) as response:
        assert response.status == 404
        assert "not found" in (await response.json())["error"]


async def test_control_api_changes_what_ollama_reports(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    base = fake_ollama.base_url
    async with session.post(f"{base}/_fake/models", json={"name": "library/phi4:14b"}) as r:
        assert r.status == 200
    async with session.post(f"{base}/_fake/load", json={"name": "library/phi4:14b"}) as r:
        assert r.status == 200
    async with session.get(f"{base}/api/ps") as r:
        assert [m["name"] for m in (await r.json())["models"]] == ["library/phi4:14b"]
    async with session.delete(f"{base}/_fake/models/library/phi4:14b") as r:
        assert r.status == 200
    async with session.get(f"{base}/api/tags") as r:
        names = [m["name"] for m in (await r.json())["models"]]
    assert "library/phi4:14b" not in names
    async with session.post(f"{base}/_fake/mode", json={"mode": "error"}) as r:
        assert r.status == 200
    async with session.get(f"{base}/api/version") as r:
        assert r.status == 500
    async with session.post(f"{base}/_fake/mode", json={"mode": "sideways"}) as r:
        assert r.status == 400
    async with session.post(f"{base}/_fake/reset") as r:
        assert (await r.json())["mode"] == "ok"
    async with session.post(f"{base}/_fake/load", json={"name": "missing"}) as r:
        assert r.status == 404


async def test_control_api_adds_pullable_models_and_shows_pulls(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    base = fake_ollama.base_url
    body = {"name": "team/tiny:1", "size": 20_000}
    async with session.post(f"{base}/_fake/library", json=body) as r:
        assert r.status == 200
    async with session.post(f"{base}/api/pull", json={"model": "team/tiny:1"}) as r:
        lines = [line async for line in r.content]
    assert lines[-1].strip() == b'{"status": "success"}'
    async with session.get(f"{base}/_fake/state") as r:
        state = await r.json()
    assert state["pulls"] == ["team/tiny:1"]
    assert sum(state["downloaded"].values()) == 20_000
    assert "team/tiny:1" in [m["name"] for m in state["models"]]
    async with session.post(f"{base}/_fake/library", json={"name": "x", "colour": "red"}) as r:
        assert r.status == 400
    async with session.post(f"{base}/_fake/pull", json={"pace": "fast"}) as r:
        assert r.status == 400
