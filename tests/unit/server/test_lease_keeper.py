"""The jobs lease as the instances see it, on a fake clock: one holder runs the jobs, a dead
holder is replaced within the TTL, a paused holder stops before another can start, and the
timeout scheduler of two instances records one timeout per silence, late by less than the
TTL, across a handover."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from obt.commands.handlers import ClientCommands
from obt.commands.lifecycle import ServerLifecycle
from obt.commands.messages import RecordHeartbeat, RegisterClient
from obt.commands.repository import ClientRepository
from obt.domain.liveness import LivenessPolicy
from obt.errors import StoreUnavailable
from obt.lease_keeper import LeaseKeeper, lease_timing
from obt.scheduler import TimeoutScheduler
from obt.store.lease import Fence, MemoryLease, MemoryLeases, current_fence
from obt.store.memory import MemoryStore
from tests.support.clock import FakeClock

TTL_S = 10.0
ENROLLMENT = "enrollment-token-for-tests-0123456789"


def keeper(name: str, leases: MemoryLeases) -> LeaseKeeper:
    duration, poll = lease_timing(TTL_S)
    return LeaseKeeper(
        MemoryLease(name, duration, leases=leases), poll_s=poll, monotonic=leases.monotonic
    )


class Time:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.started = self.clock.now()

    def monotonic(self) -> float:
        return (self.clock.now() - self.started).total_seconds()


async def test_a_lone_instance_holds_the_lease_and_its_job_appends_carry_the_token() -> None:
    time = Time()
    a = keeper("a", MemoryLeases(time.monotonic))
    assert a.hold_reason() is not None  # before the first renewal: not yet
    assert await a.tick()
    assert a.hold_reason() is None
    assert current_fence() == Fence("jobs", 1)
    assert a.describe()["holding"] is True


async def test_a_dead_holder_is_replaced_within_the_ttl_with_a_greater_token() -> None:
    time = Time()
    leases = MemoryLeases(time.monotonic)
    a, b = keeper("a", leases), keeper("b", leases)
    assert await a.tick()
    assert not await b.tick()
    assert b.hold_reason() == "another instance holds the jobs lease"
    for _ in range(30):  # both renew every poll for a while
        time.clock.advance(a.poll_s)
        assert await a.tick()
        assert not await b.tick()
    died = time.monotonic()  # a dies right after a renewal: the worst case
    while not await b.tick():
        time.clock.advance(b.poll_s)
        assert time.monotonic() - died <= TTL_S, "no new holder within the TTL"
    assert b.token is not None and a.token is not None and b.token > a.token
    assert b.hold_reason() is None


async def test_a_paused_holder_stops_running_jobs_before_another_can_take_over() -> None:
    time = Time()
    leases = MemoryLeases(time.monotonic)
    a, b = keeper("a", leases), keeper("b", leases)
    assert await a.tick()
    while not await b.tick():  # a is paused (no renewals); b asks every poll
        time.clock.advance(b.poll_s)
    assert not a.holding, "a still thinks it holds the lease b has taken"
    assert a.hold_reason() is not None
    assert not await a.tick()  # when it wakes, the lease is b's
    assert a.token is None


async def test_a_store_error_keeps_the_term_already_granted_but_no_longer() -> None:
    time = Time()

    class FailingLease(MemoryLease):
        failing = False

        async def acquire(self) -> int | None:
            if self.failing:
                raise StoreUnavailable("the store is down")
            return await super().acquire()

    duration, poll = lease_timing(TTL_S)
    lease = FailingLease("a", duration, leases=MemoryLeases(time.monotonic))
    a = LeaseKeeper(lease, poll_s=poll, monotonic=time.monotonic)
    assert await a.tick()
    lease.failing = True
    time.clock.advance(poll)
    assert await a.tick()  # still within the term it was granted
    assert a.last_error is not None
    time.clock.advance(duration)
    assert not await a.tick()
    assert a.hold_reason() is not None


async def test_a_released_lease_is_taken_at_the_next_poll() -> None:
    time = Time()
    leases = MemoryLeases(time.monotonic)
    a, b = keeper("a", leases), keeper("b", leases)
    assert await a.tick()
    await a.release()
    assert a.hold_reason() is not None
    assert await b.tick()


@dataclass
class Instance:
    name: str
    keeper: LeaseKeeper
    scheduler: TimeoutScheduler
    commands: ClientCommands
    alive: bool = True


async def test_two_instances_record_one_timeout_per_silence_across_a_handover() -> None:
    time = Time()
    store = MemoryStore()
    await store.open()
    leases = MemoryLeases(time.monotonic)
    policy = LivenessPolicy(10, 30)
    instances = []
    for name in ("a", "b"):
        lifecycle = ServerLifecycle(store, server_id=name)
        await lifecycle.record_start(time.clock.now())
        commands = ClientCommands(
            ClientRepository(store),
            time.clock,
            policy,
            enrollment_token=ENROLLMENT,
            server_started_at=lambda lc=lifecycle: lc.started_at,  # type: ignore[misc]
            server_id=name,
        )
        lease = keeper(name, leases)
        instances.append(
            Instance(
                name,
                lease,
                TimeoutScheduler(commands.detect_timeouts, 1.0, lease.hold_reason),
                commands,
            )
        )
    a, b = instances
    session = str(uuid.uuid4())
    await a.commands.register(
        RegisterClient(
            client_id="c1",
            hostname="h",
            platform={"system": "Linux", "release": "6.1", "machine": "x86_64"},
            agent_version="0.1.0",
            labels={},
            ollama={"installed": True, "version": "0.5.1", "base_url": "", "reachable": True},
            session_id=session,
            credential=ENROLLMENT,
        )
    )
    last_seen = time.clock.now()
    for second in range(1, 200):
        time.clock.advance(1.0)
        if second <= 40:  # heartbeats land on both instances in turn, then silence
            target = instances[second % 2]
            await target.commands.heartbeat(
                RecordHeartbeat(
                    client_id="c1",
                    seq=second,
                    session_id=session,
                    sent_at=time.clock.now(),
                    ollama={
                        "reachable": True,
                        "version": "0.5.1",
                        "latency_ms": 1.0,
                        "error": None,
                    },
                    models_digest=None,
                )
            )
            last_seen = time.clock.now()
        if second == 65:
            a.alive = False  # the holder dies 5 s before the timeout falls due
        for instance in instances:
            if instance.alive:
                await instance.keeper.tick()
                await instance.scheduler.run_once()
    timeouts = [e for e in await store.read_stream("client-c1") if e.type == "ClientTimedOut"]
    assert len(timeouts) == 1
    detected = timeouts[0].recorded_at
    due = last_seen.timestamp() + policy.timeout_s
    assert detected.timestamp() - due <= TTL_S, "the timeout was late by more than the TTL"
    assert b.scheduler.timeouts_emitted == 1 and a.scheduler.timeouts_emitted == 0
    await store.close()
