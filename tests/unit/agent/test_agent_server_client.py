from datetime import UTC, datetime

import aiohttp
import pytest

from agent.errors import AuthRejected, ClientUnknown, ServerBusy, ServerRejected, ServerUnreachable
from agent.server import ObtClient
from tests.fakes.obt_server import FakeObtServer

BODY = {"client_id": "gpu-01", "hostname": "gpu", "session_id": "s-1"}


async def test_register_then_heartbeat_with_the_issued_secret(
    fake_obt: FakeObtServer, session: aiohttp.ClientSession
) -> None:
    client = ObtClient(fake_obt.base_url, session)
    registration, created = await client.register(BODY, fake_obt.enrollment_token)
    assert created
    assert registration.client_secret
    assert registration.heartbeat_interval_s == 10.0
    assert fake_obt.auth_seen[-1] == f"Bearer {fake_obt.enrollment_token}"
    reply = await client.heartbeat("gpu-01", registration.client_secret, {"models_digest": "x"})
    assert reply.models_wanted
    again, created = await client.register(BODY, registration.client_secret)
    assert not created
    assert again.client_secret is None
    await client.deregister("gpu-01", registration.client_secret)
    assert fake_obt.deregistrations == ["gpu-01"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthRejected), (403, AuthRejected), (404, ClientUnknown), (422, ServerRejected)],
)
async def test_http_errors_map_to_agent_errors(
    fake_obt: FakeObtServer, session: aiohttp.ClientSession, status: int, error: type
) -> None:
    fake_obt.fail_next.append((status, {}))
    with pytest.raises(error) as caught:
        await ObtClient(fake_obt.base_url, session).register(BODY, "t")
    assert caught.value.status == status
    assert caught.value.code == "injected"


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (503, {"Retry-After": "7"}, 7.0),
        (429, {"Retry-After": "Fri, 27 Nov 2026 12:00:30 GMT"}, 30.0),
        (500, {}, None),
        (503, {"Retry-After": "soon"}, None),
    ],
)
async def test_busy_answers_carry_retry_after(
    fake_obt: FakeObtServer,
    session: aiohttp.ClientSession,
    status: int,
    header: dict[str, str],
    expected: float | None,
) -> None:
    fake_obt.fail_next.append((status, header))
    client = ObtClient(
        fake_obt.base_url, session, wall_clock=lambda: datetime(2026, 11, 27, 12, tzinfo=UTC)
    )
    with pytest.raises(ServerBusy) as caught:
        await client.heartbeat("gpu-01", "s", {})
    assert caught.value.retry_after == expected


async def test_no_server_is_unreachable(session: aiohttp.ClientSession) -> None:
    fake = FakeObtServer()
    await fake.start()
    await fake.stop()
    with pytest.raises(ServerUnreachable):
        await ObtClient(fake.base_url, session).register(BODY, "t")


async def test_dropped_connection_is_unreachable(
    fake_obt: FakeObtServer, session: aiohttp.ClientSession
) -> None:
    fake_obt.down = True
    with pytest.raises(ServerUnreachable):
        await ObtClient(fake_obt.base_url, session).health()


async def test_check_credential_records_nothing(
    fake_obt: FakeObtServer, session: aiohttp.ClientSession
) -> None:
    client = ObtClient(fake_obt.base_url, session)
    fake_obt.fail_next.append((422, {}))
    assert await client.check_credential("/api/v1/agents/register", "t") == 422
    fake_obt.fail_next.append((401, {}))
    with pytest.raises(AuthRejected):
        await client.check_credential("/api/v1/agents/register", "t")
    assert fake_obt.registrations == []
