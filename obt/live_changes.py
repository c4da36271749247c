"""What the live feed remembers and what each subscriber watches.

`ChangeIndex` keeps, for every read-model document changed since its horizon, the position of
its latest change: resumption sends those documents as they are now, so memory is bounded by
documents, not by the rate of changes. `Watch` is a subscriber's choice of documents.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from obt.projections.base import Change

HISTORY = 50_000  # documents remembered for resumption
MAX_WATCH_ITEMS = 1000
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

DocKey = tuple[str, str]  # (kind, key): client/<client id>, model/<name>, timeline/<entry key>


@dataclass(frozen=True, slots=True)
class Pending:
    """A document to send, whose latest change is at `position`."""

    kind: str
    key: str
    position: int


class ChangeIndex:
    """Latest change position per document, in position order, bounded to `capacity` entries.

    Forgetting the oldest entry moves the horizon up to its position: a subscriber that has seen
    everything up to the horizon can still be told every change after it; one further back
    cannot, and is told to reload (`reset`).
    """

    def __init__(self, capacity: int = HISTORY) -> None:
        self.capacity = capacity
        self._latest: OrderedDict[DocKey, int] = OrderedDict()
        self.horizon: int | None = None  # None: nothing known yet (set by begin or first add)
        self.head = 0  # the highest position any change reported

    def begin(self, position: int) -> None:
        """Changes after `position` will all be reported (the projections' start)."""
        if self.horizon is None:
            self.horizon = position
        self.head = max(self.head, position)

    def add(self, changes: Iterable[Change]) -> None:
        ordered = sorted(changes, key=lambda c: c.position)
        if not ordered:
            return
        if self.horizon is None:
            self.horizon = ordered[0].position - 1
        latest = self._latest
        for change in ordered:
            key = (change.kind, change.key)
            # Kept in position order: a change reported late (a projector that reloaded) is
            # filed at the head, where every subscriber that might have missed it looks.
            position = max(change.position, self.head)
            latest[key] = position
            latest.move_to_end(key)
            self.head = position
        while len(latest) > self.capacity:
            _, forgotten = latest.popitem(last=False)
            self.horizon = max(self.horizon, forgotten)

    def covers(self, after: int) -> bool:
        """Whether every change after `after` is still known."""
        return self.horizon is not None and self.horizon <= after <= self.head

    def since(self, after: int) -> list[Pending]:
        """Documents changed after `after`, oldest change first."""
        found: list[Pending] = []
        for (kind, key), position in reversed(self._latest.items()):
            if position <= after:
                break
            found.append(Pending(kind, key, position))
        found.reverse()
        return found

    def __len__(self) -> int:
        return len(self._latest)


class InvalidWatch(ValueError):
    """A `watch` item the live feed does not understand (the API answers 422)."""


@dataclass(frozen=True, slots=True)
class Watch:
    """Which documents one subscriber is sent. `everything()` is a plain /live subscriber."""

    all_clients: bool = False
    clients: frozenset[str] = frozenset()
    all_timeline: bool = False
    timeline_clients: frozenset[str] = frozenset()
    models: bool = False
    counts: bool = False

    @classmethod
    def everything(cls) -> Watch:
        return cls(all_clients=True, all_timeline=True, models=True)

    @classmethod
    def parse(cls, items: Iterable[str]) -> Watch:
        """From `watch` query values (each may hold several items, comma-separated):
        clients, client:<id>, timeline, timeline:<id>, models, counts. None at all means
        everything but counts (the feed as it was before watching existed)."""
        parts = [p.strip() for item in items for p in item.split(",") if p.strip()]
        if not parts:
            return cls.everything()
        if len(parts) > MAX_WATCH_ITEMS:
            raise InvalidWatch(f"at most {MAX_WATCH_ITEMS} watch items, got {len(parts)}")
        flags = {"clients": False, "timeline": False, "models": False, "counts": False}
        clients: set[str] = set()
        timeline: set[str] = set()
        for part in parts:
            name, sep, arg = part.partition(":")
            if not sep and name in flags:
                flags[name] = True
            elif sep and name in ("client", "timeline") and _CLIENT_ID.match(arg):
                (clients if name == "client" else timeline).add(arg)
            else:
                raise InvalidWatch(
                    f"unknown watch item {part[:80]!r}: use clients, client:<id>, timeline, "
                    "timeline:<id>, models or counts"
                )
        return cls(
            all_clients=flags["clients"],
            clients=frozenset(clients),
            all_timeline=flags["timeline"],
            timeline_clients=frozenset(timeline),
            models=flags["models"],
            counts=flags["counts"],
        )

    def wants(self, kind: str, key: str, client_id: str | None) -> bool:
        """`client_id`: the client a timeline entry is about (None when not yet known)."""
        if kind == "client":
            return self.all_clients or key in self.clients
        if kind == "timeline":
            return self.all_timeline or (
                client_id is not None and client_id in self.timeline_clients
            )
        if kind == "model":
            return self.models
        return False

    def may_want(self, kind: str, key: str) -> bool:
        """Worth fetching the document at all (timeline entries name their client inside)."""
        if kind == "timeline":
            return self.all_timeline or bool(self.timeline_clients)
        return self.wants(kind, key, None)
