"""The status a client shows, derived from its events and the server's own start and stop.

Shared by the clients and uptime projectors so both tell one story. Server outages make every
client *unknown*: the server was not watching. After a start, a watched client stays unknown
until it heartbeats (online/degraded) or times out (offline from the start, not from before the
outage); clients that were offline or stopped go back to that status at the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from obt.domain.events import (
    ClientDecommissioned,
    ClientDeregistered,
    ClientRegistered,
    ClientReregistered,
    ClientTimedOut,
    Event,
    HeartbeatReceived,
    ServerStarted,
    ServerStopped,
)
from obt.domain.liveness import Status, reachable_status


@dataclass(slots=True)
class Liveness:
    status: Status
    since: datetime
    underlying: Status  # what the client's own events say, outages aside


def client_transition(
    current: Liveness | None, event: Event, at: datetime, observed_since: datetime | None
) -> Liveness | None:
    """The new liveness after a client event, or None when the status does not change.

    `observed_since` is when the server last started watching (its last ServerStarted).
    """
    match event:
        case ClientRegistered() | ClientReregistered():
            status = reachable_status(bool(event.ollama.get("reachable")))
            return _moved(current, status, at, status)
        case HeartbeatReceived():
            status = reachable_status(bool(event.ollama.get("reachable")))
            if current is not None and current.status is status and current.underlying is status:
                return None  # the common case: one more heartbeat, nothing moved
            return _moved(current, status, at, status)
        case ClientTimedOut():
            since = event.offline_since
            if current is not None:
                since = max(since, current.since)
            if observed_since is not None:
                since = max(since, observed_since)
            return _moved(current, Status.OFFLINE, min(since, at), Status.OFFLINE)
        case ClientDeregistered():
            return _moved(current, Status.STOPPED, at, Status.STOPPED)
        case ClientDecommissioned():
            return _moved(current, Status.DECOMMISSIONED, at, Status.DECOMMISSIONED)
        case _:
            return None


def server_transitions(current: Liveness, event: Event) -> list[Liveness]:
    """The successive liveness values of one client when the server stops or starts."""
    if current.status is Status.DECOMMISSIONED:
        return []
    steps: list[Liveness] = []
    match event:
        case ServerStopped():
            if current.status is not Status.UNKNOWN:
                steps.append(Liveness(Status.UNKNOWN, event.stopped_at, current.underlying))
        case ServerStarted():
            if event.unknown_since is not None and current.status is not Status.UNKNOWN:
                # The previous run died without a ServerStopped: unknown since its last event.
                since = max(event.unknown_since, current.since)
                steps.append(Liveness(Status.UNKNOWN, since, current.underlying))
            if current.underlying in (Status.OFFLINE, Status.STOPPED):
                since = max(event.started_at, current.since)
                steps.append(Liveness(current.underlying, since, current.underlying))
    return steps


def _moved(current: Liveness | None, status: Status, at: datetime, underlying: Status) -> Liveness:
    if current is not None and current.status is status:
        return Liveness(status, current.since, underlying)
    return Liveness(status, at, underlying)
