"""Loads and saves client aggregates: a cache in front of snapshots in front of the log.

The heartbeat path must never read a whole stream: a cached state is used as is; a missing one
starts from the `client_state` snapshot document (kept by the snapshot projector) and reads only
the events after it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from obt.domain.client import ClientState, evolve
from obt.domain.events import Event, client_id_of, client_stream, event_from_data
from obt.errors import CorruptEvent
from obt.store.ports import AppendResult, NewEvent, RecordedEvent, Store

SNAPSHOT_COLLECTION = "client_state"
EVENT_ID_NAMESPACE = uuid.UUID("6f1f3c52-4b8e-4e43-9d0b-9b0a3f3e2c11")


def deterministic_event_id(*parts: object) -> str:
    """The same logical event always gets the same id, so a re-send is a no-op."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, ":".join(str(p) for p in parts)))


def apply_recorded(state: ClientState, recorded: RecordedEvent) -> None:
    try:
        event = event_from_data(recorded.type, recorded.data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptEvent(recorded.position, f"{recorded.type}: {exc}") from None
    evolve(state, event, recorded.recorded_at)
    state.version = recorded.version


class ClientRepository:
    def __init__(
        self, store: Store, on_append: Callable[[Sequence[Event]], None] | None = None
    ) -> None:
        self._store = store
        self._on_append = on_append
        self._cache: dict[str, ClientState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._by_secret: dict[str, str] = {}

    def lock(self, client_id: str) -> asyncio.Lock:
        lock = self._locks.get(client_id)
        if lock is None:
            lock = self._locks[client_id] = asyncio.Lock()
        return lock

    def cached(self) -> Iterator[ClientState]:
        return iter(list(self._cache.values()))

    def owner_of_secret(self, secret_sha256: str) -> str | None:
        return self._by_secret.get(secret_sha256)

    async def warm(self, states: Iterable[ClientState] | None = None, at: int = 0) -> int:
        """Load every client's state at start-up.

        `states` (the snapshot projector's, current as of position `at`) are copied; without
        them the stored snapshots are read. Then one scan of the log after that point brings
        every client up to date and finds those too new to have a snapshot.
        """
        if states is None:
            at = await self._store.checkpoint(SNAPSHOT_COLLECTION)
            states = [
                ClientState.from_snapshot(doc["state"])
                for doc in await self._store.find(SNAPSHOT_COLLECTION)
            ]
        else:
            states = [state.copy() for state in states]
        for state in states:
            self._remember(state)
        after = at
        while batch := await self._store.read_all(after=after, limit=1000):
            for recorded in batch:
                cid = client_id_of(recorded.stream)
                if cid is None:
                    continue
                state = self._cache.get(cid) or ClientState(client_id=cid)
                if recorded.version == state.version + 1:
                    apply_recorded(state, recorded)
                elif recorded.version > state.version + 1:
                    await self._catch_up(state)  # a snapshot older than expected: read on
                if state.registered:
                    self._remember(state)
            after = batch[-1].position
        return len(self._cache)

    async def load(self, client_id: str) -> ClientState:
        state = self._cache.get(client_id)
        if state is not None:
            return state
        doc = await self._store.get(SNAPSHOT_COLLECTION, client_id)
        state = ClientState.from_snapshot(doc["state"]) if doc else ClientState(client_id=client_id)
        await self._catch_up(state)
        if state.registered:
            self._remember(state)
        return state

    async def refresh(self, client_id: str) -> ClientState:
        """Re-read what others appended since the cached version (after a conflict)."""
        state = self._cache.get(client_id)
        if state is None:
            return await self.load(client_id)
        await self._catch_up(state)
        return state

    def adopt(self, states: Iterable[ClientState | None]) -> int:
        """Take states the snapshot projector holds (it follows every instance's appends)
        where they are newer than the cache: clients registered through another instance
        become known here (the timeout scheduler sweeps them when this instance holds the
        jobs lease), and cached states catch up without reading their streams. A client whose
        command is running here keeps its state: that command re-reads on a conflict."""
        adopted = 0
        for state in states:
            if state is None or not state.registered:
                continue
            cached = self._cache.get(state.client_id)
            if cached is not None and cached.version >= state.version:
                continue
            lock = self._locks.get(state.client_id)
            if lock is not None and lock.locked():
                continue
            if cached is not None and cached.secret_sha256 != state.secret_sha256:
                self._by_secret.pop(cached.secret_sha256 or "", None)
            self._remember(state.copy())
            adopted += 1
        return adopted

    async def refreshed(self, client_id: str) -> bool:
        """Re-read what other instances appended since the cached version, before refusing
        on the cached state: whether the state moved on (False: it was current, or not
        cached, and load() reads an uncached client's stream anyway)."""
        state = self._cache.get(client_id)
        if state is None:
            return False
        before = state.version
        await self._catch_up(state)
        if state.version == before:
            return False
        self._remember(state)
        return True

    async def save(
        self,
        state: ClientState,
        events: Sequence[Event],
        *,
        now: datetime,
        ids: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult | None:
        """Append `events` at the state's version, then fold them into the cached state.

        Raises WrongExpectedVersion when another writer got there first; the caller refreshes
        and decides again.
        """
        if not events:
            return None
        meta = dict(metadata or {})
        new = [
            NewEvent(
                id=ids[i] if ids else str(uuid.uuid4()),
                type=e.type_name(),
                data=e.to_data(),
                metadata=meta,
                schema_version=e.SCHEMA_VERSION,
            )
            for i, e in enumerate(events)
        ]
        before = state.secret_sha256
        result = await self._store.append(
            client_stream(state.client_id), new, expected_version=state.version, recorded_at=now
        )
        if not result.positions:
            # An idempotent re-send: the log already holds these; re-read to be exact.
            await self._catch_up(state)
            return result
        for event in events:
            evolve(state, event, now)
        state.version = result.version
        if self._on_append is not None:
            self._on_append(events)
        if before and before != state.secret_sha256:
            self._by_secret.pop(before, None)
        self._remember(state)
        return result

    async def _catch_up(self, state: ClientState) -> None:
        stream = client_stream(state.client_id)
        while True:
            batch = await self._store.read_stream(stream, after_version=state.version, limit=1000)
            for recorded in batch:
                before = state.secret_sha256
                apply_recorded(state, recorded)
                if before and before != state.secret_sha256:
                    self._by_secret.pop(before, None)
            if len(batch) < 1000:
                return

    def _remember(self, state: ClientState) -> None:
        self._cache[state.client_id] = state
        if state.secret_sha256:
            self._by_secret[state.secret_sha256] = state.client_id
