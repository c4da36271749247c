"""Fleet operations on one host: the executor against the fake Ollama's /api/pull and
/api/delete (real HTTP, Ollama's documented shapes), and Ollama's model-name rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from agent.errors import OllamaRefused, OllamaUnavailable
from agent.model_names import is_valid_model_name
from agent.ollama import OllamaClient
from agent.operations import OperationRunner
from tests.fakes.ollama import FakeOllama, PullPlan


class Outbox:
    """What the executor sends, in order, with the model reports in between."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.kept: list[bool] = []
        self.changed = asyncio.Condition()

    async def send(self, frame: dict[str, Any], keep: bool) -> bool:
        self.sent.append(frame)
        self.kept.append(keep)
        async with self.changed:
            self.changed.notify_all()
        return True

    async def report_models(self) -> bool:
        self.sent.append({"type": "model_report"})
        return True

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    def results(self, operation_id: str) -> list[dict[str, Any]]:
        return [
            f["body"]
            for f in self.sent
            if f["type"] == "result" and f["operation_id"] == operation_id
        ]

    def progress(self) -> list[dict[str, Any]]:
        return [f["body"] for f in self.sent if f["type"] == "progress"]


class SteppingClock:
    """A monotonic clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def runner(
    ollama: FakeOllama,
    session: aiohttp.ClientSession,
    outbox: Outbox,
    read_only: bool = False,
    monotonic: Callable[[], float] | None = None,
) -> OperationRunner:
    return OperationRunner(
        ollama=OllamaClient(ollama.base_url, session),
        send=outbox.send,
        report_models=outbox.report_models,
        read_only=read_only,
        monotonic=monotonic or SteppingClock(0.0),
    )


def command(operation_id: str, model: str, action: str = "pull") -> dict[str, Any]:
    return {"type": "command", "operation_id": operation_id, "action": action, "model": model}


# -- the fake Ollama's model management ---------------------------------------------------


async def pull_lines(
    session: aiohttp.ClientSession, fake: FakeOllama, body: dict[str, Any]
) -> list[dict[str, Any]]:
    async with session.post(fake.base_url + "/api/pull", json=body) as response:
        assert response.status == 200
        return [json.loads(line) async for line in response.content]


async def test_pull_streams_manifest_layers_verification_and_success(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    lines = await pull_lines(session, fake_ollama, {"model": "phi4:14b"})
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-4:] == [
        "verifying sha256 digest",
        "writing manifest",
        "removing any unused layers",
        "success",
    ]
    layers = [line for line in lines if "digest" in line]
    weights = [line for line in layers if line["digest"] == layers[0]["digest"]]
    assert weights[0]["status"] == f"pulling {layers[0]['digest'][7:19]}"
    assert [w["completed"] for w in weights] == sorted(w["completed"] for w in weights)
    assert weights[-1]["completed"] == weights[-1]["total"]
    assert sum({line["digest"]: line["total"] for line in layers}.values()) == 9_053_116_391
    assert "phi4:14b" in fake_ollama.models


async def test_pull_failures_come_in_band_in_a_200_stream(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    lines = await pull_lines(session, fake_ollama, {"model": "no-such-model"})
    assert lines == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    fake_ollama.pull_plan.fail["mistral:latest"] = "max retries exceeded: EOF"
    lines = await pull_lines(session, fake_ollama, {"model": "mistral"})  # :latest implied
    assert lines[-1] == {"error": "max retries exceeded: EOF"}
    assert "mistral:latest" not in fake_ollama.models


async def test_a_cut_pull_resumes_from_what_was_downloaded(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    fake_ollama.pull_plan.cut = 1
    client = OllamaClient(fake_ollama.base_url, session)
    with pytest.raises(OllamaUnavailable, match="broke off"):
        async for _ in client.pull("phi4:14b"):
            pass
    kept = max(fake_ollama.downloaded.values())
    assert kept > 0
    steps = [step async for step in client.pull("phi4:14b")]
    first_layer = next(s for s in steps if s.digest is not None)
    assert first_layer.completed == kept
    assert steps[-1].status == "success"


async def test_pull_without_streaming_and_delete(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    base = fake_ollama.base_url
    body = {"model": "llama3.2:1b", "stream": False}
    async with session.post(base + "/api/pull", json=body) as response:
        assert (response.status, await response.json()) == (200, {"status": "success"})
    async with session.post(base + "/api/pull", json={"model": "nope", "stream": False}) as r:
        assert r.status == 500
        assert "file does not exist" in (await r.json())["error"]
    async with session.post(base + "/api/pull", json={"model": "bad name!"}) as r:
        assert (r.status, await r.json()) == (400, {"error": "invalid model name"})
    async with session.delete(base + "/api/delete", json={"model": "llama3.2:1b"}) as r:
        assert r.status == 200
    async with session.delete(base + "/api/delete", json={"model": "llama3.2:1b"}) as r:
        assert (r.status, await r.json()) == (404, {"error": "model 'llama3.2:1b' not found"})
    async with session.post(f"{base}/_fake/pull", json={"hold": True, "fail": {"x:1": "e"}}) as r:
        assert r.status == 200
    assert fake_ollama.pull_plan.hold
    assert fake_ollama.pull_plan.fail == {"x:1": "e"}


async def test_the_client_reports_in_band_and_http_errors(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    client = OllamaClient(fake_ollama.base_url, session)
    with pytest.raises(OllamaRefused, match="file does not exist"):
        async for _ in client.pull("no-such-model"):
            pass
    with pytest.raises(OllamaRefused, match="not found"):
        await client.delete("phi4:14b")


# -- the executor -------------------------------------------------------------------------


async def test_pull_sends_throttled_progress_a_model_report_then_success(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    outbox = Outbox()
    # Each reading of the clock is 0.3 s later: progress may go out every fourth line.
    executor = runner(fake_ollama, session, outbox, monotonic=SteppingClock(0.3))
    fake_ollama.set_pull_plan(PullPlan(steps=40))
    executor.handle(command("op-1", "phi4:14b"))
    await outbox.wait_for(lambda: bool(outbox.results("op-1")))
    assert outbox.results("op-1") == [{"status": "succeeded", "reason": None}]
    assert [f["type"] for f in outbox.sent[-2:]] == ["model_report", "result"]
    progress = outbox.progress()
    assert set(progress[0]) == {"status", "digest", "completed", "total"}
    assert progress[0]["status"] == "pulling manifest"
    assert progress[-1]["status"] == "success"
    weights = [p for p in progress if p["digest"] == progress[1]["digest"]]
    # 41 lines for the weights layer; at most one frame a second (4 lines) plus its phase start.
    assert 5 <= len(weights) <= 12
    assert outbox.kept[-1] is True  # results wait for a channel; progress does not
    assert not any(outbox.kept[:-1])
    assert "phi4:14b" in fake_ollama.models


async def test_an_in_band_error_fails_the_operation_with_ollamas_reason(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    outbox = Outbox()
    fake_ollama.pull_plan.fail["phi4:14b"] = "max retries exceeded: unexpected EOF"
    runner(fake_ollama, session, outbox).handle(command("op-1", "phi4:14b"))
    await outbox.wait_for(lambda: bool(outbox.results("op-1")))
    assert outbox.results("op-1") == [
        {"status": "failed", "reason": "max retries exceeded: unexpected EOF"}
    ]
    assert {"type": "model_report"} not in outbox.sent


async def test_one_operation_at_a_time_and_cancel_aborts_the_pull(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    outbox = Outbox()
    executor = runner(fake_ollama, session, outbox)
    fake_ollama.set_pull_plan(PullPlan(hold=True))
    executor.handle(command("op-1", "phi4:14b"))
    await outbox.wait_for(lambda: len(outbox.progress()) >= 2)  # into the first layer
    executor.handle(command("op-2", "mistral:latest"))
    executor.handle(command("op-1", "phi4:14b"))  # sent again: it runs, nothing new starts
    await outbox.wait_for(lambda: bool(outbox.results("op-2")))
    assert outbox.results("op-2") == [{"status": "failed", "reason": "busy"}]
    executor.handle({"type": "cancel", "operation_id": "op-1"})
    await outbox.wait_for(lambda: bool(outbox.results("op-1")))
    assert outbox.results("op-1") == [{"status": "failed", "reason": "cancelled"}]
    assert executor.current is None
    async with asyncio.timeout(5):
        while fake_ollama.pulls_aborted < 1:  # Ollama saw the request go away
            await asyncio.sleep(0.01)
    assert fake_ollama.pulls == ["phi4:14b"]
    assert "phi4:14b" not in fake_ollama.models


async def test_a_read_only_agent_refuses_every_command(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    outbox = Outbox()
    executor = runner(fake_ollama, session, outbox, read_only=True)
    executor.handle(command("op-1", "phi4:14b"))
    executor.handle(command("op-2", "qwen2.5:7b", action="delete"))
    await outbox.wait_for(lambda: len(outbox.sent) == 2)
    refused = {"status": "failed", "reason": "read-only agent"}
    assert outbox.results("op-1") == outbox.results("op-2") == [refused]
    assert fake_ollama.pulls == []
    assert "qwen2.5:7b" in fake_ollama.models


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (command("op-1", "../../etc/passwd"), "invalid model name '../../etc/passwd'"),
        (command("op-1", "phi4:14b", action="push"), "unknown action 'push'"),
        ({"type": "command", "operation_id": "op-1", "action": "pull"}, "invalid model name"),
    ],
)
async def test_bad_commands_fail_without_reaching_ollama(
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    frame: dict[str, Any],
    reason: str,
) -> None:
    outbox = Outbox()
    runner(fake_ollama, session, outbox).handle(frame)
    await outbox.wait_for(lambda: bool(outbox.results("op-1")))
    [result] = outbox.results("op-1")
    assert result["status"] == "failed"
    assert result["reason"].startswith(reason)
    assert not any(r.startswith("POST /api/pull") for r in fake_ollama.requests)


async def test_delete_removes_the_model_and_reports_an_unknown_one(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    outbox = Outbox()
    executor = runner(fake_ollama, session, outbox)
    executor.handle(command("op-1", "qwen2.5:7b", action="delete"))
    await outbox.wait_for(lambda: bool(outbox.results("op-1")))
    assert outbox.results("op-1") == [{"status": "succeeded", "reason": None}]
    assert [f["type"] for f in outbox.sent] == ["model_report", "result"]
    assert "qwen2.5:7b" not in fake_ollama.models
    executor.handle(command("op-2", "qwen2.5:7b", action="delete"))
    await outbox.wait_for(lambda: bool(outbox.results("op-2")))
    assert outbox.results("op-2") == [
        {"status": "failed", "reason": "model 'qwen2.5:7b' not found"}
    ]


@pytest.mark.parametrize(
    "name",
    [
        "llama3.2",
        "llama3.2:3b",
        "library/phi4:14b",
        "registry.ollama.ai/library/llama3:latest",
        "localhost:5000/team/model_x:q4_K_M",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "_private",
    ],
)
def test_valid_model_names(name: str) -> None:
    assert is_valid_model_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-leading-dash",
        "name with space",
        "../../etc/passwd",
        "a/b/c/d",
        "name.space/model",
        "model:tag:again",
        "model@sha256:abc",
        "https://host/model",
        "model:" + "t" * 81,
        "m" * 81,
        "modèle",
        None,
        42,
    ],
)
def test_invalid_model_names(name: object) -> None:
    assert not is_valid_model_name(name)
