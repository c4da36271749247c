"""The server's own events on the `system` stream: started and stopped.

They let read models tell a server outage (*unknown*) from a client outage (*down*).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from obt import __version__
from obt.domain.events import SYSTEM_STREAM, ServerStarted, ServerStopped
from obt.store.ports import ANY, EventLog, NewEvent, RecordedEvent

STORE_OUTAGE_REASON = "store unavailable"


class ServerLifecycle:
    def __init__(self, log: EventLog, server_id: str | None = None) -> None:
        self._log = log
        self.server_id = server_id or uuid.uuid4().hex[:12]
        self.started_at: datetime | None = None

    async def record_start(self, now: datetime) -> ServerStarted:
        previous = "first"
        unknown_since = None
        last = await self._last_system_event()
        if last is not None and last.type == "ServerStopped":
            previous = "clean"
        elif last is not None:
            # The last run ended without a ServerStopped: it died. Nothing watched from its
            # last recorded event on.
            previous = "unclean"
            tail = await self._log.read_all(limit=1, descending=True)
            unknown_since = tail[0].recorded_at if tail else None
        event = ServerStarted(
            server_id=self.server_id,
            version=__version__,
            started_at=now,
            unknown_since=unknown_since,
            previous_shutdown=previous,
        )
        await self._append(event, now)
        self.started_at = now
        return event

    async def record_stop(self, now: datetime, reason: str = "shutdown") -> None:
        await self._append(
            ServerStopped(server_id=self.server_id, stopped_at=now, reason=reason), now
        )

    async def record_store_outage(self, down_since: datetime, now: datetime) -> None:
        """The store was unreachable from `down_since` to `now`: nothing was watched then.

        Recorded as a stop and a start in one append, so read models show the gap as
        *unknown* and the start's grace window spares clients whose heartbeats were refused.
        """
        tail = await self._log.read_all(limit=1, descending=True)  # the newest event
        # Never before an event already recorded: intervals only move forward.
        stopped_at = max(down_since, tail[0].recorded_at) if tail else down_since
        stopped = ServerStopped(
            server_id=self.server_id, stopped_at=stopped_at, reason=STORE_OUTAGE_REASON
        )
        started = ServerStarted(
            server_id=self.server_id,
            version=__version__,
            started_at=now,
            unknown_since=None,
            previous_shutdown="store_outage",
        )
        await self._log.append(
            SYSTEM_STREAM,
            [
                NewEvent(id=str(uuid.uuid4()), type=e.type_name(), data=e.to_data())
                for e in (stopped, started)
            ],
            expected_version=ANY,
            recorded_at=now,
        )
        self.started_at = now

    async def _last_system_event(self) -> RecordedEvent | None:
        """The last start or stop; other system events (LogCompacted) say nothing of runs."""
        events = await self._log.read_all(
            stream=SYSTEM_STREAM, types=(ServerStarted.type_name(), ServerStopped.type_name()),
            limit=1, descending=True,
        )  # fmt: skip
        return events[0] if events else None

    async def _append(self, event: ServerStarted | ServerStopped, now: datetime) -> None:
        await self._log.append(
            SYSTEM_STREAM,
            [NewEvent(id=str(uuid.uuid4()), type=event.type_name(), data=event.to_data())],
            expected_version=ANY,
            recorded_at=now,
        )
