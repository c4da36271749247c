"""Fleet operation commands: load the operation (cached), decide, append at its version;
retry a lost race. The dispatcher and the API call these; neither decides anything itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from obt.commands.handlers import Clock
from obt.domain import operations as rules
from obt.domain.events import Event, event_from_data, operation_stream
from obt.domain.operations import OperationRuleViolation, OperationState
from obt.errors import (
    CorruptEvent,
    DuplicateEventId,
    InvalidOperation,
    UnknownOperation,
    WrongExpectedVersion,
)
from obt.store.ports import EventLog, NewEvent

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RequestOperation:
    action: str
    model: str
    targets: list[str]  # client ids, resolved by the caller from `selector`
    selector: dict[str, Any]
    max_parallel: int = 4
    expires_in_s: float = 3600.0
    metadata: Mapping[str, Any] | None = None  # who asked: source address, user agent


def new_operation_id() -> str:
    return uuid.uuid4().hex[:16]


class OperationCommands:
    def __init__(
        self,
        log: EventLog,
        clock: Clock,
        *,
        server_id: str = "obt",
        new_id: Callable[[], str] = new_operation_id,
    ) -> None:
        self._log = log
        self._clock = clock
        self._server_id = server_id
        self._new_id = new_id
        self._cache: dict[str, OperationState] = {}
        # One writer per operation at a time in this process: the cached state is changed in
        # place, so a catch-up must never read the log between an append and its evolve
        # (it would apply those events twice and the state would run ahead of the stream).
        self._locks: dict[str, asyncio.Lock] = {}

    async def request(self, cmd: RequestOperation) -> OperationState:
        operation_id = self._new_id()
        now = self._clock.now()
        return await self._decide_and_save(
            operation_id,
            lambda s: rules.decide_request(
                s,
                action=cmd.action,
                model=cmd.model,
                targets=cmd.targets,
                selector=cmd.selector,
                max_parallel=cmd.max_parallel,
                expires_in_s=cmd.expires_in_s,
                now=now,
            ),
            cmd.metadata,
        )

    async def start(self, operation_id: str, client_id: str) -> bool:
        """Start a queued target if it may start now; whether it did."""
        now = self._clock.now()
        before = await self.load(operation_id)
        running = before.targets.get(client_id)
        was = running.state if running else None
        state = await self._decide_and_save(
            operation_id, lambda s: rules.decide_start(s, client_id=client_id, now=now)
        )
        target = state.targets.get(client_id)
        return was == rules.QUEUED and target is not None and target.state == rules.RUNNING

    async def progress(
        self,
        operation_id: str,
        client_id: str,
        *,
        status: str | None,
        completed: int | None,
        total: int | None,
    ) -> None:
        now = self._clock.now()
        await self._decide_and_save(
            operation_id,
            lambda s: rules.decide_progress(
                s, client_id=client_id, status=status, completed=completed, total=total, now=now
            ),
        )

    async def result(
        self, operation_id: str, client_id: str, *, succeeded: bool, reason: str | None
    ) -> None:
        await self._decide_and_save(
            operation_id,
            lambda s: rules.decide_result(
                s, client_id=client_id, succeeded=succeeded, reason=reason
            ),
        )

    async def cancel(self, operation_id: str) -> list[str]:
        """Cancel what is left; returns the hosts that were running (to be told to stop)."""
        state = await self.load(operation_id)
        running = [cid for cid, t in state.targets.items() if t.state == rules.RUNNING]
        await self._decide_and_save(operation_id, rules.decide_cancel)
        return running

    async def expire(self, operation_id: str) -> list[str]:
        """Expire what is left past the expiry; returns the hosts that were running."""
        now = self._clock.now()
        state = await self.load(operation_id)  # the cached state: updated in place below
        running = [cid for cid, t in state.targets.items() if t.state == rules.RUNNING]
        was_finished = state.finished
        after = await self._decide_and_save(operation_id, lambda s: rules.decide_expire(s, now=now))
        return running if after.finished and not was_finished else []

    def _lock(self, operation_id: str) -> asyncio.Lock:
        return self._locks.setdefault(operation_id, asyncio.Lock())

    async def load(self, operation_id: str) -> OperationState:
        async with self._lock(operation_id):
            return await self._load(operation_id)

    async def _load(self, operation_id: str) -> OperationState:
        state = self._cache.get(operation_id)
        if state is None:
            state = OperationState(operation_id=operation_id)
        await self._catch_up(state)
        if state.requested:
            self._cache[operation_id] = state
        return state

    async def _catch_up(self, state: OperationState) -> None:
        stream = operation_stream(state.operation_id)
        while True:
            batch = await self._log.read_stream(stream, after_version=state.version, limit=1000)
            for recorded in batch:
                try:
                    event = event_from_data(recorded.type, recorded.data)
                except (KeyError, TypeError, ValueError) as exc:
                    raise CorruptEvent(recorded.position, f"{recorded.type}: {exc}") from None
                rules.evolve(state, event, recorded.recorded_at)
                state.version = recorded.version
            if len(batch) < 1000:
                return

    async def _decide_and_save(
        self,
        operation_id: str,
        decide: Callable[[OperationState], list[Event]],
        metadata: Mapping[str, Any] | None = None,
    ) -> OperationState:
        async with self._lock(operation_id):
            return await self._decide_and_save_locked(operation_id, decide, metadata)

    async def _decide_and_save_locked(
        self,
        operation_id: str,
        decide: Callable[[OperationState], list[Event]],
        metadata: Mapping[str, Any] | None,
    ) -> OperationState:
        for attempt in range(MAX_ATTEMPTS):
            state = await self._load(operation_id)
            try:
                events = decide(state)
            except OperationRuleViolation as exc:
                if exc.code == "unknown_operation":
                    raise UnknownOperation(operation_id) from None
                raise InvalidOperation(exc.code, str(exc)) from None
            if not events:
                return state
            now = self._clock.now()
            try:
                await self._log.append(
                    operation_stream(operation_id),
                    [
                        NewEvent(
                            id=str(uuid.uuid4()),
                            type=e.type_name(),
                            data=e.to_data(),
                            metadata={**(metadata or {}), "server_id": self._server_id},
                        )
                        for e in events
                    ],
                    expected_version=state.version,
                    recorded_at=now,
                )
            except (WrongExpectedVersion, DuplicateEventId):
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                continue  # another writer moved the stream: load again and decide again
            for event in events:
                rules.evolve(state, event, now)
                state.version += 1
            self._cache[operation_id] = state
            return state
        raise AssertionError("unreachable")
