import aiohttp
import pytest

from agent.errors import OllamaUnavailable
from agent.ollama import OllamaClient
from tests.fakes.ollama import FakeOllama, Model

# Short, so the "slow" mode (which hangs until released) is noticed at once.
TIMEOUT_S = 0.2


def client(fake: FakeOllama, session: aiohttp.ClientSession) -> OllamaClient:
    return OllamaClient(fake.base_url, session, timeout_s=TIMEOUT_S)


async def test_snapshot_reads_version_models_and_loaded(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    fake_ollama.load("qwen2.5:7b", size_vram=3_000_000_000)
    snapshot = await client(fake_ollama, session).snapshot()
    assert snapshot.reachable
    assert snapshot.error is None
    assert snapshot.version == "0.9.6"
    assert snapshot.latency_ms is not None
    assert [m.name for m in snapshot.installed] == ["llama3.2:3b", "qwen2.5:7b"]
    qwen = snapshot.installed[1]
    assert (qwen.details.family, qwen.details.parameter_size) == ("qwen2", "7.6B")
    assert qwen.details.quantization_level == "Q4_K_M"
    assert qwen.size == 4_683_087_332
    assert [(m.name, m.size_vram) for m in snapshot.loaded] == [("qwen2.5:7b", 3_000_000_000)]
    assert snapshot.loaded[0].expires_at is not None


async def test_dumped_models_keep_ollamas_shape(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    fake_ollama.load("llama3.2:3b")
    snapshot = await client(fake_ollama, session).snapshot()
    tag = snapshot.installed[0].model_dump(mode="json")
    assert tag == fake_ollama.models["llama3.2:3b"].tag()
    ps = snapshot.loaded[0].model_dump(mode="json")
    assert set(ps) >= {"name", "model", "size", "size_vram", "digest", "expires_at"}


async def test_missing_size_vram_means_zero(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    fake_ollama.load("llama3.2:3b")
    fake_ollama.set_mode("no_size_vram")
    snapshot = await client(fake_ollama, session).snapshot()
    assert snapshot.reachable
    assert snapshot.loaded[0].size_vram == 0


async def test_digest_changes_when_models_change(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    ollama = client(fake_ollama, session)
    before = (await ollama.snapshot()).models_digest
    assert (await ollama.snapshot()).models_digest == before
    fake_ollama.add(Model("phi4:14b"))
    assert (await ollama.snapshot()).models_digest != before


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("down", "/api/version failed"),
        ("error", "HTTP 500 from /api/version: llama runner process has terminated"),
        ("slow", "no answer from /api/version within 0.2 s"),
        ("garbage", "invalid JSON from /api/version"),
        ("missing_fields", "unexpected answer from /api/tags: models.0.digest"),
    ],
)
async def test_failures_become_unavailable_with_a_reason(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession, mode: str, reason: str
) -> None:
    fake_ollama.set_mode(mode)
    snapshot = await client(fake_ollama, session).snapshot()
    assert not snapshot.reachable
    assert reason in str(snapshot.error)
    assert snapshot.installed == ()


async def test_nobody_listening(session: aiohttp.ClientSession) -> None:
    fake = FakeOllama()
    await fake.start()
    await fake.stop()
    snapshot = await OllamaClient(fake.base_url, session, timeout_s=TIMEOUT_S).snapshot()
    assert not snapshot.reachable
    assert str(snapshot.error).startswith(f"cannot connect to {fake.base_url}")


async def test_single_calls_raise_ollama_unavailable(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    ollama = client(fake_ollama, session)
    assert await ollama.banner() == "Ollama is running"
    fake_ollama.set_mode("garbage")
    with pytest.raises(OllamaUnavailable, match="invalid JSON from /api/tags"):
        await ollama.installed()


async def test_recovers_when_ollama_comes_back(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    ollama = client(fake_ollama, session)
    fake_ollama.set_mode("down")
    assert not (await ollama.snapshot()).reachable
    fake_ollama.set_mode("ok")
    assert (await ollama.snapshot()).reachable
