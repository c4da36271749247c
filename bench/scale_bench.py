"""Several OBT instances on one MongoDB stand-in. Run on a quiet machine; docs/scale.md
records the figures.

- `crash`: two instances under heartbeat load (60 agents, 120 heartbeats/s); the victim's next
  insert is held inside its append transaction (after the counter increment) and the victim
  is killed with SIGKILL meanwhile, so it dies holding the counter. Prints the survivor's
  longest stall and how long a restarted victim takes to answer /health.
- `live`: the delay from a change acknowledged by one instance to its /live message on another.
- `fault`: the fault run of tests/support/scale_fault.py (3 instances, 300 agents, the lease
  holder killed), `--runs` times; exit 1 if a promise broke.
- `throughput`: heartbeats/s acknowledged by `--instances` instances together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.simulated_agent import SimulatedAgent
from tests.support.processes import SecantusProcess, ServerProcess, start_together
from tests.support.scale import HeartbeatLoad, block_next_insert, counter_held, instance, running
from tests.support.scale_fault import fault_run
from tests.support.sse import SseReader


def crash_once(
    tmp: Path, agents: int, every_s: float, lease_ttl_s: float, observe_s: float
) -> dict[str, float]:
    secantus = SecantusProcess(tmp / "logs", tmp / "secantus", failpoints=True).start()
    survivor = instance(tmp, secantus, "survivor", "crash", lease_ttl_s=lease_ttl_s)
    victim = instance(tmp, secantus, "victim", "crash", lease_ttl_s=lease_ttl_s, tokens=survivor)
    try:
        survivor.start()
        victim.start()
        fleet: list[tuple[SimulatedAgent, ServerProcess]] = []
        with survivor.client(timeout=30) as http:
            for i in range(agents):
                agent = SimulatedAgent(survivor, f"crash-{i}")
                assert agent.register(http).status_code == 201
                fleet.append((agent, survivor if i % 2 else victim))
        load = HeartbeatLoad(fleet, every_s=every_s)
        stop = asyncio.Event()
        figures: dict[str, float] = {}

        async def scenario() -> None:
            runner = asyncio.create_task(load.run(stop))
            await asyncio.sleep(3)  # the load settles
            block_next_insert(secantus, "victim", 5000)
            held = 0
            while held < 3:  # the victim's append holds the counter (three probes in a row)
                held = held + 1 if await asyncio.to_thread(counter_held, secantus, "crash") else 0
            victim.kill()
            killed = time.monotonic()
            await asyncio.sleep(observe_s)
            figures["survivor_longest_stall_s"] = load.longest_stall("survivor", killed)
            restarted = time.monotonic()
            figures["restart_attempts"] = await asyncio.to_thread(_restart, victim)
            figures["restart_healthy_s"] = time.monotonic() - restarted
            stop.set()
            await runner

        asyncio.run(scenario())
        refused = sum(1 for a in load.acks if a.server == "survivor" and a.status != 200)
        figures["survivor_refused"] = refused
        return figures
    finally:
        for process in (victim, survivor, secantus):
            if process.running:
                process.kill()


def live_delay(
    tmp: Path, instances: int, agents: int, every_s: float, probes: int, same: bool = False
) -> list[float]:
    """Seconds from a status change acknowledged by one instance to its /live message on
    another, under a heartbeat load spread over every instance."""
    secantus = SecantusProcess(tmp / "logs", tmp / "secantus").start()
    servers = [instance(tmp, secantus, "i0", "live")]
    servers += [
        instance(tmp, secantus, f"i{i}", "live", tokens=servers[0]) for i in range(1, instances)
    ]
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            server.ready(60)
        watcher, writer = servers[0], servers[0 if same else -1]
        fleet: list[tuple[SimulatedAgent, ServerProcess]] = []
        probe = SimulatedAgent(writer, "probe")
        with writer.client(timeout=30) as http:
            assert probe.register(http).status_code == 201
            for i in range(agents):
                agent = SimulatedAgent(writer, f"load-{i}")
                assert agent.register(http).status_code == 201
                fleet.append((agent, servers[i % len(servers)]))
        delays: list[float] = []
        reader = SseReader(f"{watcher.api_url}/live?watch=client:probe")
        with running(HeartbeatLoad(fleet, every_s=every_s)), writer.client(timeout=30) as http:
            for n in range(probes):
                reachable = n % 2 == 1
                assert probe.heartbeat(http, reachable=reachable).status_code == 200
                acked = time.monotonic()
                want = "online" if reachable else "degraded"
                deadline = acked + 30
                while time.monotonic() < deadline:
                    found = [
                        m["received_at"]
                        for m in list(reader.messages)
                        if m["event"] == "client"
                        and m["received_at"] >= acked - 1
                        and json.loads(m["data"]).get("status") == want
                    ]
                    if found:
                        delays.append(max(0.0, min(found) - acked))
                        break
                    time.sleep(0.01)
                else:
                    delays.append(float("inf"))
                time.sleep(1.2)  # the feed sends at most one message per document per second
        reader.close()
        return delays
    finally:
        for process in (*servers, secantus):
            if process.running:
                process.kill()


def throughput(tmp: Path, instances: int, agents: int, seconds: float) -> float:
    """Heartbeats/s acknowledged in total by `instances` instances, each agent sending its
    next heartbeat as soon as the last is answered (agents spread over the instances)."""
    secantus = SecantusProcess(tmp / "logs", tmp / "secantus").start()
    servers = [instance(tmp, secantus, "i0", "rate")]
    servers += [
        instance(tmp, secantus, f"i{i}", "rate", tokens=servers[0]) for i in range(1, instances)
    ]
    try:
        start_together(*servers, timeout=60)
        fleet: list[tuple[SimulatedAgent, ServerProcess]] = []
        with servers[0].client(timeout=30) as http:
            for i in range(agents):
                agent = SimulatedAgent(servers[0], f"rate-{i}")
                assert agent.register(http).status_code == 201
                fleet.append((agent, servers[i % instances]))
        load = HeartbeatLoad(fleet, every_s=0.0)
        with running(load):
            time.sleep(3)  # warm up
            started = time.monotonic()
            time.sleep(seconds)
            ended = time.monotonic()
        done = sum(1 for a in load.acks if a.status == 200 and started <= a.at < ended)
        return done / (ended - started)
    finally:
        for process in (*servers, secantus):
            if process.running:
                process.kill()


def fault(runs: int, agents: int, every_s: float, ttl_s: float) -> int:
    failed = 0
    rows = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="obt-scale-") as tmp:
            report = fault_run(Path(tmp), agents=agents, every_s=every_s, ttl_s=ttl_s)
        rows.append(report)
        failed += bool(report.broken)
        print(
            f"run {run + 1}: new holder after {report.takeover_s:.2f} s, latest timeout "
            f"{report.latest_timeout_s:.2f} s past its deadline, {report.acknowledged} "
            f"heartbeats acknowledged, {report.timeouts} timeouts, "
            f"broken: {report.broken or 'none'}"
        )
    takeovers = sorted(r.takeover_s for r in rows)
    print(
        f"{runs} runs, {failed} with a broken promise; takeover median "
        f"{statistics.median(takeovers):.2f} s, max {takeovers[-1]:.2f} s"
    )
    return 1 if failed else 0


def _restart(victim: ServerProcess) -> int:
    """Start the victim again until it serves (a start may exit while the log is held)."""
    for attempt in range(1, 10):
        try:
            victim.start(60)
            return attempt
        except AssertionError:
            continue
    raise AssertionError(f"the victim did not start\n{victim.output()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["crash", "live", "fault", "throughput"])
    parser.add_argument("--seconds", type=float, default=20.0, help="throughput: measured time")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--same", action="store_true", help="live: watch the writing instance")
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between heartbeats")
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--observe", type=float, default=20.0, help="seconds after the kill")
    args = parser.parse_args()
    if args.scenario == "fault":
        return fault(args.runs, args.agents, args.every, args.lease_ttl)
    if args.scenario == "throughput":
        with tempfile.TemporaryDirectory(prefix="obt-scale-") as tmp:
            rate = throughput(Path(tmp), args.instances, args.agents, args.seconds)
        print(
            f"{args.instances} instance(s), {args.agents} agents beating back to back: "
            f"{rate:.0f} heartbeats/s acknowledged"
        )
        return 0
    if args.scenario == "live":
        with tempfile.TemporaryDirectory(prefix="obt-scale-") as tmp:
            delays = sorted(
                live_delay(
                    Path(tmp), args.instances, args.agents, args.every, args.probes, args.same
                )
            )
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"live-feed delay across instances ({args.instances} instances, {args.agents} agents "
            f"every {args.every} s, {len(delays)} probes): "
            f"median {statistics.median(delays):.3f} s, p99 {p99:.3f} s, max {delays[-1]:.3f} s"
        )
        return 0
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="obt-scale-") as tmp:
            figures = crash_once(Path(tmp), args.agents, args.every, args.lease_ttl, args.observe)
        results.append(figures)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in figures.items()))
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key}: median {statistics.median(values):.2f}, max {max(values):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
