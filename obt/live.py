"""Fan-out of read-model changes to live subscribers (the dashboard's Server-Sent Events).

The projection runner reports changes synchronously; they are filed in a bounded index (latest
change per document, see live_changes) whether anyone listens or not, so a subscriber resumes
from its Last-Event-ID after any gap the index still covers. One task flushes at most once per
interval: every document changed since the last flush is fetched once, as it is now, and each
subscriber is sent the ones it watches, so a busy document costs one message per interval.

Message ids are watermarks: `id: N` means every change at a position up to N that the
subscriber watches has been sent to it. Several documents changed at one position are sent in
order, and each message's id stops short of the position of the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from obt.commands.handlers import Clock
from obt.domain.liveness import Status
from obt.errors import StoreError
from obt.live_changes import HISTORY, ChangeIndex, DocKey, Pending, Watch
from obt.projections.base import Change
from obt.projections.clients import ClientsProjector
from obt.projections.queries import ReadModels
from obt.projections.timeline import TIMELINE

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0  # at most one message per document per interval
FLUSH_BUDGET = 1000  # messages one subscriber may get from one flush; beyond that, a reset
QUEUE_FLUSHES = 30  # flushes a subscriber may fall behind before it is told to reload

StatusCounts = Callable[[], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class LiveMessage:
    id: int  # a watermark: every watched change up to this position has been sent
    event: str  # client | model | timeline | counts | reset
    data: dict[str, Any]


def status_counts(projector: ClientsProjector) -> dict[str, int]:
    """Clients by status (every status, zeros included), from the projector's memory."""
    counted = Counter(live.status.value for live in projector.live.values())
    return {status.value: counted.get(status.value, 0) for status in Status}


class Subscription:
    def __init__(self, watch: Watch, cursor: int, *, replay: bool) -> None:
        self.watch = watch
        self.cursor = cursor  # the watermark sent (before its first flush: to resume after)
        self.replay = replay  # resuming: its first flush sends what changed after `cursor`
        self.pending = True  # not flushed yet: served on its own, without waiting
        self.queue: asyncio.Queue[list[LiveMessage]] = asyncio.Queue(maxsize=QUEUE_FLUSHES)

    def offer(self, messages: list[LiveMessage], head: int) -> None:
        if not messages:
            return
        try:
            self.queue.put_nowait(messages)
        except asyncio.QueueFull:
            # A subscriber that cannot keep up is told to reload rather than fed stale data.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait([LiveMessage(head, "reset", {})])


