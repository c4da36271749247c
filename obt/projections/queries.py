"""Read-side queries: turn read-model documents into the shapes the API and dashboard use."""

from __future__ import annotations

from datetime import datetime

from obt.domain.liveness import Status
from obt.projections.client_index import (
    ClientIndex,
    ClientQuery,
    InvalidCursor,
    uptime_fraction,
)
from obt.projections.clients import CLIENTS, ClientChanges, ClientsProjector
from obt.projections.models import MODELS, ModelsProjector, ModelTally
from obt.projections.timeline import TIMELINE
from obt.projections.uptime import (
    BUCKETS,
    INTERVALS,
    OPEN,
    ZERO,
    bucket_start,
    bucket_width,
    seconds_field,
    split,
)
from obt.store.ports import Doc, ReadStore

SUMMARY_FIELDS = (
    "client_id",
    "hostname",
    "status",
    "status_since",
    "last_seen",
    "registered_at",
    "platform",
    "agent_version",
    "labels",
    "ollama",
    "models_count",
    "loaded_count",
    "clock_skew_ms",
    "session_id",
    "position",
    "transport",
    "connected_since",
    "connection_lost",
    "last_disconnect",
)
MAX_BUCKETS = {"hour": 24 * 31, "day": 366 * 2}
__all__ = ["InvalidCursor", "RangeTooLarge", "ReadModels", "uptime_fraction"]


class RangeTooLarge(ValueError):
    pass


def reconnects_within(reconnects: list[float], now: datetime, hours: float = 24) -> int:
    """How often the agent's channel opened again within the last `hours`."""
    horizon = now.timestamp() - hours * 3600
    return sum(1 for t in reconnects if t >= horizon)


def client_summary(doc: Doc, now: datetime) -> Doc:
    out = {k: doc.get(k) for k in SUMMARY_FIELDS}
    out["uptime_24h"] = uptime_fraction(doc.get("recent", []), now)
    out["reconnects_24h"] = reconnects_within(doc.get("reconnects", []), now)
    return out


def client_detail(doc: Doc, now: datetime) -> Doc:
    out = client_summary(doc, now)
    out["models"] = sorted(doc.get("models", {}).values(), key=lambda m: m["name"])
    out["loaded"] = sorted(doc.get("loaded", {}).values(), key=lambda m: m["name"])
    return out


def _model_host(client_id: str, hostname: str | None, host: Doc) -> Doc:
    return {
        "client_id": client_id,
        "hostname": hostname or client_id,
        "digest": host.get("digest"),
        "size": host.get("size"),
        "installed": bool(host.get("installed")),
        "loaded": bool(host.get("loaded")),
        "size_vram": host.get("size_vram"),
        "expires_at": host.get("expires_at"),
    }


