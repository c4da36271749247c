"""Which heartbeats past the retention horizon no read model needs: the compaction rule.

Worked out from the projectors. A heartbeat changes a read model in two ways: it may move a
client's status (online/degraded after unknown, offline, a registration...), and it overwrites
the client's "latest heartbeat" fields (last_seen, seq, session, clock skew, Ollama's latency
and error; the Ollama version only when the heartbeat carries one). So a heartbeat H can go
when, in its own stream, the event just before it and the event just after it are heartbeats
with the same Ollama reachability and version as H, and no event outside the client streams
(a server start or stop, or any system or fleet-wide event) lies between those two. Then:

- H moves no status: the heartbeat before it already put the client in H's status (nothing
  but client events and server events change a status, and neither lies in between);
- everything H wrote is overwritten by the heartbeat after it, which stays;
- no timeline entry, model or uptime bucket comes from a heartbeat of unchanged status.

Hence a stream's first and last heartbeat, the last heartbeat before a timeout, a server
start, a status change, an Ollama change or any other event, and the first after any of them,
all stay. The rule is conservative on purpose: a new event type that is not a heartbeat breaks
a run, so read models added later keep what they might need. The proof is the property test
(tests/contract/test_compaction_property.py): rebuilding every read model from the compacted
log gives exactly the read models of before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from obt.domain.events import client_id_of
from obt.projections.base import HEARTBEAT
from obt.store.ports import RecordedEvent


def heartbeat_key(event: RecordedEvent) -> tuple[Any, ...] | None:
    """What of a heartbeat can outlive the next heartbeat; None for any other event."""
    if event.type != HEARTBEAT:
        return None
    ollama = event.data.get("ollama")
    if not isinstance(ollama, dict):
        return None  # not a heartbeat this rule understands: keep it and its neighbours
    return (bool(ollama.get("reachable")), ollama.get("version"))


@dataclass(slots=True)
class _Seen:
    event: RecordedEvent
    key: tuple[Any, ...] | None


@dataclass(slots=True)
class RetentionScan:
    """Feeds on the log in position order and tells which heartbeats may go.

    `horizon`: only heartbeats at or below this position may be removed. A heartbeat is
    decided when the next event of its stream is seen; one still undecided when the scan ends
    stays in the log (a later compaction may take it).
    """

    horizon: int
    _last: dict[str, tuple[_Seen | None, _Seen]] = field(default_factory=dict)
    _barrier: int = 0  # position of the last event outside the client streams
    removable: list[RecordedEvent] = field(default_factory=list)  # decided, not yet taken

    def feed(self, events: Iterable[RecordedEvent]) -> None:
        for event in events:
            if client_id_of(event.stream) is None:
                self._barrier = event.position
                continue
            seen = _Seen(event, heartbeat_key(event))
            window = self._last.get(event.stream)
            if window is not None:
                before, candidate = window
                if (
                    before is not None
                    and candidate.key is not None
                    and before.key == candidate.key == seen.key
                    and candidate.event.position <= self.horizon
                    and self._barrier < before.event.position
                ):
                    self.removable.append(candidate.event)
                self._last[event.stream] = (candidate, seen)
            else:
                self._last[event.stream] = (None, seen)

    def undecided_floor(self) -> int | None:
        """The lowest position at or below the horizon still waiting for its stream's next
        event; decided heartbeats above it must wait too, so segments stay in order."""
        pending = [
            candidate.event.position
            for _, candidate in self._last.values()
            if candidate.key is not None and candidate.event.position <= self.horizon
        ]
        return min(pending) if pending else None

    def take(self, *, final: bool) -> list[RecordedEvent]:
        """The decided heartbeats that can be archived now, in position order."""
        self.removable.sort(key=lambda e: e.position)
        if final:
            taken, self.removable = self.removable, []
            return taken
        floor = self.undecided_floor()
        if floor is None:
            taken, self.removable = self.removable, []
            return taken
        cut = next((i for i, e in enumerate(self.removable) if e.position > floor), None)
        if cut is None:
            taken, self.removable = self.removable, []
        else:
            taken, self.removable = self.removable[:cut], self.removable[cut:]
        return taken
