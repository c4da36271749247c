"""`obt-agent doctor` says which transport the agent will use and why, and its command mode,
without recording anything on the server (the channel is probed without a hello)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from agent.cli import doctor
from agent.server import ObtClient
from agent.settings import AgentSettings, load_settings
from agent.state import Credentials, StateDir
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama
from tests.unit.agent.test_agent_cli import LINUX

CLIENT_ID = "gpu-01"


async def enrolled_settings(
    obt: FakeObtServer, ollama: FakeOllama, state_dir: Path, **extra: object
) -> AgentSettings:
    async with aiohttp.ClientSession() as session:
        registration, _ = await ObtClient(obt.base_url, session).register(
            {"client_id": CLIENT_ID}, obt.enrollment_token
        )
    assert registration.client_secret
    state = StateDir(state_dir)
    state.ensure()
    state.save_credentials(Credentials(CLIENT_ID, registration.client_secret, obt.base_url))
    settings = load_settings(
        env_file=None,
        server_url=obt.base_url,
        ollama_host=ollama.base_url,
        state_dir=state_dir,
        client_id=CLIENT_ID,
    )
    return settings.model_copy(update=extra)


async def test_doctor_shows_the_channel_when_the_upgrade_is_accepted(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = await enrolled_settings(fake_obt, fake_ollama, tmp_path / "state")
    assert await doctor(settings, host=LINUX) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if " transport " in line]
    assert line.startswith("[ok ]")
    assert "channel (ws://" in line
    assert "the WebSocket upgrade was accepted" in line
    assert "pull and delete commands accepted" in out
    assert fake_obt.hellos == []  # probed without a hello: nothing recorded
    assert fake_obt.heartbeats == []


@pytest.mark.parametrize("status", [400, 404])
async def test_doctor_says_why_it_is_http_when_the_upgrade_is_refused(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
) -> None:
    fake_obt.refuse_upgrade = status
    settings = await enrolled_settings(fake_obt, fake_ollama, tmp_path / "state", read_only=True)
    assert await doctor(settings, host=LINUX) == 0
    out = capsys.readouterr().out
    assert f"HTTP, because the upgrade answered HTTP {status}" in out
    assert "a proxy that does not pass WebSockets" in out
    assert "read-only: pull and delete commands are refused" in out


async def test_doctor_with_the_channel_switched_off(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = await enrolled_settings(fake_obt, fake_ollama, tmp_path / "state", transport="http")
    assert await doctor(settings, host=LINUX) == 0
    assert "HTTP (OBT_AGENT_TRANSPORT=http" in capsys.readouterr().out
    assert fake_obt.upgrades_refused == 0
