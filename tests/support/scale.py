"""Several OBT servers on one MongoDB stand-in, and a heartbeat load spread over them: the
pieces the several-instances tests and bench/scale_bench.py share.

The load keeps every acknowledgement with the instance that gave it and when, so a test can
measure the longest stall an instance saw, and check the log against what was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from tests.integration.simulated_agent import SimulatedAgent
from tests.support.processes import SecantusProcess, ServerProcess

WRITE_CONFLICT = 112


def instance(
    tmp: Path,
    secantus: SecantusProcess,
    name: str,
    db: str,
    *,
    lease_ttl_s: float = 4.0,
    timeout_s: float = 3.0,
    tokens: ServerProcess | None = None,
) -> ServerProcess:
    """One `obt serve` named `name` on the stand-in; `tokens` shares another's tokens (every
    instance of one deployment is configured alike)."""
    server = ServerProcess(
        tmp / name,
        store="mongodb",
        mongodb_uri=secantus.uri,
        mongodb_db=db,
        interval_s=1.0,
        timeout_s=timeout_s,
        tick_s=0.2,
        log_dir=tmp / "logs",
        env={"OBT_INSTANCE_NAME": name, "OBT_LEASE_TTL_S": str(lease_ttl_s)},
    )
    server.name = name
    if tokens is not None:
        server.admin_token = tokens.admin_token
        server.enrollment_token = tokens.enrollment_token
    return server


def block_next_insert(secantus: SecantusProcess, instance_name: str, block_ms: int) -> None:
    """Hold the named instance's next `insert` (an append's insert of events, after its
    counter increment) inside the stand-in for `block_ms`: kill the instance meanwhile and it
    dies inside that transaction, deterministically."""
    with MongoClient(secantus.uri, serverSelectionTimeoutMS=5000) as client:
        client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={
                "failCommands": ["insert"],
                "appName": f"obt/{instance_name}",
                "blockConnection": True,
                "blockTimeMS": block_ms,
            },
        )


@dataclass
class Ack:
    server: str
    at: float  # time.monotonic() when the answer came
    status: int


@dataclass
class HeartbeatLoad:
    """`agents` simulated agents, each beating every `every_s` to its own instance."""

    agents: list[tuple[SimulatedAgent, ServerProcess]]
    every_s: float = 0.5
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with contextlib.AsyncExitStack() as stack:
            clients: dict[str, httpx.AsyncClient] = {}
            for _, server in self.agents:
                if server.name not in clients:
                    clients[server.name] = await stack.enter_async_context(
                        httpx.AsyncClient(base_url=server.api_url, timeout=30)
                    )
            tasks = [
                asyncio.create_task(self._beat(agent, server, clients[server.name], stop, i))
                for i, (agent, server) in enumerate(self.agents)
            ]
            await asyncio.gather(*tasks)

    async def _beat(
        self,
        agent: SimulatedAgent,
        server: ServerProcess,
        http: httpx.AsyncClient,
        stop: asyncio.Event,
        index: int,
    ) -> None:
        # Spread the agents over the period, as real ones are.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.every_s * index / len(self.agents))
        while not stop.is_set():
            try:
                response = await agent.heartbeat_async(http)
                self.acks.append(Ack(server.name, time.monotonic(), response.status_code))
            except httpx.HTTPError as exc:  # a killed instance: its agents wait for it
                self.acks.append(Ack(server.name, time.monotonic(), 0))
                self.errors.append(f"{server.name}: {type(exc).__name__}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)

    def longest_stall(self, server: str, since: float) -> float:
        """The longest time after `since` between two acknowledgements (200) from `server`."""
        times = sorted(a.at for a in self.acks if a.server == server and a.status == 200)
        times = [t for t in times if t >= since]
        last = since
        longest = 0.0
        for t in times:
            longest = max(longest, t - last)
            last = t
        return longest

    def acknowledged(self) -> dict[str, set[tuple[str, int]]]:
        return {agent.client_id: set(agent.acknowledged) for agent, _ in self.agents}


def heartbeats_in_log(secantus: SecantusProcess, db: str) -> dict[tuple[str, str, int], int]:
    """(client id, session id, seq) -> how many HeartbeatReceived the log holds."""
    counts: dict[tuple[str, str, int], int] = {}
    with MongoClient(secantus.uri, serverSelectionTimeoutMS=5000) as client:
        for doc in client[db].events.find({"type": "HeartbeatReceived"}, {"data": 1}):
            data: dict[str, Any] = doc["data"]
            key = (data["client_id"], data["session_id"], data["seq"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def counter_held(secantus: SecantusProcess, db: str) -> bool:
    """Whether another transaction holds the log's counter document: a write to it in a
    transaction of our own (always aborted, so nothing changes) meets a WriteConflict."""
    with (
        MongoClient(secantus.uri, serverSelectionTimeoutMS=5000) as client,
        client.start_session() as session,
    ):
        session.start_transaction()
        try:
            client[db].counters.update_one(
                {"_id": "events"}, {"$set": {"probe": 1}}, session=session
            )
        except OperationFailure as exc:
            if exc.code == WRITE_CONFLICT:
                return True
            raise
        finally:
            if session.in_transaction:
                session.abort_transaction()
    return False


@contextlib.contextmanager
def running(load: HeartbeatLoad) -> Iterator[HeartbeatLoad]:
    """The load on its own thread and event loop for the block (tests drive processes
    synchronously meanwhile)."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        ready.set()
        await load.run(stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield load
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(60)