class ReadModels:
    """Queries over the read models.

    Given the running projectors, the current clients and models are read from their memory
    (the same documents they commit, at least as fresh); everything else from the store.
    """

    def __init__(
        self,
        store: ReadStore,
        clients: ClientsProjector | None = None,
        models: ModelsProjector | None = None,
    ) -> None:
        self._store = store
        self._clients = clients
        self._models = models
        self._clients_cache: tuple[tuple[int, int], list[Doc]] | None = None
        self._index = ClientIndex(lambda: clients.docs, clients.watch()) if clients else None
        self._models_cache: tuple[tuple[int, int], list[Doc]] | None = None
        self._model_summary_cache: tuple[int, list[Doc], frozenset[str]] | None = None

    @property
    def store(self) -> ReadStore:
        return self._store

    async def _client_docs(self) -> list[Doc]:
        if self._clients is not None:
            return list(self._clients.docs.values())
        return await self._store.find(CLIENTS)

    async def clients(self, now: datetime) -> list[Doc]:
        # A dashboard full of viewers asks for the same list: within one second and with no
        # change to any client, the list built last time is the answer.
        key = (self._clients.revision, int(now.timestamp())) if self._clients else None
        if key is not None and self._clients_cache is not None and self._clients_cache[0] == key:
            return self._clients_cache[1]
        docs = await self._client_docs()
        items = sorted(
            (client_summary(d, now) for d in docs),
            key=lambda c: (c.get("hostname") or "", c["client_id"]),
        )
        if key is not None:
            self._clients_cache = (key, items)
        return items

    async def _client_index(self) -> tuple[ClientIndex, dict[str, Doc]]:
        if self._clients is not None and self._index is not None:
            return self._index, self._clients.docs
        # Without the projector's memory (a reader beside a server): an index of this moment.
        docs = {d["client_id"]: d for d in await self._store.find(CLIENTS)}
        return ClientIndex(lambda: docs, ClientChanges()), docs

    async def client_page(self, query: ClientQuery, now: datetime) -> Doc:
        """One page of clients, sorted and filtered, with the fleet's counts by status.

        Raises InvalidCursor for a cursor this server did not give out for this sort.
        """
        index, docs = await self._client_index()
        page = index.page(query, now)
        return {
            "items": [client_summary(docs[cid], now) for cid in page.ids],
            "next_cursor": page.next_cursor,
            "matched": page.matched,
            **self._counts(index),
        }

    async def fleet_counts(self, now: datetime) -> Doc:
        index, _ = await self._client_index()
        index.sync(now)
        return self._counts(index)

    def warm(self, now: datetime) -> None:
        """Build the clients index and its default order at start, not on a first request
        (about a second at 100,000 clients)."""
        if self._index is not None:
            self._index.page(ClientQuery(sort="status", limit=1), now)

    def status_counts(self, now: datetime) -> dict[str, int]:
        """Clients by status (every status), from the index: no walk over the fleet."""
        if self._index is None:
            raise RuntimeError("status_counts needs the clients projector")
        self._index.sync(now)
        return dict(self._index.counts)

    @staticmethod
    def _counts(index: ClientIndex) -> Doc:
        return {"total": len(index.status), "counts": dict(index.counts)}

    async def client_labels(self, now: datetime) -> list[str]:
        index, _ = await self._client_index()
        index.sync(now)
        return index.labels()

    async def _client_doc(self, client_id: str) -> Doc | None:
        if self._clients is not None:
            return self._clients.docs.get(client_id)
        return await self._store.get(CLIENTS, client_id)

    async def client(self, client_id: str, now: datetime) -> Doc | None:
        doc = await self._client_doc(client_id)
        return client_detail(doc, now) if doc else None

    async def client_summary(self, client_id: str, now: datetime) -> Doc | None:
        doc = await self._client_doc(client_id)
        return client_summary(doc, now) if doc else None

    async def timeline(
        self, client_id: str | None, before: int | None, limit: int
    ) -> tuple[list[Doc], int | None]:
        docs = await self._store.find(
            TIMELINE,
            client_id=client_id,
            sort_lt=float(before) if before is not None else None,
            descending=True,
            limit=limit + 1,
        )
        items = [
            {k: d[k] for k in ("position", "at", "client_id", "type", "summary")} for d in docs
        ]
        more = len(items) > limit
        items = items[:limit]
        return items, (items[-1]["position"] if more and items else None)

    async def models(self) -> list[Doc]:
        # Hostnames are all this reads of the clients: heartbeats do not invalidate it.
        key = (
            (self._models.revision, self._clients.shape_revision)
            if self._models and self._clients
            else None
        )
        if key is not None and self._models_cache is not None and self._models_cache[0] == key:
            return self._models_cache[1]
        items = await self._build_models()
        if key is not None:
            self._models_cache = (key, items)
        return items

    async def models_page(self, hosts_limit: int, hosts_cursor: str | None, now: datetime) -> Doc:
        """Every model with fleet-wide counts, and its hosts only among one page of hosts
        (by hostname): a matrix of models by a page of hosts, whatever the fleet's size.

        Raises InvalidCursor for a cursor this server did not give out.
        """
        summaries, holders = await self._model_summaries()
        index, docs = await self._client_index()
        page = index.page(
            ClientQuery(sort="hostname", limit=hosts_limit, cursor=hosts_cursor, among=holders),
            now,
        )
        on_page = page.ids
        items = []
        for summary in summaries:
            held = summary["doc"]["hosts"]
            hosts = [
                _model_host(cid, docs[cid].get("hostname"), held[cid])
                for cid in on_page
                if cid in held
            ]
            items.append({k: v for k, v in summary.items() if k != "doc"} | {"hosts": hosts})
        return {
            "items": items,
            "hosts": [
                {"client_id": cid, "hostname": docs[cid].get("hostname") or cid} for cid in on_page
            ],
            "hosts_total": page.matched,
            "next_hosts_cursor": page.next_cursor,
        }

    async def _model_summaries(self) -> tuple[list[Doc], frozenset[str]]:
        """Per model: counts by what hosts hold (digests, installed, loaded), and every host
        that holds any model; rebuilt only when a model changes, never per heartbeat."""
        revision = self._models.revision if self._models is not None else None
        held = self._model_summary_cache
        if revision is not None and held is not None and held[0] == revision:
            return held[1], held[2]
        if self._models is not None:
            docs = list(self._models.docs.values())
            tallies = self._models.tallies
        else:
            docs = await self._store.find(MODELS)
            tallies = {}
            for doc in docs:
                tally = tallies[doc["name"]] = ModelTally()
                for host in doc["hosts"].values():
                    tally.add(host, 1)
        summaries: list[Doc] = []
        holders: set[str] = set()
        for doc in sorted(docs, key=lambda d: d["name"]):
            holders.update(doc["hosts"])
            tally = tallies[doc["name"]]
            summaries.append(
                {
                    "name": doc["name"],
                    "digests": doc.get("digests", []),
                    "digest_counts": dict(tally.digests),
                    "drift": bool(doc.get("drift")),
                    "installed_count": tally.installed,
                    "loaded_count": tally.loaded,
                    "hosts_count": len(doc["hosts"]),
                    "doc": doc,
                }
            )
        frozen = frozenset(holders)
        if revision is not None:
            self._model_summary_cache = (revision, summaries, frozen)
        return summaries, frozen

    async def _build_models(self) -> list[Doc]:
        if self._models is not None:
            docs = list(self._models.docs.values())
        else:
            docs = await self._store.find(MODELS)
        names = {d["client_id"]: d.get("hostname") for d in await self._client_docs()}
        items = []
        for doc in sorted(docs, key=lambda d: d["name"]):
            hosts = [_model_host(cid, names.get(cid), h) for cid, h in sorted(doc["hosts"].items())]
            items.append(
                {
                    "name": doc["name"],
                    "hosts": hosts,
                    "digests": doc.get("digests", []),
                    "drift": bool(doc.get("drift")),
                    "installed_count": sum(1 for h in hosts if h["installed"]),
                    "loaded_count": sum(1 for h in hosts if h["loaded"]),
                }
            )
        return items

    async def uptime(
        self, client_id: str, start: datetime, end: datetime, bucket: str, now: datetime
    ) -> Doc:
        width = bucket_width(bucket)
        first = bucket_start(start, bucket)
        count = int((end - first) / width) + 1
        if count > MAX_BUCKETS[bucket]:
            raise RangeTooLarge(
                f"{count} {bucket} buckets asked for; at most {MAX_BUCKETS[bucket]} at once"
            )
        stored = await self._store.find(
            BUCKETS[bucket],
            client_id=client_id,
            sort_gte=first.timestamp(),
            sort_lt=end.timestamp(),
        )
        by_start = {d["start"]: d for d in stored}
        items: dict[datetime, dict[str, float]] = {}
        cursor = first
        while cursor < end:
            doc = by_start.get(cursor.isoformat())
            items[cursor] = {f: float(doc.get(f, 0.0)) if doc else 0.0 for f in ZERO}
            cursor += width
        open_doc = await self._store.get(OPEN, client_id)
        if open_doc is not None:
            field = seconds_field(Status(open_doc["status"]))
            since = datetime.fromisoformat(open_doc["since"])
            if field is not None and since < min(now, end):
                for b, seconds in split(max(since, first), min(now, end), bucket):
                    if b in items:
                        items[b][field] += seconds
        intervals = await self._intervals(client_id, start, end)
        return {
            "bucket": bucket,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "items": [
                {
                    "start": b.isoformat(),
                    "end": (b + width).isoformat(),
                    **{k: round(v, 3) for k, v in secs.items()},
                }
                for b, secs in items.items()
            ],
            "intervals": intervals,
        }

    async def _intervals(self, client_id: str, start: datetime, end: datetime) -> list[Doc]:
        earlier = await self._store.find(
            INTERVALS, client_id=client_id, sort_lt=start.timestamp(), descending=True, limit=1
        )
        within = await self._store.find(
            INTERVALS, client_id=client_id, sort_gte=start.timestamp(), sort_lt=end.timestamp()
        )
        out = []
        for d in [*earlier, *within]:
            if d["end"] is not None and datetime.fromisoformat(d["end"]) <= start:
                continue
            out.append({"status": d["status"], "start": d["start"], "end": d["end"]})
        return out
