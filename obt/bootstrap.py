"""Wiring: the one place that builds OBT's parts, used by the app's lifespan, the CLI and tests.

Nothing here runs at import time; `bootstrap()` builds, `OBT.start()` starts the background
work (server-started event, projections, timeout scheduler), `OBT.stop()` undoes it in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from obt.commands.alerts import AlertRuleCommands
from obt.commands.handlers import ClientCommands, Clock
from obt.commands.lifecycle import ServerLifecycle
from obt.commands.operations import OperationCommands
from obt.commands.repository import ClientRepository
from obt.compaction import compaction_job
from obt.domain.events import LATEST_SCHEMA_VERSIONS
from obt.domain.liveness import LivenessPolicy
from obt.domain.upcasters import UPCASTERS
from obt.errors import OBTError, StoreUnavailable
from obt.jobs import BackgroundJobs
from obt.jobs.alerts import alert_evaluator
from obt.jobs.notifications import notification_delivery
from obt.jobs.operations import operation_dispatcher
from obt.lease_keeper import LeaseKeeper, lease_timing
from obt.live import LiveHub
from obt.metrics import Metrics
from obt.notify.targets import TargetNotifier
from obt.projections.base import Change
from obt.projections.client_state import ClientStateProjector
from obt.projections.clients import ClientsProjector
from obt.projections.models import ModelsProjector
from obt.projections.queries import ReadModels
from obt.projections.runner import ProjectionRunner
from obt.scheduler import TimeoutScheduler
from obt.settings import Settings, ensure_token
from obt.store.codec import EventCodec
from obt.store.lease import Lease, MemoryLease
from obt.store.ports import Store
from obt.store_monitor import StoreMonitor

log = logging.getLogger(__name__)

# Longer than MongoDB's default transaction lifetime (60 s): a start waits that out at worst.
START_RETRY_S = 90.0
START_RETRY_PAUSE_S = 1.0


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def tune_gc() -> None:
    """Garbage collection for a long-running process that allocates in bursts.

    What exists now (settings, read models, cached states) lives as long as the process: keep
    it out of the collector's scans, whose pauses otherwise show in request latency on a large
    fleet. Requests and replays allocate many short-lived objects: collect the young
    generation less often.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def release_startup_memory() -> None:
    """Hand back to the OS what loading every snapshot and document at start-up left free.

    Start-up decodes each client's documents several times over (snapshots, read models);
    glibc keeps the freed heap unless asked, and for a large fleet that is most of the RSS.
    """
    gc.collect()
    tune_gc()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc (macOS, musl): nothing to ask
    libc.malloc_trim(0)


def make_codec() -> EventCodec:
    return EventCodec(upcasters=UPCASTERS, latest_versions=LATEST_SCHEMA_VERSIONS)


def make_store(settings: Settings, codec: EventCodec) -> Store:
    if settings.store == "mongodb":
        from obt.store.mongodb import MongoStore  # only needed, and importable, on demand

        assert settings.mongodb_uri is not None
        return MongoStore(
            settings.mongodb_uri,
            settings.mongodb_db,
            codec,
            instance_name=settings.instance,
            # A dead instance's open transaction is aborted within the lease TTL (docs/scale.md).
            instance_expire_s=settings.lease_ttl_s / 2,
        )
    from obt.store.sqlite import SQLiteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    synchronous: Literal["FULL", "NORMAL"] = (
        "FULL" if settings.sqlite_synchronous == "full" else "NORMAL"
    )
    return SQLiteStore(settings.sqlite_path, codec, synchronous=synchronous)


def make_lease(settings: Settings, store: Store) -> LeaseKeeper:
    """The jobs lease: shared through the store where several instances can share it
    (MongoDB), else in this process's memory (SQLite: one process, trivially the holder)."""
    duration, poll = lease_timing(settings.lease_ttl_s)
    shared = getattr(store, "lease", None)
    lease: Lease = (
        shared(settings.instance, duration)
        if callable(shared)
        else MemoryLease(settings.instance, duration)
    )
    return LeaseKeeper(lease, poll_s=poll)


