"""The exceptions OBT raises, under one base class.

OBTError
├── StoreError                   the event log or read models could not be used
│   ├── StoreUnavailable         unreachable, locked, read-only, disk full: retry later
│   ├── StoreMisconfigured       the server cannot work with this store (e.g. no transactions)
│   ├── CorruptEvent             a stored event cannot be decoded or upcast
│   ├── EventRemovalRefused      compaction asked to remove a head or a stream's last event
│   ├── LeaseLost                a job's write carried a fencing token no longer the lease's
│   └── ArchiveError             an archive segment is missing, altered or out of order
├── ConcurrencyError             an optimistic check failed
│   ├── WrongExpectedVersion     a stream moved on since it was read
│   ├── DuplicateEventId         an event id was reused with another payload
│   └── CheckpointConflict       a projection's checkpoint moved on (another runner)
├── DomainError                  a command is not allowed in the aggregate's state
│   ├── UnknownClient
│   ├── ClientIsDecommissioned
│   ├── InvalidCommand
│   ├── UnknownOperation
│   ├── InvalidOperation         a fleet operation that cannot be requested as asked
│   ├── UnknownAlertRule
│   └── InvalidAlertRule         a rule (or maintenance window) that cannot be accepted
├── AuthError
│   ├── NotAuthenticated         no or unknown credentials
│   └── Forbidden                valid credentials, not for this resource
├── AgentUnreachable             a message for an agent cannot be sent over its channel
│   ├── AgentNotConnected        no channel to that agent is open on this server
│   └── AgentBusy                its channel's send queue is full (the agent reads too slowly)
└── SettingsError                a setting is missing or invalid
"""

from __future__ import annotations


class OBTError(Exception):
    """Base of every error OBT raises on purpose."""


class StoreError(OBTError):
    pass


class StoreUnavailable(StoreError):
    """The store cannot be reached or written right now; the caller may retry."""

    retry_after_s: int = 5


class StoreMisconfigured(StoreError):
    pass


class CorruptEvent(StoreError):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"stored event at position {position} cannot be read: {reason}")
        self.position = position
        self.reason = reason


class EventRemovalRefused(StoreError):
    """Removing these events would move the head or a stream's version back: refused."""


class LeaseLost(StoreError):
    """A job's write carried the token of a lease another instance has taken since: refused
    (the job pauses until this instance holds the lease again)."""


class ArchiveError(StoreError):
    """The archive cannot be read or written as its manifest says."""


class ConcurrencyError(OBTError):
    pass


class WrongExpectedVersion(ConcurrencyError):
    def __init__(self, stream: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class DuplicateEventId(ConcurrencyError):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"event id {event_id} was already stored with another payload")
        self.event_id = event_id


class CheckpointConflict(ConcurrencyError):
    def __init__(self, projection: str, expected: int, actual: int) -> None:
        super().__init__(
            f"projection {projection!r} checkpoint is {actual}, expected {expected}: "
            "another runner advanced it"
        )
        self.projection = projection
        self.expected = expected
        self.actual = actual


class DomainError(OBTError):
    pass


class UnknownClient(DomainError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client {client_id!r} is registered")
        self.client_id = client_id


class ClientIsDecommissioned(DomainError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"client {client_id!r} was decommissioned by an admin")
        self.client_id = client_id


class InvalidCommand(DomainError):
    """Refused by the aggregate's rules; `code` is stable (e.g. stale_seq, session_mismatch)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownOperation(DomainError):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"no operation {operation_id!r}")
        self.operation_id = operation_id


class InvalidOperation(DomainError):
    """Refused by the operation's rules; `code` is stable, the message says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownAlertRule(DomainError):
    def __init__(self, rule_id: str) -> None:
        super().__init__(f"no alert rule {rule_id!r}")
        self.rule_id = rule_id


class InvalidAlertRule(DomainError):
    """Refused by the alert rules' validation; `code` is stable, the message says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AuthError(OBTError):
    pass


class NotAuthenticated(AuthError):
    pass


class Forbidden(AuthError):
    pass


class AgentUnreachable(OBTError):
    def __init__(self, client_id: str, message: str) -> None:
        super().__init__(message)
        self.client_id = client_id


class AgentNotConnected(AgentUnreachable):
    def __init__(self, client_id: str) -> None:
        super().__init__(client_id, f"no channel to client {client_id!r} is open on this server")


class AgentBusy(AgentUnreachable):
    def __init__(self, client_id: str) -> None:
        super().__init__(client_id, f"the channel to client {client_id!r} has a full send queue")


class SettingsError(OBTError):
    pass
