"""The several-instances fault run, shared by tests/integration/test_scale_fault.py (once) and
`python -m bench.scale_bench fault` (five times): three instances on the stand-in, agents
spread over them, the jobs lease holder killed with SIGKILL under load.

It returns what it measured and every promise it checked broken, as lists, so the bench can
print figures and the test can assert: no acknowledged heartbeat lost or doubled, no silence
timed out twice, the dead instance's agents timed out late by less than the lease TTL, a new
holder within the TTL, the other instances' live feeds still live, and the stored read models
equal a rebuild of the log.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from tests.integration.simulated_agent import SimulatedAgent, projections_at_head
from tests.support.processes import SecantusProcess, ServerProcess, start_together, wait_until
from tests.support.scale import HeartbeatLoad, heartbeats_in_log, instance, running
from tests.support.sse import SseReader

DB = "fault"
TIMEOUT_S = 3.0
TICK_S = 0.2


@dataclass
class FaultReport:
    takeover_s: float = 0.0
    acknowledged: int = 0
    timeouts: int = 0
    latest_timeout_s: float = 0.0  # the latest timeout's delay past its deadline
    killed_at: float = 0.0  # wall clock
    load_started_at: float = 0.0  # wall clock
    load_stopped_at: float = 0.0  # wall clock
    broken: list[str] = field(default_factory=list)


def lease_doc(client: MongoClient[dict[str, Any]]) -> dict[str, Any] | None:
    return client[DB].leases.find_one({"_id": "jobs"})


def fault_run(
    tmp: Path, *, agents: int = 300, every_s: float = 3.0, ttl_s: float = 4.0
) -> FaultReport:
    report = FaultReport()
    secantus = SecantusProcess(tmp / "logs", tmp / "secantus").start()
    first = instance(tmp, secantus, "i0", DB, lease_ttl_s=ttl_s, timeout_s=TIMEOUT_S)
    servers = [first] + [
        instance(tmp, secantus, f"i{i}", DB, lease_ttl_s=ttl_s, timeout_s=TIMEOUT_S, tokens=first)
        for i in (1, 2)
    ]
    mongo: MongoClient[dict[str, Any]] = MongoClient(secantus.uri, serverSelectionTimeoutMS=5000)
    readers: list[SseReader] = []
    try:
        start_together(*servers, timeout=60)
        by_name = {s.name: s for s in servers}
        doc = wait_until(lambda: lease_doc(mongo), 20, "nobody took the jobs lease")
        victim = by_name[doc["holder"]]
        survivors = [s for s in servers if s is not victim]
        fleet: list[tuple[SimulatedAgent, ServerProcess]] = []
        clients = {s.name: s.client(timeout=60) for s in servers}
        try:
            for i in range(agents):
                server = servers[i % 3]
                fleet.append((SimulatedAgent(server, f"agent-{i:03d}"), server))
            # In parallel, as a fleet coming up does: the first agents wait less in silence.
            with ThreadPoolExecutor(max_workers=12) as pool:
                codes = list(pool.map(lambda pair: pair[0].register(clients[pair[1].name]), fleet))
            assert {r.status_code for r in codes} == {201}
        finally:
            for http in clients.values():
                http.close()
        # Each survivor's dashboard watches a client that beats through the other survivor.
        watched = {
            s.name: next(a for a, t in fleet if t is not s and t is not victim) for s in survivors
        }
        readers = [
            SseReader(f"{s.api_url}/live?watch=client:{watched[s.name].client_id}")
            for s in survivors
        ]
        load = HeartbeatLoad(fleet, every_s=every_s)
        report.load_started_at = time.time()
        with running(load):
            wait_until(
                lambda: len({a.server for a in load.acks if a.status == 200}) == 3,
                60,
                "not every instance acknowledged heartbeats",
            )
            victim.kill()
            killed = time.monotonic()
            report.killed_at = time.time()
            new = wait_until(
                lambda: (d := lease_doc(mongo)) is not None and d["holder"] != victim.name and d,
                ttl_s * 4,
                "no new holder",
                interval=0.02,
            )
            report.takeover_s = time.monotonic() - killed
            if report.takeover_s > ttl_s:
                report.broken.append(f"new holder {new['holder']} after {report.takeover_s:.1f} s")
            orphans = {a.client_id for a, s in fleet if s is victim}
            wait_until(
                lambda: orphans <= timed_out_clients(mongo),
                ttl_s + TIMEOUT_S + 60,
                "the dead instance's agents did not all time out",
                interval=0.2,
            )
            for reader, server in zip(readers, survivors, strict=True):
                try:
                    wait_until(
                        lambda r=reader: any(
                            m["event"] == "client" and m["received_at"] > killed + ttl_s
                            for m in list(r.messages)
                        ),
                        30,
                        "",
                    )
                except AssertionError:
                    report.broken.append(f"{server.name}'s live feed went quiet after the kill")
        report.load_stopped_at = time.time()
        _check_log(report, mongo, secantus, fleet, victim, ttl_s)
        holder = by_name[new["holder"]]
        _check_rebuild(report, mongo, holder)
        return report
    finally:
        for reader in readers:
            reader.close()
        mongo.close()
        for process in (*servers, secantus):
            if process.running:
                process.kill()


def timed_out_clients(mongo: MongoClient[dict[str, Any]]) -> set[str]:
    found = mongo[DB].events.find({"type": "ClientTimedOut"}, {"data.client_id": 1})
    return {d["data"]["client_id"] for d in found}


def _check_log(
    report: FaultReport,
    mongo: MongoClient[dict[str, Any]],
    secantus: SecantusProcess,
    fleet: list[tuple[SimulatedAgent, ServerProcess]],
    victim: ServerProcess,
    ttl_s: float,
) -> None:
    stored = heartbeats_in_log(secantus, DB)
    doubled = [k for k, n in stored.items() if n > 1]
    if doubled:
        report.broken.append(f"{len(doubled)} heartbeats recorded twice, e.g. {doubled[0]}")
    for agent, _ in fleet:
        report.acknowledged += len(agent.acknowledged)
        lost = [(s, q) for s, q in agent.acknowledged if (agent.client_id, s, q) not in stored]
        if lost:
            report.broken.append(f"{agent.client_id}: {len(lost)} acknowledged heartbeats lost")
    timeouts = list(mongo[DB].events.find({"type": "ClientTimedOut"}, {"data": 1}))
    report.timeouts = len(timeouts)
    silences = Counter((t["data"]["client_id"], t["data"]["last_seen"]) for t in timeouts)
    twice = [k for k, n in silences.items() if n > 1]
    if twice:
        report.broken.append(f"{len(twice)} silences timed out twice, e.g. {twice[0]}")
    orphans = {a.client_id for a, s in fleet if s is victim}
    timed_out = {t["data"]["client_id"] for t in timeouts}
    if not orphans <= timed_out:
        report.broken.append(
            f"{len(orphans - timed_out)} of the dead instance's agents never timed out"
        )
    for t in timeouts:
        data = t["data"]
        due = datetime.fromisoformat(data["last_seen"]).timestamp() + data["timeout_s"]
        detected = datetime.fromisoformat(data["detected_at"]).timestamp()
        late = detected - due
        if not report.load_started_at <= due - data["timeout_s"] < report.load_stopped_at:
            # Silent from registration to the load's start, or since the whole fleet stopped
            # at the end: bursts of registrations or timeouts the loaded stand-in takes its
            # time over; what is promised is about silences while the fleet runs (the kill).
            continue
        report.latest_timeout_s = max(report.latest_timeout_s, late)
        if late > ttl_s:
            report.broken.append(
                f"{data['client_id']} timed out {late:.1f} s late, "
                f"{detected - report.killed_at:+.1f} s from the kill"
            )


def _docs(mongo: MongoClient[dict[str, Any]], db: str) -> dict[tuple[str, str], Any]:
    return {(d["collection"], d["key"]): d["doc"] for d in mongo[db].docs.find({}, {"_id": 0})}


def _check_rebuild(
    report: FaultReport, mongo: MongoClient[dict[str, Any]], holder: ServerProcess
) -> None:
    """Once the log is quiet and the holder has stored everything, its read models equal a
    rebuild of a copy of the log (in a database of its own)."""

    def quiet() -> bool:
        head = mongo[DB].counters.find_one({"_id": "events"})["seq"]
        with httpx.Client(base_url=holder.api_url, timeout=10) as http:
            if not projections_at_head(http):
                return False
        return bool(mongo[DB].counters.find_one({"_id": "events"})["seq"] == head)

    wait_until(quiet, 60, "the log did not go quiet", interval=0.5)
    copy = f"{DB}_rebuild"
    mongo.drop_database(copy)
    events = list(mongo[DB].events.find({}))
    mongo[copy].events.insert_many(events)
    mongo[copy].counters.insert_many(list(mongo[DB].counters.find({})))
    mongo[copy].streams.insert_many(list(mongo[DB].streams.find({})))
    env_db = holder.mongodb_db
    holder.mongodb_db = copy
    try:
        done = holder.run_cli("projections", "rebuild", timeout=120)
    finally:
        holder.mongodb_db = env_db
    if done.returncode != 0:
        report.broken.append(f"the rebuild failed: {done.stderr[-500:]}")
        return
    rebuilt = _docs(mongo, copy)

    def equal() -> bool:
        return _docs(mongo, DB) == rebuilt  # the holder's held writes may still be on the way

    try:
        wait_until(equal, 20, "")
    except AssertionError:
        live = _docs(mongo, DB)
        differ = sorted(k for k in set(live) | set(rebuilt) if live.get(k) != rebuilt.get(k))
        report.broken.append(
            f"{len(differ)} read-model documents differ from a rebuild: {differ[:5]}"
        )
