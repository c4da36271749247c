"""Fan-out of read-model changes to live subscribers (the dashboard's Server-Sent Events).

The projection runner reports changes synchronously; one task here turns them into messages
(fetching the documents once) and hands them to every subscriber's queue. Recent messages are
kept so a reconnecting subscriber resumes from its Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from obt.commands.handlers import Clock
from obt.errors import StoreError
from obt.projections.base import Change
from obt.projections.queries import ReadModels
from obt.projections.timeline import TIMELINE

log = logging.getLogger(__name__)

HISTORY = 2000
QUEUE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class LiveMessage:
    id: int  # the event-log position the change reflects
    event: str  # client | model | timeline | reset
    data: dict[str, Any]


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[LiveMessage] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False

    def offer(self, message: LiveMessage) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A subscriber that cannot keep up is told to reload rather than fed stale data.
            self.overflowed = True


class LiveHub:
    def __init__(self, read_models: ReadModels, clock: Clock) -> None:
        self._read_models = read_models
        self._clock = clock
        self._pending: asyncio.Queue[list[Change]] = asyncio.Queue()
        self._history: deque[LiveMessage] = deque(maxlen=HISTORY)
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish(self, changes: list[Change]) -> None:
        if self._subscribers:
            self._pending.put_nowait(changes)

    def subscribe(self, last_event_id: int | None) -> tuple[Subscription, list[LiveMessage]]:
        """A new subscription plus the messages it missed since `last_event_id`."""
        sub = Subscription()
        self._subscribers.add(sub)
        if last_event_id is None:
            return sub, []
        oldest = self._history[0].id if self._history else None
        if oldest is None or last_event_id < oldest - 1:
            return sub, [LiveMessage(last_event_id, "reset", {})]
        return sub, [m for m in self._history if m.id > last_event_id]

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def _pump(self) -> None:
        while True:
            changes = await self._pending.get()
            try:
                messages = await self._messages(changes)
            except StoreError as exc:
                log.warning("live update skipped: %s", exc)
                continue
            for message in messages:
                self._history.append(message)
                for sub in list(self._subscribers):
                    sub.offer(message)

    async def _messages(self, changes: list[Change]) -> list[LiveMessage]:
        latest: dict[tuple[str, str], int] = {}
        for change in changes:
            latest[(change.kind, change.key)] = change.position
        now = self._clock.now()
        messages: list[LiveMessage] = []
        models: list[dict[str, Any]] | None = None
        store = self._read_models.store
        for (kind, key), position in sorted(latest.items(), key=lambda kv: kv[1]):
            if kind == "client":
                summary = await self._read_models.client_summary(key, now)
                if summary is not None:
                    messages.append(LiveMessage(position, kind, summary))
            elif kind == "timeline":
                doc = await store.get(TIMELINE, key)
                if doc is not None:
                    messages.append(LiveMessage(position, kind, doc))
            elif kind == "model":
                if models is None:
                    models = await self._read_models.models()
                found = next((m for m in models if m["name"] == key), None)
                data = found if found is not None else {"name": key, "removed": True}
                messages.append(LiveMessage(position, kind, data))
        return messages
