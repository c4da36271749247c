"""Synthetic fleet histories for benchmarks, written straight into a SQLite event log."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from obt.bootstrap import make_codec
from obt.domain.events import (
    ClientDeregistered,
    ClientRegistered,
    ClientTimedOut,
    Event,
    HeartbeatReceived,
    ModelAdded,
    ModelLoaded,
    OllamaBecameUnavailable,
    client_stream,
)
from obt.store.ports import NewEvent
from obt.store.sqlite import SQLiteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bench_secret(client: int) -> str:
    """The agent secret of client N when its history is written `with_secrets`."""
    return f"bench-secret-{client:06d}-0123456789abcdef"


def bench_session(client: int) -> str:
    return str(uuid.UUID(int=client + 1))


def client_history(
    client: int,
    count: int,
    start: datetime = T0,
    step_s: float = 10,
    stop: bool = False,
    with_secrets: bool = False,
) -> list[tuple[Event, datetime]]:
    """`count` events of one client: registration, models, then heartbeats every `step_s`,
    with Ollama outages and an occasional timeout. `with_secrets`: registered with
    `bench_secret(client)`, so a load generator can send its heartbeats."""
    cid = f"bench-{client:05d}"
    session = bench_session(client)
    secret_sha256 = (
        hashlib.sha256(bench_secret(client).encode()).hexdigest() if with_secrets else "0" * 64
    )
    at = start + timedelta(seconds=client % 10)
    out: list[tuple[Event, datetime]] = [
        (
            ClientRegistered(
                client_id=cid,
                hostname=f"gpu-{client:05d}",
                platform={"system": "Linux", "release": "6.8", "machine": "x86_64"},
                agent_version="0.1.0",
                labels={"rack": str(client % 8)},
                ollama={"installed": True, "version": "0.5.7", "base_url": "", "reachable": True},
                session_id=session,
                secret_sha256=secret_sha256,
            ),
            at,
        )
    ]
    for m in range(3):
        digest = f"sha256:{m}{client % 2 if m == 2 else ''}"  # one model drifts across hosts
        out.append(
            (ModelAdded(client_id=cid, name=f"model-{m}", digest=digest, size=4 * 10**9), at)
        )
    out.append(
        (ModelLoaded(client_id=cid, name="model-0", digest="sha256:0", size=1, size_vram=1), at)
    )
    seq = 0
    while len(out) < count:
        seq += 1
        at += timedelta(seconds=step_s)
        reachable = seq % 50 not in (1, 2, 3)
        out.append(
            (
                HeartbeatReceived(
                    client_id=cid,
                    seq=seq,
                    session_id=session,
                    sent_at=at.isoformat(),
                    clock_skew_ms=3,
                    ollama={
                        "reachable": reachable,
                        "version": "0.5.7",
                        "latency_ms": 2.5,
                        "error": None if reachable else "connection refused",
                    },
                    models_digest="f" * 64,
                ),
                at,
            )
        )
        if seq % 50 == 1:
            out.append((OllamaBecameUnavailable(client_id=cid, error="connection refused"), at))
        if seq % 200 == 0:
            out.append(
                (
                    ClientTimedOut(
                        client_id=cid,
                        last_seen=at,
                        offline_since=at + timedelta(seconds=10),
                        detected_at=at + timedelta(seconds=31),
                        timeout_s=30,
                    ),
                    at + timedelta(seconds=31),
                )
            )
            at += timedelta(seconds=max(60, step_s))
    out = out[:count]
    if stop:  # the agent stopped cleanly: no timeouts fire when a server opens this history
        out[-1] = (ClientDeregistered(client_id=cid, session_id=session, reason="bench"), at)
    return out


async def write_history(
    path: Path,
    *,
    clients: int,
    per_client: int,
    start: datetime = T0,
    step_s: float = 10,
    stop: bool = False,
    with_secrets: bool = False,
) -> int:
    """Write every client's history, interleaved in time as a live fleet's would be."""
    store = SQLiteStore(path, make_codec())
    await store.open()
    histories = [
        client_history(c, per_client, start, step_s, stop, with_secrets) for c in range(clients)
    ]
    chunk = 50
    try:
        for offset in range(0, per_client, chunk):
            # Every client's next chunk at once: the store commits them as one group.
            await asyncio.gather(
                *(
                    store.append(
                        client_stream(f"bench-{c:05d}"),
                        [
                            NewEvent(id=str(uuid.uuid4()), type=e.type_name(), data=e.to_data())
                            for e, _ in part
                        ],
                        expected_version=offset,
                        recorded_at=part[-1][1],
                    )
                    for c, events in enumerate(histories)
                    if (part := events[offset : offset + chunk])
                )
            )
        return await store.head()
    finally:
        await store.close()