class LiveHub:
    def __init__(
        self,
        read_models: ReadModels,
        clock: Clock,
        *,
        counts: StatusCounts | None = None,
        interval_s: float = FLUSH_INTERVAL_S,
        history: int = HISTORY,
        budget: int = FLUSH_BUDGET,
    ) -> None:
        self._read_models = read_models
        self._clock = clock
        self._counts = counts
        self.interval_s = interval_s
        self.budget = budget
        self.index = ChangeIndex(history)
        self._dirty: dict[DocKey, int] = {}  # changed since the last flush (while subscribed)
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def begin(self, position: int) -> None:
        """Every change after `position` will be published (called once the projections have
        loaded their checkpoints, before they catch up)."""
        self.index.begin(position)

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish(self, changes: list[Change]) -> None:
        self.index.add(changes)
        if not self._subscribers:
            return
        for change in changes:
            key = (change.kind, change.key)
            self._dirty[key] = max(change.position, self._dirty.get(key, 0))
        self._wake.set()

    def subscribe(
        self, last_event_id: int | None, watch: Watch | None = None
    ) -> tuple[Subscription, list[LiveMessage]]:
        """A new subscription plus what to send it first: a `reset` when `last_event_id` is
        too far back (or ahead) for the index, the current counts when it watches them.
        Without delay, a resumable subscription is then sent what it missed, and one that
        names clients is sent each of them as it is now (a page that changed which rows it
        shows has them all, whatever changed while it was loading them)."""
        watch = watch or Watch.everything()
        head = self.index.head
        first: list[LiveMessage] = []
        if last_event_id is not None and self.index.covers(last_event_id):
            sub = Subscription(watch, last_event_id, replay=True)
        else:
            sub = Subscription(watch, head, replay=False)
            if last_event_id is not None:
                first.append(LiveMessage(head, "reset", {}))
            if watch.counts and self._counts is not None:
                first.append(LiveMessage(head, "counts", self._counts_data(head)))
        self._subscribers.add(sub)
        if sub.replay or watch.clients:
            self._joined.set()
            self._wake.set()
        else:
            sub.pending = False
        return sub, first

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._joined.clear()
            await self._flush_logged(newcomers_only=False)
            # Coalescing: changes wait for the interval to pass; a new subscriber does not.
            until = loop.time() + self.interval_s
            while (left := until - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._joined.wait(), left)
                if self._joined.is_set():
                    self._joined.clear()
                    await self._flush_logged(newcomers_only=True)

    async def _flush_logged(self, *, newcomers_only: bool) -> None:
        try:
            await self.flush(newcomers_only=newcomers_only)
        except StoreError as exc:
            log.warning("live update postponed: %s", exc)
            self._wake.set()

    async def flush(self, *, newcomers_only: bool = False) -> None:
        """Send every subscriber the documents it watches that changed since it was last sent
        anything (a new one: since its Last-Event-ID, and the clients it names)."""
        head = self.index.head
        taken: dict[DocKey, int] = {}
        if not newcomers_only:
            taken, self._dirty = self._dirty, {}
        changed = sorted(
            (Pending(kind, key, position) for (kind, key), position in taken.items()),
            key=lambda p: p.position,
        )
        plans: dict[Subscription, list[Pending] | None] = {}  # None: must reload
        for sub in list(self._subscribers):
            plan: list[Pending] | None = None
            if not sub.pending:
                if newcomers_only:
                    continue
                plan = changed
            elif self.index.covers(sub.cursor):
                plan = self.index.since(sub.cursor)
            elif not sub.replay:
                plan = []  # nothing known to replay (the hub has not begun)
            if plan is not None and sub.pending and sub.watch.clients:
                # Named clients first, as they are now (those changed since come later anyway).
                named = sorted(sub.watch.clients - {p.key for p in plan if p.kind == "client"})
                plan = [Pending("client", cid, sub.cursor) for cid in named] + plan
            if plan is not None and self._surely_over_budget(sub.watch, plan):
                plan = None  # not worth fetching: it will reload
            plans[sub] = plan
        try:
            docs = await self._documents(plans)
            counts = (
                self._counts_data(head)
                if self._counts is not None and any(s.watch.counts for s in plans)
                else None
            )
        except StoreError:
            for key, position in taken.items():  # sent with the next flush instead
                self._dirty[key] = max(position, self._dirty.get(key, 0))
            raise
        for sub, plan in plans.items():
            if plan is None:
                messages = [LiveMessage(head, "reset", {})]
            else:
                messages = self._messages(sub.watch, plan, docs, sub.cursor, head)
            if counts is not None and sub.watch.counts:
                messages.append(LiveMessage(head, "counts", counts))
            sub.offer(messages, head)
            sub.cursor = max(sub.cursor, head)
            sub.pending = sub.replay = False

    def _surely_over_budget(self, watch: Watch, plan: list[Pending]) -> bool:
        if len(plan) <= self.budget:
            return False
        wanted = 0
        for p in plan:
            if watch.all_timeline if p.kind == "timeline" else watch.wants(p.kind, p.key, None):
                wanted += 1
                if wanted > self.budget:
                    return True
        return False

    def _messages(
        self,
        watch: Watch,
        plan: list[Pending],
        docs: Mapping[DocKey, dict[str, Any] | None],
        cursor: int,
        head: int,
    ) -> list[LiveMessage]:
        chosen: list[tuple[int, str, dict[str, Any]]] = []
        for pending in plan:
            data = docs.get((pending.kind, pending.key))
            if data is None:
                continue
            about = data.get("client_id") if pending.kind == "timeline" else None
            if watch.wants(pending.kind, pending.key, about):
                chosen.append((pending.position, pending.kind, data))
        if len(chosen) > self.budget:
            # More than a page can take in at once: it reloads what it shows instead.
            return [LiveMessage(head, "reset", {})]
        messages = []
        for i, (_, kind, data) in enumerate(chosen):
            # Everything before the next message's position has been sent once this one is.
            watermark = chosen[i + 1][0] - 1 if i + 1 < len(chosen) else head
            messages.append(LiveMessage(max(watermark, cursor), kind, data))
        return messages

    async def _documents(
        self, plans: Mapping[Subscription, list[Pending] | None]
    ) -> dict[DocKey, dict[str, Any] | None]:
        """Each wanted document once, as it is now."""
        docs: dict[DocKey, dict[str, Any] | None] = {}
        models: dict[str, dict[str, Any]] | None = None
        now = self._clock.now()
        store = self._read_models.store
        for sub, plan in plans.items():
            for pending in plan or ():
                key = (pending.kind, pending.key)
                if key in docs or not sub.watch.may_want(*key):
                    continue
                kind, name = key
                if kind == "client":
                    docs[key] = await self._read_models.client_summary(name, now)
                elif kind == "timeline":
                    docs[key] = await store.get(TIMELINE, name)
                elif kind == "model":
                    if models is None:
                        models = {m["name"]: m for m in await self._read_models.models()}
                    docs[key] = models.get(name) or {"name": name, "removed": True}
        return docs

    def _counts_data(self, head: int) -> dict[str, Any]:
        assert self._counts is not None
        by_status = dict(self._counts())
        return {"position": head, "total": sum(by_status.values()), "by_status": by_status}
