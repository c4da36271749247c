"""Fixtures for the agent's unit tests: a clean environment and the fake Ollama/OBT servers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from agent.logs import LOGGER_NAME
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama

AGENT_VARIABLES = (
    "OBT_SERVER_URL",
    "OBT_ENROLLMENT_TOKEN",
    "OBT_CLIENT_ID",
    "OBT_AGENT_STATE_DIR",
    "OBT_AGENT_LABELS",
    "OLLAMA_HOST",
    "OLLAMA_MODELS",
    "OBT_AGENT_READ_ONLY",
    "OBT_AGENT_TRANSPORT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No agent setting leaks in from the developer's shell or a stray .env file."""
    for name in AGENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def reset_agent_logger() -> Iterator[None]:
    """The CLI configures the agent's logger; undo it so caplog sees records in later tests."""
    yield
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        fake.reset()
        yield fake


@pytest.fixture
async def fake_obt() -> AsyncIterator[FakeObtServer]:
    async with FakeObtServer() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
