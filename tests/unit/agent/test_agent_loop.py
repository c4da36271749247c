"""The loop in virtual time (FakeClock) against the fake Ollama and the fake OBT server."""

from __future__ import annotations

import asyncio
import random
import stat
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from agent.backoff import Backoff
from agent.clock import FakeClock
from agent.loop import EMPTY_DIGEST, AgentLoop, Identity
from agent.ollama import OllamaClient, OllamaSnapshot
from agent.server import ObtClient
from agent.state import StateDir
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama, Model


def make_loop(
    obt: FakeObtServer,
    ollama: FakeOllama,
    session: aiohttp.ClientSession,
    state_dir: Path,
    clock: FakeClock | None = None,
    token: str | None = "enrol-test-token",
    session_id: str = "session-1",
) -> AgentLoop:
    identity = Identity(
        client_id="gpu-01",
        session_id=session_id,
        hostname="gpu",
        platform={"system": "Linux", "release": "6.1", "machine": "x86_64"},
        agent_version="0.1.0",
        labels={"room": "lab"},
        server_url=obt.base_url,
        ollama_base_url=ollama.base_url,
        ollama_installed=True,
    )
    return AgentLoop(
        identity=identity,
        enrollment_token=token,
        ollama=OllamaClient(ollama.base_url, session, timeout_s=0.2),
        server=ObtClient(obt.base_url, session),
        store=StateDir(state_dir),
        clock=clock or FakeClock(),
        backoff=Backoff(random.Random(7)),
    )


async def run_until(loop: AgentLoop, obt: FakeObtServer, predicate: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await obt.wait_until(predicate)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def spin_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until `predicate` holds, with a deadline (no fixed sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0)


async def test_registers_heartbeats_and_reports_models_once(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path / "state")
    await run_until(loop, fake_obt, lambda: len(fake_obt.heartbeats) >= 4)

    [registration] = fake_obt.registrations
    assert registration["session_id"] == "session-1"
    assert registration["labels"] == {"room": "lab"}
    assert registration["ollama"] == {
        "installed": True,
        "version": "0.9.6",
        "base_url": fake_ollama.base_url,
        "reachable": True,
    }
    assert [h["seq"] for h in fake_obt.heartbeats[:4]] == [1, 2, 3, 4]
    assert {h["session_id"] for h in fake_obt.heartbeats} == {"session-1"}
    assert fake_obt.heartbeats[0]["ollama"]["reachable"] is True
    assert len(fake_obt.model_reports) == 1
    assert [m["name"] for m in fake_obt.model_reports[0]["models"]] == [
        "llama3.2:3b",
        "qwen2.5:7b",
    ]
    assert fake_obt.deregistrations == ["gpu-01"]
    secret_file = tmp_path / "state" / "secret.json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


async def test_heartbeats_keep_the_servers_interval_exactly(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_obt.interval_s = 15.0
    clock = FakeClock()
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path, clock)
    await run_until(loop, fake_obt, lambda: len(fake_obt.heartbeats) >= 5)
    # The first wait is 0 (beat right after registering); then one interval per beat.
    assert clock.waits[1:4] == [15.0, 15.0, 15.0]


class SlowOllama:
    """Each snapshot costs `cost_s` of virtual time, as a slow Ollama would."""

    def __init__(self, clock: FakeClock, cost_s: float) -> None:
        self.clock = clock
        self.cost_s = cost_s

    async def snapshot(self) -> OllamaSnapshot:
        self.clock.advance(self.cost_s)
        return OllamaSnapshot(reachable=True, version="0.9.6", latency_ms=1.0)


@pytest.mark.parametrize(("cost_s", "expected_wait"), [(3.0, 7.0), (25.0, 5.0)])
async def test_schedule_does_not_drift_and_skips_missed_slots(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    cost_s: float,
    expected_wait: float,
) -> None:
    # Interval 10: a 3 s snapshot leaves 7 s to the next slot; a 25 s one misses two slots
    # and waits 5 s for the third instead of sending the missed beats in a burst.
    clock = FakeClock()
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path, clock)
    loop.ollama = SlowOllama(clock, cost_s)
    await run_until(loop, fake_obt, lambda: len(fake_obt.heartbeats) >= 4)
    assert [w for w in clock.waits if w > 0][:3] == [expected_wait] * 3


async def test_model_change_is_reported_once(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)

    def changed_after_first_report() -> bool:
        if len(fake_obt.model_reports) == 1 and "phi4:14b" not in fake_ollama.models:
            fake_ollama.add(Model("phi4:14b"))
            fake_ollama.load("phi4:14b", size_vram=123)
        return len(fake_obt.model_reports) >= 2 and len(fake_obt.heartbeats) >= 6

    await run_until(loop, fake_obt, changed_after_first_report)
    assert len(fake_obt.model_reports) == 2
    assert fake_obt.model_reports[1]["loaded"][0]["size_vram"] == 123


