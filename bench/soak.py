"""Soak: thousands of simulated agents at the real cadence against a real `obt serve`, with
optional crashes (kill -9) and store outages, checking that nothing acknowledged is lost.

    python -m bench.soak --store sqlite --agents 5000 --minutes 10
    python -m bench.soak --store mongodb --agents 5000 --minutes 2
    python -m bench.soak --store sqlite --agents 1000 --minutes 4 --kills 5
    python -m bench.soak --store mongodb --agents 500 --minutes 2 --store-outage-s 10

Every agent heartbeats every `--interval` seconds (starts spread over one interval); a failed
heartbeat is sent again with the same seq (as the real agent does) after Retry-After or a
capped back-off. One process, one aiohttp connection pool. At the end the log is read back
(NDJSON export) and every acknowledged (client, session, seq) must be there exactly once.
Projection lag is sampled from /api/v1/health twice a second.

Promises checked (exit status 1 when one is broken):
- no non-2xx answer and no transport error (outside kill and store-outage windows, where only
  503-with-Retry-After and refused connections are allowed, and no request outlives its timeout);
- every acknowledged heartbeat present exactly once (also after each restart);
- kills: projections resume from their checkpoints and equal a rebuild; a real agent comes back;
- store outage: service back within 10 s of the store's return, no client timed out for it.
Not a test: it takes minutes and reports figures (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    SecantusProcess,
    ServerProcess,
    wait_until,
)

REQUEST_TIMEOUT_S = 30.0
MAX_BACKOFF_S = 10.0
RECOVERY_PROMISE_S = 10.0
PLATFORM = {"system": "Linux", "release": "6.1.0", "machine": "x86_64"}


@dataclass
class Agent:
    client_id: str
    secret: str = ""
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    acked: set[int] = field(default_factory=set)


@dataclass
class Window:
    """A period (monotonic seconds) in which failures are expected: a kill or an outage."""

    start: float
    end: float = float("inf")

    def covers(self, sent: float, answered: float) -> bool:
        return answered >= self.start and sent <= self.end + 1.0


@dataclass
class Stats:
    sent: int = 0
    acked: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    longest_failure_s: float = 0.0
    missing_retry_after: int = 0
    first_ack_after: dict[int, float] = field(default_factory=dict)  # window index -> time


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.stats = Stats()
        self.windows: list[Window] = []
        self.lag_events: list[int] = []
        self.lag_s: list[float] = []
        self.loop_stalls: list[float] = []
        self.server_side: dict[str, float] = {}
        self.registering = asyncio.Semaphore(64)
        self.registered = 0
        self.stop = asyncio.Event()
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.secantus: SecantusProcess | None = None
        options: dict[str, Any] = {}
        if args.store == "mongodb":
            self.secantus = SecantusProcess(work / "logs", work / "secantus-data")
            self.secantus.start()
            options = {"store": "mongodb", "mongodb_uri": self.secantus.uri, "mongodb_db": "soak"}
        self.server = ServerProcess(
            work / "data",
            interval_s=args.interval,
            timeout_s=args.interval * 3,
            tick_s=1.0,
            log_dir=work / "logs",
            env={"OBT_LOG_LEVEL": "warning"} if not args.kills else None,
            **options,
        )
        self.agents = [Agent(f"soak-{i:05d}") for i in range(args.agents)]

    # -- load ------------------------------------------------------------------------------

    def body(self, agent: Agent, seq: int, sent_at: str) -> bytes:
        return json.dumps(
            {
                "seq": seq,
                "session_id": agent.session_id,
                "sent_at": sent_at,
                "ollama": {"reachable": True, "version": "0.9.6", "latency_ms": 2.0, "error": None},
                "models_digest": "a" * 64,
            }
        ).encode()

    async def register(self, agent: Agent, http: aiohttp.ClientSession) -> None:
        body = {
            "client_id": agent.client_id,
            "hostname": f"host-{agent.client_id}",
            "platform": PLATFORM,
            "agent_version": "0.1.0-soak",
            "ollama": {
                "installed": True,
                "version": "0.9.6",
                "base_url": "http://127.0.0.1:11434",
                "reachable": True,
            },
            "labels": {"soak": "1"},
            "session_id": agent.session_id,
        }
        headers = {"Authorization": f"Bearer {self.server.enrollment_token}"}
        async with self.registering:
            for _ in range(20):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.post(
                        f"{self.server.api_url}/agents/register", json=body, headers=headers
                    ) as response:
                        if response.status in (200, 201):
                            agent.secret = (await response.json())["client_secret"]
                            self.registered += 1
                            return
                await asyncio.sleep(1)
        raise RuntimeError(f"could not register {agent.client_id}")

    async def beat(self, agent: Agent, http: aiohttp.ClientSession, offset: float) -> None:
        loop = asyncio.get_running_loop()
        url = f"{self.server.api_url}/agents/{agent.client_id}/heartbeats"
        await self.register(agent, http)
        headers = {"Authorization": f"Bearer {agent.secret}", "Content-Type": "application/json"}
        # Each agent beats right after registering (as a real one does), then at its cadence.
        await asyncio.sleep(offset)
        next_at = loop.time()
        while not self.stop.is_set():
            next_at += self.args.interval
            seq = agent.seq + 1
            data = self.body(agent, seq, datetime.now(UTC).isoformat())
            backoff = 0.5
            while not self.stop.is_set():
                sent = time.monotonic()
                self.stats.sent += 1
                wait = None
                try:
                    async with http.post(url, data=data, headers=headers) as response:
                        await response.read()
                        status = response.status
                        retry_after = response.headers.get("Retry-After")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, retry_after = 0, None
                    self.stats.transport[type(exc).__name__] += 1
                answered = time.monotonic()
                if status == 200:
                    agent.seq = seq
                    agent.acked.add(seq)
                    self.stats.acked += 1
                    self.stats.latencies.append(answered - sent)
                    for i, w in enumerate(self.windows):
                        if answered > w.end and i not in self.stats.first_ack_after:
                            self.stats.first_ack_after[i] = answered - w.end
                    break
                self.stats.statuses[status] += 1
                self.stats.longest_failure_s = max(self.stats.longest_failure_s, answered - sent)
                expected = any(w.covers(sent, answered) for w in self.windows)
                if status == 503 and retry_after is None:
                    self.stats.missing_retry_after += 1
                if not expected or status not in (0, 503):
                    self.stats.unexpected.append(f"{agent.client_id} seq {seq}: {status}")
                if retry_after is not None:
                    wait = float(retry_after)
                wait = min(wait if wait is not None else backoff, MAX_BACKOFF_S)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, next_at - loop.time()))

    async def sample_lag(self, http: aiohttp.ClientSession) -> None:
        pending: list[tuple[float, int]] = []  # (when seen, head then)
        while not self.stop.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, TypeError):
                async with http.get(f"{self.server.api_url}/health") as response:
                    body = await response.json()
                head = body["store"]["head"]
                low = min(p["position"] for p in body["projections"])
                now = time.monotonic()
                if head is not None:
                    self.lag_events.append(head - low)
                    pending.append((now, head))
                    while pending and pending[0][1] <= low:
                        self.lag_s.append(now - pending.pop(0)[0])
            await asyncio.sleep(0.5)

    async def sample_loop_stalls(self) -> None:
        """How late this process's own event loop wakes up: shows when the client is the limit."""
        while not self.stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.loop_stalls.append(time.monotonic() - before - 0.1)

    async def server_latency(self, http: aiohttp.ClientSession) -> dict[str, float]:
        """Heartbeat p50/p99 as the server measured it (its request histogram in /metrics)."""
        async with http.get(f"{self.server.base_url}/metrics") as response:
            text = await response.text()
        buckets: dict[float, float] = {}
        for line in text.splitlines():
            if line.startswith("obt_request_duration_seconds_bucket") and "heartbeats" in line:
                le = line.split('le="', 1)[1].split('"', 1)[0]
                bound = float("inf") if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
        total = buckets.get(float("inf"), 0.0)
        result = {}
        for q in (0.5, 0.99):
            bound = next((b for b in sorted(buckets) if buckets[b] >= q * total), float("nan"))
            result[f"p{int(q * 100)}_at_most_ms"] = bound * 1000
        return result

    # -- faults ----------------------------------------------------------------------------

    async def kill_loop(self, http: aiohttp.ClientSession, agent_proc: AgentProcess | None) -> None:
        period = self.args.minutes * 60 / (self.args.kills + 1)
        for k in range(self.args.kills):
            await asyncio.sleep(period)
            acked_before = {(a.client_id, s) for a in self.agents for s in a.acked}
            window = Window(time.monotonic())
            self.windows.append(window)
            code = await asyncio.to_thread(self.server.kill)
            await asyncio.to_thread(self.server.start, 120)
            window.end = time.monotonic()
            caught = self._caught_up_counts()
            present = await self.heartbeats_present(http)
            lost = [x for x in acked_before if present.get(x, 0) != 1]
            line = (
                f"kill {k + 1}: exit {code}, restarted in {window.end - window.start:.1f} s, "
                f"caught up {caught[-1] if caught else '?'} events at start, "
                f"{len(acked_before)} acknowledged before the kill, {len(lost)} lost or doubled"
            )
            if agent_proc is not None:
                back = await asyncio.to_thread(self._real_agent_online, agent_proc, window.end)
                line += f", real agent heartbeating again after {back:.1f} s"
            print(line, flush=True)
            self.notes.append(line)
            if lost:
                self.failures.append(f"kill {k + 1}: lost/doubled {sorted(lost)[:5]}")

    def _caught_up_counts(self) -> list[int]:
        counts = []
        for path in self.server.logs:
            if path.exists():
                text = path.read_text(errors="replace")
                counts += [
                    int(n) for n in re.findall(r"projections caught up \((\d+) events", text)
                ]
        return counts

    def _real_agent_online(self, agent: AgentProcess, since: float) -> float:
        with httpx.Client(base_url=self.server.api_url, timeout=10) as http:

            def heartbeating() -> bool:
                r = http.get(f"/clients/{agent.client_id}")
                return r.status_code == 200 and r.json()["status"] == "online"

            wait_until(heartbeating, self.args.interval * 6, "the real agent did not come back")
        return time.monotonic() - since

    async def outage(self) -> None:
        assert self.secantus is not None
        await asyncio.sleep(self.args.minutes * 60 / 2)
        window = Window(time.monotonic())
        self.windows.append(window)
        await asyncio.to_thread(self.secantus.stop)
        print(f"store stopped for {self.args.store_outage_s} s", flush=True)
        await asyncio.sleep(self.args.store_outage_s)
        await asyncio.to_thread(self.secantus.start)
        window.end = time.monotonic()
        print("store back", flush=True)

    # -- checks ----------------------------------------------------------------------------

    async def heartbeats_present(self, http: aiohttp.ClientSession) -> Counter[tuple[str, int]]:
        """Every HeartbeatReceived in the log, by (client, seq) of this run's sessions.

        Paged through /events?after= with a few tries per page: one long export stream cannot
        resume when a single read fails on a saturated store (seen on the MongoDB stand-in).
        Pages are plain position ranges, filtered here: a type filter makes the stand-in scan.
        """
        counts: Counter[tuple[str, int]] = Counter()
        sessions = {a.client_id: a.session_id for a in self.agents}
        if self.secantus is not None:
            return await asyncio.to_thread(self._heartbeats_in_mongodb, sessions)
        url = f"{self.server.api_url}/events"
        after = 0
        started = time.monotonic()
        while True:
            page = await self._page(http, url, {"after": str(after), "limit": "1000"})
            for event in page["items"]:
                if event["type"] != "HeartbeatReceived":
                    continue
                client = event["stream"].removeprefix("client-")
                if sessions.get(client) == event["data"]["session_id"]:
                    counts[client, event["data"]["seq"]] += 1
            if page["next_after"] is None:
                print(f"read the log back in {time.monotonic() - started:.0f} s", flush=True)
                return counts
            after = page["next_after"]

    def _heartbeats_in_mongodb(self, sessions: dict[str, str]) -> Counter[tuple[str, int]]:
        """The stand-in answers each page of /events with a scan of the whole collection (about
        15 s per page at 200,000 events): the log is read straight from the database instead,
        in one cursor. What the API serves from it is checked by the SQLite runs and tests."""
        import pymongo

        assert self.secantus is not None
        counts: Counter[tuple[str, int]] = Counter()
        started = time.monotonic()
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.secantus.uri, socketTimeoutMS=600_000, serverSelectionTimeoutMS=30_000
        )
        try:
            events = client["soak"]["events"]
            fields = {"stream": 1, "data.session_id": 1, "data.seq": 1}
            for event in events.find({"type": "HeartbeatReceived"}, fields, batch_size=5000):
                client_id = event["stream"].removeprefix("client-")
                if sessions.get(client_id) == event["data"]["session_id"]:
                    counts[client_id, event["data"]["seq"]] += 1
        finally:
            client.close()
        print(f"read the log back from MongoDB in {time.monotonic() - started:.0f} s", flush=True)
        return counts

    @staticmethod
    async def _page(
        http: aiohttp.ClientSession, url: str, params: dict[str, str]
    ) -> dict[str, Any]:
        for attempt in range(5):
            try:
                async with http.get(
                    url, params=params, timeout=aiohttp.ClientTimeout(120)
                ) as response:
                    if response.status == 200:
                        page: dict[str, Any] = await response.json()
                        return page
                    if response.status < 500:
                        response.raise_for_status()
            except (
                aiohttp.ClientPayloadError,
                aiohttp.ServerDisconnectedError,
                TimeoutError,
            ) as exc:
                print(f"reading {params}: {type(exc).__name__}, retrying", flush=True)
            else:
                print(f"reading {params}: {response.status}, retrying", flush=True)
            await asyncio.sleep(2 * (attempt + 1))  # a saturated store: give it a moment
        raise RuntimeError(f"could not read {url} {params} after 5 tries")

    def read_models(self) -> dict[str, Any]:
        with self.server.client(timeout=60) as http:
            wait_until(lambda: self._at_head(http), 120, "projections did not reach the head")
            clients = http.get("/clients").json()["items"]
            models = http.get("/models").json()["items"]
            return {"clients": sorted(clients, key=lambda c: c["client_id"]), "models": models}

    @staticmethod
    def _at_head(http: httpx.Client) -> bool:
        body = http.get("/health").json()
        head = body["store"]["head"]
        return head is not None and all(p["position"] == head for p in body["projections"])

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> int:
        a = self.args
        self.server.start(120)
        ollama = agent_proc = None
        if a.kills:
            ollama = FakeOllamaProcess(self.work / "logs").start()
            agent_proc = AgentProcess(
                self.work / "logs",
                server_url=self.server.base_url,
                ollama_url=ollama.base_url,
                enrollment_token=self.server.enrollment_token,
                client_id="real-agent",
            ).start()
        connector = aiohttp.TCPConnector(limit=a.connections, limit_per_host=a.connections)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                await self.load(http, agent_proc)
                if not a.kills:  # the histogram restarts with every server start
                    self.server_side = await self.server_latency(http)
                present = await self.heartbeats_present(http)
            self.report(present)
            if a.kills:
                self.compare_with_rebuild()
        finally:
            for proc in (agent_proc, ollama):
                if proc is not None:
                    proc.stop()
            with contextlib.suppress(AssertionError):
                self.server.stop()
            if self.secantus is not None:
                self.secantus.stop()
        for failure in self.failures:
            print(f"BROKEN: {failure}")
        print("promises kept" if not self.failures else "PROMISES BROKEN")
        return 1 if self.failures else 0

    async def load(self, http: aiohttp.ClientSession, agent_proc: AgentProcess | None) -> None:
        a = self.args
        n = len(self.agents)
        tasks = [
            asyncio.create_task(self.beat(agent, http, a.interval * i / n))
            for i, agent in enumerate(self.agents)
        ]
        registering = time.monotonic()
        while self.registered < n:
            await asyncio.sleep(1)
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise RuntimeError("an agent failed to register") from task.exception()
        print(f"registered {n} agents in {time.monotonic() - registering:.1f} s", flush=True)
        tasks.append(asyncio.create_task(self.sample_lag(http)))
        tasks.append(asyncio.create_task(self.sample_loop_stalls()))
        faults = []
        if a.kills:
            faults.append(asyncio.create_task(self.kill_loop(http, agent_proc)))
        if a.store_outage_s:
            faults.append(asyncio.create_task(self.outage()))
        started = time.monotonic()
        last = (0, started)
        while time.monotonic() - started < a.minutes * 60:
            await asyncio.sleep(10)
            now = time.monotonic()
            rate = (self.stats.acked - last[0]) / (now - last[1])
            last = (self.stats.acked, now)
            print(
                f"{now - started:5.0f} s  acked {self.stats.acked}  {rate:6.1f}/s  "
                f"non-2xx {sum(self.stats.statuses.values())}  "
                f"lag {self.lag_events[-1] if self.lag_events else '?'} events",
                flush=True,
            )
        for task in faults:
            await task  # a fault still running finishes first (and its checks)
        self.elapsed = time.monotonic() - started
        self.stop.set()
        await asyncio.gather(*tasks)

    def report(self, present: Counter[tuple[str, int]]) -> None:
        s, a = self.stats, self.args
        acked = {(ag.client_id, seq) for ag in self.agents for seq in ag.acked}
        missing = [x for x in acked if present.get(x, 0) == 0]
        doubled = [x for x, n in present.items() if n > 1]
        failed = sum(s.statuses.values())
        expected_rate = len(self.agents) / a.interval
        figures = {
            "store": a.store,
            "agents": len(self.agents),
            "minutes": a.minutes,
            "offered_rate_per_s": round(expected_rate, 1),
            "heartbeats_sent": s.sent,
            "heartbeats_acknowledged": s.acked,
            "acknowledged_rate_per_s": round(s.acked / self.elapsed, 1),
            "non_2xx": dict(s.statuses),
            "transport_errors": dict(s.transport),
            "unexpected_failures": len(s.unexpected),
            "ack_latency_ms_p50_p99": [round(pct(s.latencies, q) * 1000, 1) for q in (0.5, 0.99)],
            "acknowledged_present_exactly_once": len(acked)
            - len(missing)
            - len({x for x in doubled if x in acked}),
            "acknowledged_missing": len(missing),
            "present_more_than_once": len(doubled),
            "projection_lag_events_p50_p99_max": [
                pct([float(x) for x in self.lag_events], q) for q in (0.5, 0.99, 1.0)
            ],
            "projection_lag_s_p50_p99_max": [
                round(pct(self.lag_s, q), 2) for q in (0.5, 0.99, 1.0)
            ],
            "server_side_heartbeat_latency": self.server_side,
            "client_loop_stall_ms_p99_max": [
                round(pct(self.loop_stalls, q) * 1000, 1) for q in (0.99, 1.0)
            ],
            "longest_failed_request_s": round(s.longest_failure_s, 2),
            "503_without_retry_after": s.missing_retry_after,
            "first_ack_after_fault_s": {k: round(v, 2) for k, v in s.first_ack_after.items()},
        }
        print(json.dumps(figures, indent=2))
        if missing or doubled:
            self.failures.append(f"{len(missing)} missing, {len(doubled)} doubled")
        if s.unexpected:
            self.failures.append(f"unexpected failures, e.g. {s.unexpected[:5]}")
        if s.missing_retry_after:
            self.failures.append(f"{s.missing_retry_after} answers 503 without Retry-After")
        if s.longest_failure_s > REQUEST_TIMEOUT_S:
            self.failures.append("a request outlived its timeout")
        if a.store_outage_s:
            back = s.first_ack_after.get(len(self.windows) - 1)
            if back is None or back > RECOVERY_PROMISE_S:
                self.failures.append(f"service back {back} s after the store's return")
            self.check_outage_recorded()
        if failed and not self.windows:
            self.failures.append(f"{failed} non-2xx answers without any fault")
        if s.acked < 0.95 * expected_rate * self.elapsed and not self.windows:
            self.notes.append(
                "acknowledged less than 95% of the offered rate: client or server bound"
            )
        for note in self.notes:
            print(note)

    def check_outage_recorded(self) -> None:
        with self.server.client(timeout=60) as http:
            stops = http.get("/events", params={"type": "ServerStopped"}).json()["items"]
            timeouts = http.get("/events", params={"type": "ClientTimedOut"}).json()["items"]
        reasons = [e["data"]["reason"] for e in stops]
        print(f"ServerStopped reasons: {reasons}; ClientTimedOut events: {len(timeouts)}")
        if "store unavailable" not in reasons:
            self.failures.append("the store outage was not recorded as a server outage")
        if timeouts:
            self.failures.append(f"{len(timeouts)} clients were charged downtime for the outage")

    def compare_with_rebuild(self) -> None:
        """Crash once more, read models after that start; rebuild from 0; they must agree."""
        self.server.kill()
        self.server.start(120)
        live = self.read_models()
        self.server.kill()
        rebuilt = self.server.run_cli("projections", "rebuild", timeout=600)
        print(rebuilt.stdout.strip())
        self.server.start(120)
        again = self.read_models()
        same = again == live
        print(f"read models after crash-restart == rebuild from position 0: {same}")
        if not same:
            self.failures.append("read models differ from a rebuild")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "mongodb"], default="sqlite")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64, help="client connection pool")
    parser.add_argument("--kills", type=int, default=0, help="kill -9 the server this often")
    parser.add_argument("--store-outage-s", type=float, default=0, help="stop MongoDB once")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.store_outage_s and args.store != "mongodb":
        parser.error("--store-outage-s needs --store mongodb")
    work = Path(tempfile.mkdtemp(prefix="obt-soak-"))
    print(f"work directory: {work}", flush=True)
    code = 1
    try:
        code = asyncio.run(Soak(args, work).run())
        return code
    finally:
        if code == 0 and not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
        else:
            print(f"work directory kept (server logs in {work / 'logs'})")


if __name__ == "__main__":
    sys.exit(main())
