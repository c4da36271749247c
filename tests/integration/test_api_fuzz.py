"""schemathesis over every endpoint of /openapi.json against a real server: no answer is a 5xx.

Bounded for CI (OBT_FUZZ_EXAMPLES, default 25 per operation); the soak documented in
docs/reliability.md runs it with 1,000+.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.processes import ServerProcess

EXAMPLES = int(os.environ.get("OBT_FUZZ_EXAMPLES", "25"))
AGENT = "fuzz-agent"


class FuzzTarget:
    def __init__(self, server: ServerProcess, secret: str) -> None:
        self.server = server
        self.secret = secret
        self.calls = 0


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("fuzz")) / "data")
    with server:
        r = httpx.post(
            f"{server.api_url}/agents/register",
            json={"client_id": AGENT, "hostname": "fuzz", "session_id": str(uuid.uuid4())},
            headers={"Authorization": f"Bearer {server.enrollment_token}"},
            timeout=10,
        )
        r.raise_for_status()
        yield FuzzTarget(server, r.json()["client_secret"])


def check_case(case: schemathesis.Case, target: FuzzTarget) -> None:
    path = case.operation.path
    token = None
    if path.startswith("/api/v1/agents/"):
        token = target.server.enrollment_token if path.endswith("register") else None
        if "{client_id}" in path and case.path_parameters:
            # Half the time aim at the real client, so bodies reach the handlers.
            if hash(repr(case.body)) % 2 == 0:
                case.path_parameters["client_id"] = AGENT
            token = target.secret
    elif case.method.upper() in ("DELETE", "POST"):
        token = target.server.admin_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = case.call(headers=headers, timeout=30)
    target.calls += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str)
        assert isinstance(body.get("detail"), str)


def test_no_input_gets_a_server_error(fuzz_target: FuzzTarget) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # The live stream never ends by design; everything else is fuzzed.
    operations = [op for op in operations if op.path != "/api/v1/live"]
    assert len(operations) >= 15
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            check_case(case, fuzz_target)

        fuzz()
    # Shown with -s (docs/reliability.md quotes it): how many requests were really sent.
    print(f"\nfuzzed {len(operations)} operations with {fuzz_target.calls} requests")
