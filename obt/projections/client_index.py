"""Ordered indexes over the `clients` read model: fleet pages sorted, filtered and counted
without listing every client on each request.

Clients are partitioned by status (so counts and status filters cost nothing), and within
each partition kept in a sorted list per sort field, built the first time that field is asked
for. The index follows the projector's change feed: a heartbeat in the same status touches only
the orderings that depend on it (last_seen, ollama_version).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sortedcontainers import SortedList

from obt.domain.liveness import Status
from obt.projections.clients import ClientChanges
from obt.projections.uptime import CATEGORY_FIELD, seconds_field
from obt.store.ports import Doc

SortField = Literal[
    "status",
    "hostname",
    "client_id",
    "last_seen",
    "agent_version",
    "ollama_version",
    "models_count",
    "loaded_count",
    "uptime_24h",
]
SORT_FIELDS: tuple[SortField, ...] = (
    "status",
    "hostname",
    "client_id",
    "last_seen",
    "agent_version",
    "ollama_version",
    "models_count",
    "loaded_count",
    "uptime_24h",
)
Order = Literal["asc", "desc"]
# The order statuses are listed in (the dashboard's): what needs attention first.
STATUS_RANK = {
    s.value: i
    for i, s in enumerate(
        (
            Status.OFFLINE,
            Status.DEGRADED,
            Status.UNKNOWN,
            Status.ONLINE,
            Status.STOPPED,
            Status.DECOMMISSIONED,
        )
    )
}
STATUSES = tuple(STATUS_RANK)
Key = tuple[Any, ...]
# Match sets up to this size are sorted directly; larger ones are found by walking the order
# (a quarter of the fleet fills a page within a few hundred steps).
FEW = 5_000
# An ordering that heartbeats move (last_seen, ollama_version) is dropped when nobody asked
# for it this long: keeping it costs work on every heartbeat.
IDLE_LIVE_ORDERING = timedelta(minutes=2)


DAY = timedelta(hours=24)
FIELD_BY_STATUS = {status.value: seconds_field(status) for status in Status}


class InvalidCursor(ValueError):
    pass


def uptime_fraction(recent: Iterable[list[Any]], now: datetime) -> float | None:
    """Share of counted time in the last 24 h that was up; unknown time is not counted."""
    window_start = (now - DAY).timestamp()
    end_ts = now.timestamp()
    totals = dict.fromkeys(CATEGORY_FIELD.values(), 0.0)
    for status, start, end in recent:
        field_name = FIELD_BY_STATUS[status]
        if field_name is None:
            continue
        lo, hi = max(start, window_start), min(end if end is not None else end_ts, end_ts)
        if hi > lo:
            totals[field_name] += hi - lo
    counted = totals["up_s"] + totals["degraded_s"] + totals["down_s"]
    return round(totals["up_s"] / counted, 6) if counted > 0 else None


def _version(value: str | None) -> Key:
    """Dotted versions compare numerically ("0.10.1" > "0.9.3"); a missing one sorts first."""
    if not value:
        return (0,)
    return (1, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.-]", value)))


def _ollama_version(doc: Doc) -> str | None:
    ollama = doc.get("ollama") or {}
    return ollama.get("version")


# Each sort field: its key (the client's hostname and id follow, for a stable total order),
# and whether a heartbeat in the same status can move it.
KEYS: dict[str, tuple[Callable[[Doc, datetime], Key], bool]] = {
    "hostname": (lambda d, now: (), False),
    "client_id": (lambda d, now: (d["client_id"],), False),
    "last_seen": (lambda d, now: (d.get("last_seen") is not None, d.get("last_seen") or ""), True),
    "agent_version": (lambda d, now: (_version(d.get("agent_version")),), False),
    "ollama_version": (lambda d, now: (_version(_ollama_version(d)),), True),
    "models_count": (lambda d, now: (d.get("models_count", 0),), False),
    "loaded_count": (lambda d, now: (d.get("loaded_count", 0),), False),
    # Uptime drifts with time alone; its order follows each client's last status change
    # (the value shown is always computed when asked).
    "uptime_24h": (
        lambda d, now: ((u := uptime_fraction(d.get("recent", []), now)) is not None, u or 0.0),
        False,
    ),
}


def _entry(field_name: str, doc: Doc, now: datetime) -> Key:
    key = KEYS[field_name][0](doc, now)
    return (*key, doc.get("hostname") or "", doc["client_id"])


@dataclass
class _Ordering:
    live: bool  # moved by heartbeats
    used_at: datetime | None = None
    parts: dict[str, SortedList] = field(default_factory=dict)
    entries: dict[str, Key] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientQuery:
    sort: SortField = "hostname"
    order: Order = "asc"
    statuses: frozenset[str] = frozenset()  # empty: every status
    labels: tuple[tuple[str, str], ...] = ()  # every one must match
    search: str = ""  # whitespace-separated terms; every one must match
    limit: int | None = None  # None: every match
    cursor: str | None = None
    among: frozenset[str] | None = None  # only these clients (None: any)


@dataclass
class ClientPage:
    ids: list[str]
    next_cursor: str | None
    matched: int


def encode_cursor(sort: str, order: str, key: Key) -> str:
    raw = orjson.dumps([sort, order, key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def decode_cursor(cursor: str, sort: str, order: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, made_order, key = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidCursor("the cursor is not one this server gave out") from None
    if made_for != sort or made_order != order or not isinstance(key, list) or not key:
        raise InvalidCursor(
            "the cursor belongs to another sort or order; start again without a cursor"
        )
    return _tuples(key)  # type: ignore[no-any-return]


class ClientIndex:
    """Sorted, partitioned views of the client documents, kept in step with a change feed."""

    def __init__(
        self, docs: Callable[[], dict[str, Doc]], changes: ClientChanges, *, few: int = FEW
    ) -> None:
        self._docs = docs
        self._few_max = few
        self._changes = changes
        self.status: dict[str, str] = {}
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self._text: dict[str, str] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._by_label: dict[tuple[str, str], set[str]] = {}
        self._orderings: dict[str, _Ordering] = {}
        self._label_options: list[str] | None = None

    # -- keeping up with the projector -------------------------------------------------

    def sync(self, now: datetime) -> None:
        changes = self._changes
        if changes.reset:
            changes.reset = False
            changes.shaped.clear()
            changes.any.clear()
            self._rebuild(now)
            return
        docs = self._docs()
        shaped, changes.shaped = changes.shaped, set()
        for cid in shaped:
            doc = docs.get(cid)
            if doc is not None:
                self._reshape(doc, now)
        touched, changes.any = changes.any, set()
        for name, ordering in list(self._orderings.items()):
            if ordering.live and ordering.used_at and now - ordering.used_at > IDLE_LIVE_ORDERING:
                del self._orderings[name]
        live = [o for o in self._orderings.items() if o[1].live]
        if live:
            for cid in touched - shaped:
                doc = docs.get(cid)
                if doc is not None:
                    for name, ordering in live:
                        self._place(name, ordering, doc, now)

    def _rebuild(self, now: datetime) -> None:
        names = list(self._orderings)
        self.status.clear()
        self.counts = dict.fromkeys(STATUSES, 0)
        self._text.clear()
        self._labels.clear()
        self._by_label.clear()
        self._label_options = None
        self._orderings.clear()
        docs = [d for d in self._docs().values() if d.get("status") in STATUS_RANK]
        for doc in docs:
            cid = doc["client_id"]
            self.status[cid] = doc["status"]
            self.counts[doc["status"]] += 1
            self._text[cid] = _search_text(doc)
            self._set_labels(cid, doc)
        for name in names:
            self._ordering(name, now, docs)

    def _ordering(self, name: str, now: datetime, docs: Iterable[Doc] | None = None) -> _Ordering:
        ordering = self._orderings.get(name)
        if ordering is not None:
            return ordering
        ordering = _Ordering(live=KEYS[name][1])
        if docs is None:
            all_docs = self._docs()
            docs = (all_docs[cid] for cid in self.status if cid in all_docs)
        by_status: dict[str, list[Key]] = {s: [] for s in STATUSES}
        for doc in docs:
            entry = _entry(name, doc, now)
            ordering.entries[doc["client_id"]] = entry
            by_status[doc["status"]].append(entry)
        ordering.parts = {s: SortedList(entries) for s, entries in by_status.items()}
        self._orderings[name] = ordering
        return ordering

    def _reshape(self, doc: Doc, now: datetime) -> None:
        status = doc.get("status")
        if status not in STATUS_RANK:
            return
        cid = doc["client_id"]
        old = self.status.get(cid)
        if old != status:
            if old is not None:
                self.counts[old] -= 1
            self.counts[status] += 1
            self.status[cid] = status
        self._text[cid] = _search_text(doc)
        self._set_labels(cid, doc)
        for name, ordering in self._orderings.items():
            self._place(name, ordering, doc, now, old)

    def _set_labels(self, cid: str, doc: Doc) -> None:
        labels = dict(doc.get("labels") or {})
        old = self._labels.get(cid)
        if labels == old:
            return
        for item in (old or {}).items():
            self._by_label[item].discard(cid)
        for item in labels.items():
            self._by_label.setdefault(item, set()).add(cid)
        self._labels[cid] = labels
        self._label_options = None

    def _place(
        self,
        name: str,
        ordering: _Ordering,
        doc: Doc,
        now: datetime,
        old_status: str | None = None,
    ) -> None:
        cid = doc["client_id"]
        status = doc["status"]
        entry = _entry(name, doc, now)
        previous = ordering.entries.get(cid)
        was = old_status if old_status is not None else status
        if previous == entry and was == status:
            return
        if previous is not None:
            ordering.parts[was].discard(previous)
        ordering.parts[status].add(entry)
        ordering.entries[cid] = entry

    # -- reading ----------------------------------------------------------------------

    def page(self, query: ClientQuery, now: datetime) -> ClientPage:
        self.sync(now)
        statuses = [s for s in STATUSES if not query.statuses or s in query.statuses]
        matching = self._matching(query, statuses)
        matched = len(matching) if matching is not None else sum(self.counts[s] for s in statuses)
        by_status = query.sort == "status"
        ordering = self._ordering("hostname" if by_status else query.sort, now)
        ordering.used_at = now
        after = (
            decode_cursor(query.cursor, query.sort, query.order)
            if query.cursor is not None
            else None
        )
        desc = query.order == "desc"
        limit = query.limit
        ids: list[str] = []
        last: Key | None = None
        try:
            if matching is not None and len(matching) <= self._few_max:
                stream: Iterable[Key] = self._few(ordering, matching, by_status, desc, after)
            else:
                stream = self._stream(ordering, statuses, by_status, desc, after)
            for key in stream:
                cid = key[-1]
                if matching is not None and cid not in matching:
                    continue
                if limit is not None and len(ids) == limit:
                    break
                ids.append(cid)
                last = key
            else:
                last = None  # the end: no next page
        except TypeError:  # a forged cursor whose key cannot be compared with ours
            raise InvalidCursor("the cursor is not one this server gave out") from None
        next_cursor = (
            encode_cursor(query.sort, query.order, last) if last is not None and ids else None
        )
        return ClientPage(ids=ids, next_cursor=next_cursor, matched=matched)

    def _stream(
        self,
        ordering: _Ordering,
        statuses: list[str],
        by_status: bool,
        desc: bool,
        after: Key | None,
    ) -> Iterator[Key]:
        """Keys in the asked order, after the cursor; by status they carry the rank first."""
        if by_status:
            ranked = sorted(statuses, key=STATUS_RANK.__getitem__, reverse=desc)
            for status in ranked:
                rank = STATUS_RANK[status]
                if after is not None:
                    if (rank < after[0]) if not desc else (rank > after[0]):
                        continue
                    within = after[1:] if rank == after[0] else None
                else:
                    within = None
                for key in _range(ordering.parts[status], within, desc):
                    yield (rank, *key)
            return
        yield from heapq.merge(
            *(_range(ordering.parts[s], after, desc) for s in statuses), reverse=desc
        )

    def _few(
        self,
        ordering: _Ordering,
        matching: set[str],
        by_status: bool,
        desc: bool,
        after: Key | None,
    ) -> Iterator[Key]:
        """A small match set sorted directly, rather than found by walking every client."""
        entries = ordering.entries
        if by_status:
            keys = [(STATUS_RANK[self.status[c]], *entries[c]) for c in matching]
        else:
            keys = [entries[c] for c in matching]
        keys.sort(reverse=desc)
        if after is not None:
            keys = [k for k in keys if (k < after if desc else k > after)]
        return iter(keys)

    def _matching(self, query: ClientQuery, statuses: list[str]) -> set[str] | None:
        """The ids that pass the label and text filters (and the status filter), or None
        when there are no such filters."""
        terms = query.search.lower().split()
        if not terms and not query.labels and query.among is None:
            return None
        pool: set[str] | None = None
        if query.among is not None:
            pool = {cid for cid in query.among if cid in self.status}
        for item in sorted(query.labels, key=lambda i: len(self._by_label.get(i, ()))):
            ids = self._by_label.get(item, set())
            pool = set(ids) if pool is None else pool & ids
        text = self._text
        for term in terms:
            if pool is None:
                pool = {cid for cid, t in text.items() if term in t}
            else:
                pool = {cid for cid in pool if term in text[cid]}
        assert pool is not None
        if len(statuses) < len(STATUSES):
            wanted = set(statuses)
            status = self.status
            pool = {cid for cid in pool if status[cid] in wanted}
        return pool

    def labels(self) -> list[str]:
        """Every `key=value` label in the fleet, sorted (for the label filter)."""
        if self._label_options is None:
            self._label_options = sorted(
                {f"{k}={v}" for own in self._labels.values() for k, v in own.items()}
            )
        return self._label_options


def _range(part: SortedList, after: Key | None, desc: bool) -> Iterator[Key]:
    if after is None:
        return iter(reversed(part)) if desc else iter(part)
    if desc:
        return part.irange(maximum=after, inclusive=(True, False), reverse=True)  # type: ignore[no-any-return]
    return part.irange(minimum=after, inclusive=(False, True))  # type: ignore[no-any-return]


def _search_text(doc: Doc) -> str:
    return " ".join(
        (doc.get("hostname") or "", doc["client_id"], doc.get("agent_version") or "")
    ).lower()
