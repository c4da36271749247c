"""Liveness rules: statuses, what each counts as in uptime, and when silence is a timeout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    STOPPED = "stopped"
    UNKNOWN = "unknown"
    DECOMMISSIONED = "decommissioned"


class UptimeCategory(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


# Decommissioned time is not counted at all, like time before registration.
UPTIME_CATEGORY: dict[Status, UptimeCategory | None] = {
    Status.ONLINE: UptimeCategory.UP,
    Status.DEGRADED: UptimeCategory.DEGRADED,
    Status.OFFLINE: UptimeCategory.DOWN,
    Status.STOPPED: UptimeCategory.DOWN,
    Status.UNKNOWN: UptimeCategory.UNKNOWN,
    Status.DECOMMISSIONED: None,
}

# Statuses in which a client is expected to keep sending heartbeats.
WATCHED = frozenset({Status.ONLINE, Status.DEGRADED})


def reachable_status(ollama_reachable: bool) -> Status:
    return Status.ONLINE if ollama_reachable else Status.DEGRADED


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    interval_s: float = 10.0
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("heartbeat interval must be positive")
        if self.timeout_s <= self.interval_s:
            raise ValueError("heartbeat timeout must be longer than the interval")

    def deadline(self, last_seen: datetime, server_started_at: datetime | None) -> datetime:
        """When silence since `last_seen` becomes a timeout.

        After a server start the server waits one whole timeout window before judging
        anyone: agents could not reach it while it was down.
        """
        deadline = last_seen + timedelta(seconds=self.timeout_s)
        if server_started_at is not None:
            deadline = max(deadline, server_started_at + timedelta(seconds=self.timeout_s))
        return deadline

    def offline_since(self, last_seen: datetime) -> datetime:
        # The first heartbeat that failed to arrive was due one interval after the last one.
        return last_seen + timedelta(seconds=self.interval_s)
