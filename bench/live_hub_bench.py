"""The live hub alone at fleet scale: what it sends each kind of subscriber, and what it costs.

    python -m bench.live_hub_bench [--clients 100000] [--rate 10000] [--seconds 20]

An in-memory store and the real projectors hold `--clients` clients (one registered through
the commands, the rest copies of its document under other ids); the real LiveHub is told of
`--rate` client changes a second (each client in turn, as heartbeats would change them) in
ten batches a second, as the projection runner would, and flushes once a simulated second.
Subscribers: plain (no watch), the fleet page (counts, timeline, 100 named rows), a client's
page. Reported: bytes a second each is sent (SSE-encoded as the route encodes them), messages
and resets a second, and the CPU (and wall) time the hub spent per simulated second (publish +
flush): its share of one core. Time is simulated; nothing sleeps.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import time
from typing import Any

import orjson
from sse_starlette import ServerSentEvent

from obt.bootstrap import make_codec
from obt.live import LiveHub, LiveMessage, Subscription, status_counts
from obt.live_changes import Watch
from obt.projections.base import Change
from obt.projections.clients import ClientsProjector
from obt.projections.models import ModelsProjector
from obt.projections.queries import ReadModels
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet

ROWS = 100
BATCHES_PER_S = 10


def encoded(messages: list[LiveMessage]) -> int:
    return sum(
        len(
            ServerSentEvent(
                id=str(m.id), event=m.event, data=orjson.dumps(m.data).decode()
            ).encode()
        )
        for m in messages
    )


async def fleet_of(clients: int) -> tuple[Fleet, ClientsProjector, ModelsProjector]:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    await fleet.register("template")
    await fleet.heartbeat("template")
    await fleet.project()
    projector = fleet.runner.projector("clients")
    models = fleet.runner.projector("models")
    assert isinstance(projector, ClientsProjector) and isinstance(models, ModelsProjector)
    template, state = projector.docs.pop("template"), projector.live.pop("template")
    for c in range(clients):
        cid = f"bench-{c:06d}"
        doc = copy.deepcopy(template)
        doc.update(client_id=cid, hostname=f"host-{cid}")
        projector.docs[cid] = doc
        projector.live[cid] = state
    return fleet, projector, models


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet, projector, models = await fleet_of(args.clients)
    hub = LiveHub(
        ReadModels(fleet.store, projector, models),
        fleet.clock,
        counts=lambda: status_counts(projector),
    )
    position = await fleet.store.head()
    hub.begin(position)
    ids = list(projector.docs)
    rows = ",".join(f"client:{cid}" for cid in ids[:ROWS])
    subscribers: dict[str, Subscription] = {
        "plain": hub.subscribe(None)[0],
        "fleet page": hub.subscribe(None, Watch.parse([f"counts,timeline,{rows}"]))[0],
        "client page": hub.subscribe(
            None, Watch.parse([f"counts,client:{ids[0]},timeline:{ids[0]}"])
        )[0],
    }
    await hub.flush()  # the named rows, as a new page gets them
    for sub in subscribers.values():
        while not sub.queue.empty():
            sub.queue.get_nowait()
    sent = {name: {"bytes": 0, "messages": 0, "resets": 0} for name in subscribers}
    per_batch = args.rate // BATCHES_PER_S
    busy = cpu = 0.0
    turn = 0
    for _ in range(args.seconds):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(BATCHES_PER_S):
            changes = []
            for _ in range(per_batch):
                position += 1
                cid = ids[turn % len(ids)]
                turn += 1
                projector.docs[cid]["position"] = position
                changes.append(Change("client", cid, position))
            hub.publish(changes)
        await hub.flush()
        busy += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        fleet.clock.advance(1)
        for name, sub in subscribers.items():
            while not sub.queue.empty():
                messages = sub.queue.get_nowait()
                sent[name]["bytes"] += encoded(messages)
                sent[name]["messages"] += len(messages)
                sent[name]["resets"] += sum(m.event == "reset" for m in messages)
    return {"busy_s": busy, "cpu_s": cpu, "sent": sent, "index": len(hub.index)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_hub_bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=10_000, help="client changes a second")
    parser.add_argument("--seconds", type=int, default=20, help="simulated seconds")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(
        f"{args.clients:,} clients, {args.rate:,} client changes/s, {args.seconds} simulated s: "
        f"publish + flush took {result['cpu_s'] / args.seconds * 1000:.0f} ms of CPU "
        f"({result['busy_s'] / args.seconds * 1000:.0f} ms wall) per second, "
        f"index {result['index']:,} documents"
    )
    for name, figures in result["sent"].items():
        print(
            f"  {name:12} {figures['bytes'] / args.seconds / 1024:8.1f} KB/s "
            f"{figures['messages'] / args.seconds:8.1f} messages/s "
            f"{figures['resets'] / args.seconds:4.1f} resets/s"
        )


if __name__ == "__main__":
    main()