async def test_server_asking_for_models_gets_them_again(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)

    def server_forgets() -> bool:
        if len(fake_obt.model_reports) == 1 and len(fake_obt.heartbeats) == 2:
            fake_obt.report_digest.clear()  # as after a server that lost its read models
        return len(fake_obt.model_reports) >= 2

    await run_until(loop, fake_obt, server_forgets)
    assert len(fake_obt.model_reports) == 2


async def test_ollama_down_is_reported_without_touching_models(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_ollama.set_mode("error")
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)
    await run_until(loop, fake_obt, lambda: len(fake_obt.heartbeats) >= 2)
    beat = fake_obt.heartbeats[0]
    assert beat["ollama"]["reachable"] is False
    assert "HTTP 500" in beat["ollama"]["error"]
    assert beat["models_digest"] == EMPTY_DIGEST
    assert fake_obt.registrations[0]["ollama"]["reachable"] is False
    assert fake_obt.model_reports == []


async def test_revoked_secret_reenrols_with_the_token(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)

    def revoke_then_recover() -> bool:
        if len(fake_obt.heartbeats) == 2 and len(fake_obt.registrations) == 1:
            fake_obt.revoke("gpu-01")
        return len(fake_obt.registrations) == 2 and len(fake_obt.heartbeats) >= 4

    await run_until(loop, fake_obt, revoke_then_recover)
    assert fake_obt.registrations[1]["_issued"]
    saved = StateDir(tmp_path).load_credentials("gpu-01", fake_obt.base_url)
    assert saved is not None
    assert saved.client_secret == fake_obt.secrets["gpu-01"]


async def test_restart_reregisters_with_the_saved_secret(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    first = make_loop(fake_obt, fake_ollama, session, tmp_path)
    await run_until(first, fake_obt, lambda: len(fake_obt.heartbeats) >= 1)
    second = make_loop(fake_obt, fake_ollama, session, tmp_path, session_id="session-2")
    second.enrollment_token = None
    await run_until(second, fake_obt, lambda: len(fake_obt.registrations) >= 2)
    assert fake_obt.registrations[1]["session_id"] == "session-2"
    assert fake_obt.registrations[1]["_issued"] is None
    assert fake_obt.auth_seen.count(f"Bearer {fake_obt.enrollment_token}") == 1


@pytest.mark.parametrize("code", ["session_mismatch", "client_stopped"])
async def test_a_heartbeat_refused_for_its_session_leads_to_a_new_registration(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    code: str,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)

    injected = False

    def refuse_once_then_recover() -> bool:
        nonlocal injected
        # After the first heartbeat and its model report, the next request is a heartbeat.
        if not injected and fake_obt.model_reports:
            fake_obt.fail_next.append((409, {}, code))
            injected = True
        return len(fake_obt.registrations) >= 2 and len(fake_obt.heartbeats) >= 2

    await run_until(loop, fake_obt, refuse_once_then_recover)
    assert len(fake_obt.registrations) == 2


async def test_busy_server_is_retried_after_retry_after(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    fake_obt.fail_next.append((503, {"Retry-After": "42"}))
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path, clock)
    await run_until(loop, fake_obt, lambda: len(fake_obt.heartbeats) >= 1)
    assert clock.waits[0] == 42.0


async def test_unreachable_server_backs_off_with_a_cap_and_recovers(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path, clock)
    fake_obt.down = True
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await fake_obt.wait_until(lambda: len(clock.waits) >= 12)
        fake_obt.down = False
        await fake_obt.wait_until(lambda: len(fake_obt.heartbeats) >= 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    backoffs = clock.waits[:12]
    assert all(0 < w <= 60.0 for w in backoffs)
    assert backoffs[0] <= 1.0
    assert max(backoffs) > 30.0
    assert len(set(backoffs)) == len(backoffs)  # jittered, not lock-step
    assert loop.backoff.attempt == 0


async def test_without_token_or_secret_it_waits_and_says_why(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path, clock, token=None)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await spin_until(lambda: len(clock.waits) >= 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert fake_obt.registrations == []
    assert any("OBT_ENROLLMENT_TOKEN" in str(r.__dict__) for r in caplog.records)


async def test_stop_interrupts_a_hung_ollama_and_deregisters(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop = make_loop(fake_obt, fake_ollama, session, tmp_path)
    loop.ollama = OllamaClient(fake_ollama.base_url, session, timeout_s=60)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await fake_obt.wait_until(lambda: len(fake_obt.heartbeats) >= 1)
    fake_ollama.set_mode("slow")
    count = len(fake_ollama.requests)
    await spin_until(lambda: len(fake_ollama.requests) > count)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert fake_obt.deregistrations == ["gpu-01"]