@dataclass
class OBT:
    settings: Settings
    store: Store
    clock: Clock
    repo: ClientRepository
    commands: ClientCommands
    runner: ProjectionRunner
    read_models: ReadModels
    lifecycle: ServerLifecycle
    scheduler: TimeoutScheduler
    store_monitor: StoreMonitor
    live: LiveHub
    metrics: Metrics
    alert_rules: AlertRuleCommands
    operations: OperationCommands
    lease: LeaseKeeper
    jobs: BackgroundJobs
    enrollment_token: str
    admin_token: str
    enrollment_token_created: bool = False
    admin_token_created: bool = False
    started: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self, *, scheduler: bool = True) -> None:
        """Record the start, bring projections and the aggregate cache up to date, run."""
        await self._record_start()
        if scheduler:
            await self.lease.tick()  # a lone instance holds the lease before its first sweep
            if self.lease.lease.shared:
                # Several instances: only the holder stores read models (see the runner).
                self.runner.may_persist = lambda: self.lease.holding
        await self.runner.start()
        # The live feed can resume subscribers from every change the catch-up reports.
        self.live.begin(max(self.runner.positions.values(), default=0))
        caught_up = await self.runner.catch_up()
        snapshots = self.runner.projector("client_state")
        assert isinstance(snapshots, ClientStateProjector)
        clients = await self.repo.warm(
            snapshots.states.values(), self.runner.positions["client_state"]
        )
        log.info("projections caught up (%d events), %d clients loaded", caught_up, clients)
        self.read_models.warm(self.clock.now())
        release_startup_memory()
        self._tasks.append(asyncio.create_task(self.runner.run(self._stop), name="projections"))
        self._tasks.append(
            asyncio.create_task(self.store_monitor.run(self._stop), name="store-monitor")
        )
        self.live.start()
        if scheduler:
            self._tasks.append(asyncio.create_task(self.lease.run(self._stop), name="jobs-lease"))
            self.scheduler.start(self.clock.now())
            self._tasks.append(asyncio.create_task(self.jobs.run(self._stop), name="jobs"))
        self.started = True

    async def _record_start(self) -> None:
        """Record the start, waiting while the log refuses it rather than exiting: another
        instance killed inside a transaction holds the log until its sessions are killed
        (within OBT_LEASE_TTL_S) or, without that, until MongoDB's transaction lifetime ends.
        A store no other process writes (SQLite) has no such holder: its refusal (a full disk,
        a read-only file) is final, and the start fails at once, saying why."""
        deadline = time.monotonic() + START_RETRY_S
        while True:
            try:
                await self.lifecycle.record_start(self.clock.now())
                return
            except StoreUnavailable as exc:
                if not self.lease.lease.shared or time.monotonic() >= deadline:
                    raise
                log.warning(
                    "the store does not take this server's start yet; retrying in %.0f s "
                    "(an instance that died inside a transaction may hold the log): %s",
                    START_RETRY_PAUSE_S,
                    exc,
                )
                await asyncio.sleep(START_RETRY_PAUSE_S)

    async def stop(self, reason: str = "shutdown") -> None:
        self.scheduler.shutdown()
        if self.started and self.store_monitor.store_down:
            # The gap since the outage began is recorded as unknown on the next start anyway
            # (unclean start); waiting on a dead store here would only delay the exit.
            log.warning("store unreachable at shutdown: the stop is not recorded")
        elif self.started:
            try:
                await self.lifecycle.record_stop(self.clock.now(), reason)
            except OBTError as exc:
                log.warning("could not record the server stop: %s", exc)
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, OBTError):
                await asyncio.wait_for(task, timeout=5)
        self._tasks.clear()
        await self.jobs.close()
        await self.lease.release()  # another instance takes the jobs over at once
        await self.live.stop()
        await self.store.close()
        self.started = False


async def bootstrap(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> OBT:
    """Build every part and open the store (which checks it is usable); start nothing yet."""
    codec = make_codec()
    store = store or make_store(settings, codec)
    await store.open()
    clock = clock or SystemClock()
    enrollment, enrollment_created = ensure_token(
        settings.enrollment_token_path, settings.enrollment_token
    )
    admin, admin_created = ensure_token(settings.admin_token_path, settings.admin_token)
    policy = LivenessPolicy(settings.heartbeat_interval_s, settings.heartbeat_timeout_s)
    metrics = metrics or Metrics()
    repo = ClientRepository(store, on_append=metrics.count_appends)
    lifecycle = ServerLifecycle(store)
    store_monitor = StoreMonitor(store, lifecycle, clock)
    commands = ClientCommands(
        repo,
        clock,
        policy,
        enrollment_token=enrollment,
        server_started_at=lambda: lifecycle.started_at,
        server_id=lifecycle.server_id,
        write_gate=store_monitor.refuse_writes_while_down,
    )
    runner = ProjectionRunner(store)
    clients_projector = runner.projector("clients")
    models_projector = runner.projector("models")
    assert isinstance(clients_projector, ClientsProjector)
    assert isinstance(models_projector, ModelsProjector)
    read_models = ReadModels(store, clients_projector, models_projector)
    # Counts from the clients index: kept up to date per change, not counted over the fleet.
    live = LiveHub(read_models, clock, counts=lambda: read_models.status_counts(clock.now()))
    runner.subscribe(live.publish)
    snapshots = runner.projector("client_state")
    assert isinstance(snapshots, ClientStateProjector)

    def follow_log(changes: list[Change]) -> None:
        # The aggregate cache follows the log too: what other instances recorded becomes known.
        repo.adopt(snapshots.states.get(c.key) for c in changes if c.kind == "client")

    runner.subscribe(follow_log)
    lease = make_lease(settings, store)

    def hold_jobs() -> str | None:
        # The jobs that must run once: not while the store is down, and only on the holder.
        return store_monitor.hold_reason() or lease.hold_reason()

    scheduler = TimeoutScheduler(
        commands.detect_timeouts, settings.scheduler_tick_s, hold=hold_jobs
    )
    operations = OperationCommands(store, clock, server_id=lifecycle.server_id)
    jobs = BackgroundJobs(
        [
            alert_evaluator(store, clock, runner, repo, lifecycle.server_id),
            # Sends nothing until the app attaches the agent channels (obt/api/app.py).
            operation_dispatcher(operations, clock, runner),
            notification_delivery(store, clock, runner, TargetNotifier(), lifecycle.server_id),
            compaction_job(
                store,
                clock.now,
                settings.heartbeat_retention,
                settings.compaction_every,
                lambda report: metrics.compaction_seconds.observe(report.seconds),
            ),
        ],
        hold=hold_jobs,
    )
    runner.subscribe(jobs.on_changes)
    return OBT(
        settings=settings,
        store=store,
        clock=clock,
        repo=repo,
        commands=commands,
        runner=runner,
        read_models=read_models,
        lifecycle=lifecycle,
        scheduler=scheduler,
        store_monitor=store_monitor,
        live=live,
        metrics=metrics,
        alert_rules=AlertRuleCommands(store, clock, server_id=lifecycle.server_id),
        operations=operations,
        lease=lease,
        jobs=jobs,
        enrollment_token=enrollment,
        admin_token=admin,
        enrollment_token_created=enrollment_created,
        admin_token_created=admin_created,
    )
