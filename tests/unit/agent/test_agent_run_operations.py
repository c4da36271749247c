"""`obt-agent run` as wired by the CLI: commands arriving on the channel reach the executor,
Ollama pulls or deletes, a model report follows, then the result; read-only refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli import run
from agent.settings import AgentSettings, load_settings
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama
from tests.unit.agent.test_agent_cli import LINUX

CLIENT_ID = "gpu-01"


def settings_for(
    obt: FakeObtServer, ollama: FakeOllama, state: Path, **extra: Any
) -> AgentSettings:
    return load_settings(
        env_file=None,
        server_url=obt.base_url,
        ollama_host=ollama.base_url,
        state_dir=state,
        client_id=CLIENT_ID,
    ).model_copy(update={"enrollment_token": obt.enrollment_token, **extra})


async def running(settings: AgentSettings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, host=LINUX))
    try:
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


def results(obt: FakeObtServer, operation_id: str) -> list[dict[str, Any]]:
    return [
        f["body"]
        for f in obt.frames
        if f.get("type") == "result" and f["operation_id"] == operation_id
    ]


async def test_a_pull_command_is_carried_out_and_reported(
    fake_obt: FakeObtServer, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    async for _ in running(settings_for(fake_obt, fake_ollama, tmp_path / "state")):
        await fake_obt.wait_until(lambda: CLIENT_ID in fake_obt.channels)
        command = {"type": "command", "operation_id": "op-1", "action": "pull", "model": "phi4:14b"}
        await fake_obt.send_to_agent(CLIENT_ID, command)
        await fake_obt.wait_until(lambda: bool(results(fake_obt, "op-1")), timeout=15)
    assert results(fake_obt, "op-1") == [{"status": "succeeded", "reason": None}]
    kinds = [f["type"] for f in fake_obt.frames]
    result_at = kinds.index("result")
    assert "progress" in kinds[:result_at]
    # The fresh model report, holding the new model, went out before the result.
    report_at = max(i for i, k in enumerate(kinds[:result_at]) if k == "models")
    names = [m["name"] for m in fake_obt.frames[report_at]["body"]["models"]]
    assert "phi4:14b" in names


@pytest.mark.parametrize("action", ["pull", "delete"])
async def test_a_read_only_agent_refuses_commands(
    fake_obt: FakeObtServer, fake_ollama: FakeOllama, tmp_path: Path, action: str
) -> None:
    settings = settings_for(fake_obt, fake_ollama, tmp_path / "state", read_only=True)
    async for _ in running(settings):
        await fake_obt.wait_until(lambda: CLIENT_ID in fake_obt.channels)
        command = {
            "type": "command",
            "operation_id": "op-1",
            "action": action,
            "model": "qwen2.5:7b",
        }
        await fake_obt.send_to_agent(CLIENT_ID, command)
        await fake_obt.wait_until(lambda: bool(results(fake_obt, "op-1")))
    assert results(fake_obt, "op-1") == [{"status": "failed", "reason": "read-only agent"}]
    assert fake_ollama.pulls == []
    assert "qwen2.5:7b" in fake_ollama.models
