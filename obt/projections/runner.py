"""Drives the projectors: catch up from each checkpoint, then follow live appends.

Each projector's document writes and its new checkpoint are committed in one transaction, so a
crash between batches repeats nothing and loses nothing: the next start resumes at the
checkpoint with the in-memory state loaded from what was committed. A projector whose readers
are served from its memory may have its writes held back for a second (`writes_behind`): its
stored checkpoint then stays put until they are committed together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from obt.domain.events import event_from_data
from obt.errors import CheckpointConflict, StoreError
from obt.projections.alert_notices import AlertNoticesProjector
from obt.projections.alert_rules import AlertRulesProjector
from obt.projections.alerts import AlertsProjector
from obt.projections.base import HEARTBEAT, Batch, Change, Envelope, Projector
from obt.projections.client_state import ClientStateProjector
from obt.projections.clients import ClientsProjector
from obt.projections.models import ModelsProjector
from obt.projections.operations import OperationsProjector
from obt.projections.timeline import TimelineProjector
from obt.projections.uptime import UptimeProjector
from obt.store.ports import RecordedEvent, Store

log = logging.getLogger(__name__)

Listener = Callable[[list[Change]], None]
MIN_BATCH = 50  # the smallest batch a runner falls back to while its commits fail


def default_projectors() -> list[Projector]:
    return [
        ClientStateProjector(),
        ClientsProjector(),
        UptimeProjector(),
        TimelineProjector(),
        ModelsProjector(),
        AlertRulesProjector(),
        AlertsProjector(),
        AlertNoticesProjector(),
        OperationsProjector(),
    ]


def decode(records: Iterable[RecordedEvent]) -> list[Envelope]:
    """Domain events for the records; types this server does not know are skipped, logged.

    A heartbeat whose data has the fields the projectors' fast paths read is decoded lazily
    (most never need the full event); everything else is decoded here and checked.
    """
    envelopes = []
    for recorded in records:
        data = recorded.data
        if (
            recorded.type == HEARTBEAT
            and isinstance(data.get("client_id"), str)
            and isinstance(data.get("ollama"), dict)
            and isinstance(data.get("seq"), int)
        ):
            envelopes.append(Envelope(recorded))
            continue
        try:
            event = event_from_data(recorded.type, recorded.data)
        except KeyError:
            log.warning(
                "skipping event %s at position %s: unknown type", recorded.type, recorded.position
            )
            continue
        except (TypeError, ValueError) as exc:
            log.error(
                "skipping event %s at position %s: data does not fit the type: %s",
                recorded.type,
                recorded.position,
                exc,
            )
            continue
        envelopes.append(Envelope.of(recorded, event))
    return envelopes


@dataclass
class ProjectionStatus:
    name: str
    position: int
    error: str | None = None


class ProjectionRunner:
    def __init__(
        self,
        store: Store,
        projectors: Sequence[Projector] | None = None,
        *,
        batch_size: int = 1000,
        write_behind_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.projectors = list(projectors) if projectors is not None else default_projectors()
        self._batch_size = batch_size
        self.positions: dict[str, int] = {}  # processed, in memory
        self._persisted: dict[str, int] = {}  # the checkpoint as stored
        self.max_unsaved = 10_000
        self.write_behind_s = write_behind_s
        self._monotonic = monotonic
        self._committed_at: dict[str, float] = {}  # projector -> when it last committed
        self._held: set[str] = set()  # projectors holding document writes back
        # Projectors that keep no documents in memory and projected batches that were not
        # stored (this runner was not allowed to): their state is reloaded from the stored
        # checkpoint before they may store again, so no batch is skipped.
        self._unstored: set[str] = set()
        self.errors: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self.last_step_s = 0.0
        # Whether this runner may store read models now. Several instances on one store: only
        # the jobs lease holder stores them (the others project into memory, serve what they
        # hold there and read the rest from what the holder stored), so their commits never
        # race. A runner that becomes the holder meets the checkpoint the last holder stored,
        # reloads from it and goes on storing.
        self.may_persist: Callable[[], bool] = lambda: True

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def projector(self, name: str) -> Projector:
        for p in self.projectors:
            if p.name == name:
                return p
        raise KeyError(name)

    async def start(self) -> None:
        for p in self.projectors:
            await self._reload(p)

    @property
    def low_water(self) -> int:
        return min(self.positions.values()) if self.positions else 0

    async def step(self) -> int:
        """Process one batch of events; returns how many records were read."""
        await self._restore_unstored()
        records = await self._read(self.low_water)
        await self._process(records)
        return len(records)

    async def catch_up(self) -> int:
        """Process everything appended so far, reading each batch while the last is applied."""
        total = 0
        after = self.low_water
        pending = asyncio.ensure_future(self._read(after))
        try:
            while records := await pending:
                after = records[-1].position
                pending = asyncio.ensure_future(self._read(after))
                await self._process(records)
                total += len(records)
                if self.low_water != after:  # a projector reloaded: re-read from its position
                    pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)
                    pending = asyncio.ensure_future(self._read(self.low_water))
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        await self.persist_held()  # caught up means stored, too
        return total

    async def _read(self, after: int) -> list[RecordedEvent]:
        return await self._store.read_all(after=after, limit=self._batch_size)

    async def _process(self, records: list[RecordedEvent]) -> None:
        if not records:
            return
        started = time.perf_counter()
        envelopes = decode(records)
        last = records[-1].position
        changes: list[Change] = []
        for p in self.projectors:
            checkpoint = self.positions[p.name]
            if checkpoint >= last:
                continue
            batch = Batch()
            try:
                if envelopes and envelopes[0].position > checkpoint:
                    p.apply_all(envelopes, batch)
                else:
                    p.apply_all((e for e in envelopes if e.position > checkpoint), batch)
                persist = self.may_persist() and (
                    not p.writes_behind
                    or bool(batch)
                    or self._due(p.name)
                    or last - self._persisted[p.name] >= self.max_unsaved
                )
                p.flush(batch, persist=persist)
                if persist:
                    await self._persist(p, batch, last)
                elif p.writes_behind:
                    self._held.add(p.name)  # its documents wait in memory
                else:
                    self._unstored.add(p.name)  # this batch's writes are gone
            except CheckpointConflict:
                log.info("projection %s was advanced by another runner; reloading", p.name)
                await self._reload(p)
                continue
            except Exception as exc:
                # The in-memory state may hold half a batch: reload what was committed.
                self.errors[p.name] = f"{type(exc).__name__}: {exc}"
                await self._reload_quietly(p)
                raise
            self.positions[p.name] = last
            self.errors.pop(p.name, None)
            changes.extend(batch.changes)
        self.last_step_s = time.perf_counter() - started
        if changes:
            for listener in self._listeners:
                listener(changes)

    async def _persist(self, p: Projector, batch: Batch, last: int) -> None:
        """Commit the batch's writes with the checkpoint `last`, in one transaction."""
        persisted = self._persisted[p.name]
        if batch or last - persisted >= self.max_unsaved:
            await self._store.commit(
                p.name, expected_checkpoint=persisted, new_checkpoint=last, ops=batch.ops()
            )
            self._persisted[p.name] = last
            self._committed_at[p.name] = self._monotonic()
        # else: nothing changed. Projectors change memory only together with ops (or hold
        # them, see persist_held), so replaying these events after a restart changes nothing
        # either: the commit (and its fsync) can wait for a batch that has something to say.
        self._held.discard(p.name)

    def _due(self, name: str) -> bool:
        committed = self._committed_at.get(name)
        return committed is None or self._monotonic() - committed >= self.write_behind_s

    async def persist_held(self, *, only_due: bool = False) -> None:
        """Commit the writes projectors are holding back (all, or those whose time is up).

        While writes are held the stored checkpoint stays where it was, so a crash replays
        the held events onto the documents as they were stored: nothing is lost or doubled.
        """
        if not self.may_persist():
            return
        await self._restore_unstored()
        for p in self.projectors:
            if p.name not in self._held or (only_due and not self._due(p.name)):
                continue
            batch = Batch()
            p.flush(batch, persist=True)
            try:
                await self._persist(p, batch, self.positions[p.name])
            except CheckpointConflict:
                log.info("projection %s was advanced by another runner; reloading", p.name)
                await self._reload(p)

    async def run(self, stop: asyncio.Event, poll_s: float = 1.0, settle_s: float = 0.1) -> None:
        """Follow the log until `stop` is set; store errors are logged and retried.

        After waking for new events it lets `settle_s` pass, so a busy log is projected in
        batches (fewer transactions) rather than one event at a time. Projectors that write
        behind commit at most every `write_behind_s` while only their own documents change
        (readers are served from their memory); held writes are stored when the log goes
        quiet and at stop.
        """
        backoff = 0.5
        full_batch = self._batch_size
        while not stop.is_set():
            try:
                n = await self.step()
                if n:
                    await _wait(stop, settle_s)
                else:
                    await self.persist_held(only_due=True)  # the log went quiet
                backoff = 0.5
                self._batch_size = min(full_batch, self._batch_size * 2)
            except StoreError as exc:
                log.warning("projections paused: %s; retrying in %.1f s", exc, backoff)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 2.0)  # a returning store is noticed within 2 s
                # A batch whose commit outlasts the store's transaction bound would fail the
                # same way every time (a new lease holder catching up a burst): smaller ones.
                self._batch_size = max(MIN_BATCH, self._batch_size // 2)
                continue
            if n == 0:
                waiter = asyncio.ensure_future(self._store.wait_for_append(self.low_water, poll_s))
                stopper = asyncio.ensure_future(stop.wait())
                done, pending = await asyncio.wait(
                    {waiter, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        log.warning("waiting for appends failed: %s", task.exception())
        try:
            await self.persist_held()
        except StoreError as exc:
            log.warning("projections: held writes not stored at stop (%s); replayed on start", exc)

    async def rebuild(self, names: Iterable[str] | None = None, batch_size: int = 5000) -> int:
        """Clear the named projections (all by default) and replay the log from position 0,
        in larger batches than live following uses (fewer transactions for a bulk job)."""
        wanted = set(names) if names is not None else {p.name for p in self.projectors}
        unknown = wanted - {p.name for p in self.projectors}
        if unknown:
            raise KeyError(f"unknown projection(s): {', '.join(sorted(unknown))}")
        for p in self.projectors:
            if p.name in wanted:
                await self._store.reset(p.name, p.collections)
                await self._reload(p)
        live_batch, self._batch_size = self._batch_size, batch_size
        try:
            return await self.catch_up()
        finally:
            self._batch_size = live_batch

    async def _reload(self, p: Projector) -> None:
        self._held.discard(p.name)
        self._unstored.discard(p.name)
        self.positions[p.name] = await self._store.checkpoint(p.name)
        self._persisted[p.name] = self.positions[p.name]
        await p.load(self._store)

    async def _restore_unstored(self) -> None:
        """Once this runner may store again (it holds the lease again), reload the projectors
        whose writes were dropped meanwhile: storing their checkpoint as it stands would skip
        those batches in the stored read model (an instance that lost the lease in a store
        outage and took it back)."""
        if not self._unstored or not self.may_persist():
            return
        for name in sorted(self._unstored):
            await self._reload(self.projector(name))
            self._unstored.discard(name)

    async def _reload_quietly(self, p: Projector) -> None:
        try:
            await self._reload(p)
        except StoreError as exc:
            log.warning("could not reload projection %s: %s", p.name, exc)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
