"""An agent simulated over HTTP (httpx), for tests that need exact control of what is sent:
sequence numbers, replays, credentials, silence. It remembers every heartbeat acknowledged."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.processes import ServerProcess

PLATFORM = {"system": "Linux", "release": "6.1.0", "machine": "x86_64"}


def tag(name: str, size: int = 1_000_000) -> dict[str, Any]:
    """One /api/tags item, as Ollama shows it."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-01T10:00:00Z",
        "size": size,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_K_M",
        },
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SimulatedAgent:
    server: ServerProcess
    client_id: str
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: str | None = None
    seq: int = 0
    acknowledged: set[tuple[str, int]] = field(default_factory=set)

    @property
    def stream(self) -> str:
        return f"client-{self.client_id}"

    def register(self, http: httpx.Client, *, reachable: bool = True) -> httpx.Response:
        body = {
            "client_id": self.client_id,
            "hostname": f"host-{self.client_id}",
            "platform": PLATFORM,
            "agent_version": "0.1.0-test",
            "ollama": {
                "installed": True,
                "version": "0.9.6",
                "base_url": "http://127.0.0.1:11434",
                "reachable": reachable,
            },
            "labels": {"suite": "integration"},
            "session_id": self.session_id,
        }
        token = self.secret or self.server.enrollment_token
        response = http.post("/agents/register", json=body, headers=bearer(token))
        if response.status_code in (200, 201) and response.json().get("client_secret"):
            self.secret = response.json()["client_secret"]
        return response

    def heartbeat_body(self, seq: int, *, reachable: bool = True) -> dict[str, Any]:
        return {
            "seq": seq,
            "session_id": self.session_id,
            "sent_at": datetime.now(UTC).isoformat(),
            "ollama": {
                "reachable": reachable,
                "version": "0.9.6",
                "latency_ms": 1.5,
                "error": None if reachable else "connection refused",
            },
        }

    def heartbeat(
        self,
        http: httpx.Client,
        *,
        seq: int | None = None,
        reachable: bool = True,
        token: str | None = None,
    ) -> httpx.Response:
        """Send the next heartbeat (or `seq` again); note it when the server acknowledges."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        response = http.post(
            f"/agents/{self.client_id}/heartbeats",
            json=self.heartbeat_body(seq, reachable=reachable),
            headers=bearer(token or self._secret()),
        )
        if response.status_code == 200:
            self.acknowledged.add((self.session_id, seq))
        return response

    async def heartbeat_async(self, http: httpx.AsyncClient) -> httpx.Response:
        self.seq += 1
        seq = self.seq
        response = await http.post(
            f"/agents/{self.client_id}/heartbeats",
            json=self.heartbeat_body(seq),
            headers=bearer(self._secret()),
        )
        if response.status_code == 200:
            self.acknowledged.add((self.session_id, seq))
        return response

    def report_models(self, http: httpx.Client, names: list[str]) -> httpx.Response:
        return http.put(
            f"/agents/{self.client_id}/models",
            json={"models": [tag(n) for n in names], "loaded": []},
            headers=bearer(self._secret()),
        )

    def _secret(self) -> str:
        assert self.secret is not None, "register first"
        return self.secret


def all_events(http: httpx.Client, *, after: int = 0, **params: Any) -> list[dict[str, Any]]:
    """Every event after position `after` matching `params` (stream, type), following
    `next_after`."""
    items: list[dict[str, Any]] = []
    while True:
        response = http.get("/events", params={**params, "after": after, "limit": 1000})
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        if page["next_after"] is None:
            return items
        after = page["next_after"]


def heartbeat_counts(http: httpx.Client, agent: SimulatedAgent) -> dict[tuple[str, int], int]:
    """How many HeartbeatReceived events the log holds per (session, seq) of this client."""
    counts: dict[tuple[str, int], int] = {}
    for event in all_events(http, type="HeartbeatReceived", stream=agent.stream):
        key = (event["data"]["session_id"], event["data"]["seq"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def client_status(http: httpx.Client, client_id: str) -> str | None:
    response = http.get(f"/clients/{client_id}")
    return response.json()["status"] if response.status_code == 200 else None


def health(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/health").json()
    return body


def projections_at_head(http: httpx.Client) -> bool:
    body = health(http)
    head = body["store"]["head"]
    return head is not None and all(
        p["position"] == head and p["lag"] == 0 and not p["error"] for p in body["projections"]
    )
