"""Command handlers: load the aggregate, authorise, decide, append; retry on a lost race."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from obt.commands.messages import (
    CloseChannel,
    DecommissionClient,
    DeregisterClient,
    DetectTimeouts,
    OpenChannel,
    RecordHeartbeat,
    RegisterClient,
    ReportModels,
    RevokeClientSecret,
)
from obt.commands.repository import ClientRepository, deterministic_event_id
from obt.domain import channel as channel_rules
from obt.domain import client as rules
from obt.domain.client import ClientRuleViolation, ClientState
from obt.domain.events import Event
from obt.domain.liveness import WATCHED, LivenessPolicy, Status
from obt.errors import (
    ClientIsDecommissioned,
    DuplicateEventId,
    Forbidden,
    InvalidCommand,
    NotAuthenticated,
    UnknownClient,
    WrongExpectedVersion,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
TIMEOUT_BATCH = 1000  # timeouts decided and appended together at most


class Clock(Protocol):
    def now(self) -> datetime: ...


def hash_secret(secret: str) -> str:
    # A fast hash is right here: the secrets are 32 random bytes, not guessable passwords.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(candidate: str, expected: str | None) -> bool:
    if not expected:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Registration:
    created: bool
    client_secret: str | None
    state: ClientState


@dataclass(frozen=True, slots=True)
class HeartbeatAck:
    status: Status
    models_wanted: bool


@dataclass(frozen=True, slots=True)
class ModelsReport:
    added: list[str]
    removed: list[str]
    changed: list[str]
    loaded: list[str]
    unloaded: list[str]


def _domain_error(exc: ClientRuleViolation, client_id: str) -> Exception:
    if exc.code == "unknown_client":
        return UnknownClient(client_id)
    if exc.code == "client_decommissioned":
        return ClientIsDecommissioned(client_id)
    return InvalidCommand(exc.code, str(exc))


class ClientCommands:
    def __init__(
        self,
        repo: ClientRepository,
        clock: Clock,
        policy: LivenessPolicy,
        *,
        enrollment_token: str,
        server_started_at: Callable[[], datetime | None],
        server_id: str = "obt",
        write_gate: Callable[[], None] = lambda: None,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._policy = policy
        self._enrollment_token = enrollment_token
        self._server_started_at = server_started_at
        self._server_id = server_id
        self._next_due: datetime | None = None  # no timeout can fall due before this
        # Raises StoreUnavailable while the store is known to be down: refuse at once.
        self._write_gate = write_gate

    # ------------------------------------------------------------ authentication

    def is_enrollment_token(self, token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8"), self._enrollment_token.encode("utf-8"))

    def identify(self, token: str | None) -> tuple[str, str | None]:
        """What a Bearer token is: ("enrollment_token", None) or ("client_secret", id)."""
        if not token:
            raise NotAuthenticated("a Bearer token is required")
        if self.is_enrollment_token(token):
            return "enrollment_token", None
        owner = self._repo.owner_of_secret(hash_secret(token))
        if owner is None:
            raise NotAuthenticated("unknown or revoked token")
        return "client_secret", owner

    async def authenticate_client(self, client_id: str, token: str | None) -> ClientState:
        """The client's own secret only: 401 without or with unknown credentials, 403 for
        credentials that are valid but not this client's."""
        if not token:
            raise NotAuthenticated("a Bearer token is required")
        state = await self._repo.load(client_id)
        digest = hash_secret(token)
        if state.registered and same_secret(digest, state.secret_sha256):
            return state
        # Another instance may have issued a new secret since this one cached the client.
        if await self._repo.refreshed(client_id) and same_secret(digest, state.secret_sha256):
            return state
        owner = self._repo.owner_of_secret(digest)
        if owner is not None and owner != client_id:
            raise Forbidden(f"this secret belongs to another client, not {client_id!r}")
        if self.is_enrollment_token(token):
            raise Forbidden("the enrollment token only registers; use the client's secret")
        if not state.registered:
            raise UnknownClient(client_id)
        if state.status is Status.DECOMMISSIONED:
            raise ClientIsDecommissioned(client_id)
        raise NotAuthenticated("unknown or revoked client secret; register again")

    # ------------------------------------------------------------ commands

    async def register(self, cmd: RegisterClient) -> Registration:
        async with self._repo.lock(cmd.client_id):
            state = await self._repo.load(cmd.client_id)
            enrolling = self.is_enrollment_token(cmd.credential)
            if not enrolling:
                if not state.registered and not self._repo.owner_of_secret(
                    hash_secret(cmd.credential)
                ):
                    raise NotAuthenticated("a new client registers with the enrollment token")
                await self.authenticate_client(cmd.client_id, cmd.credential)
            secret = secrets.token_urlsafe(32) if enrolling else None
            created = not state.registered

            def decide(s: ClientState) -> list[Event]:
                return rules.decide_register(
                    s,
                    hostname=cmd.hostname,
                    platform=cmd.platform,
                    agent_version=cmd.agent_version,
                    labels=cmd.labels,
                    ollama=cmd.ollama,
                    session_id=cmd.session_id,
                    new_secret_sha256=hash_secret(secret) if secret else None,
                )

            state = await self._decide_and_save(
                cmd.client_id, decide, cmd.correlation_id, by_agent=not enrolling
            )
            return Registration(created=created, client_secret=secret, state=state)

    async def heartbeat(self, cmd: RecordHeartbeat) -> HeartbeatAck:
        async with self._repo.lock(cmd.client_id):
            now = self._clock.now()

            def decide(s: ClientState) -> list[Event]:
                return rules.decide_heartbeat(
                    s,
                    seq=cmd.seq,
                    session_id=cmd.session_id,
                    sent_at=cmd.sent_at,
                    ollama=cmd.ollama,
                    models_digest=cmd.models_digest,
                    now=now,
                )

            def ids(events: list[Event]) -> list[str]:
                return [
                    deterministic_event_id(cmd.client_id, "hb", cmd.session_id, cmd.seq, i)
                    for i in range(len(events))
                ]

            state = await self._decide_and_save(
                cmd.client_id, decide, cmd.correlation_id, now=now, ids=ids, by_agent=True
            )
            assert state.status is not None
            wanted = rules.models_wanted(state, cmd.models_digest)
            return HeartbeatAck(status=state.status, models_wanted=wanted)

    async def report_models(self, cmd: ReportModels) -> ModelsReport:
        async with self._repo.lock(cmd.client_id):
            recorded: list[Event] = []

            def decide(s: ClientState) -> list[Event]:
                events = rules.decide_report_models(s, installed=cmd.installed, loaded=cmd.loaded)
                recorded[:] = events
                return events

            await self._decide_and_save(cmd.client_id, decide, cmd.correlation_id, by_agent=True)
            names: dict[str, list[str]] = {
                k: [] for k in ("added", "removed", "changed", "loaded", "unloaded")
            }
            for e in recorded:
                key = type(e).__name__.removeprefix("Model").lower()
                if key in names:  # ModelsReported names no model
                    names[key].append(e.name)  # type: ignore[attr-defined]
            return ModelsReport(**names)

    async def deregister(self, cmd: DeregisterClient) -> None:
        async with self._repo.lock(cmd.client_id):
            await self._decide_and_save(
                cmd.client_id,
                lambda s: rules.decide_deregister(s, session_id=s.session_id, reason=cmd.reason),
                cmd.correlation_id,
                by_agent=True,
            )

    async def decommission(self, cmd: DecommissionClient) -> None:
        async with self._repo.lock(cmd.client_id):
            await self._decide_and_save(
                cmd.client_id,
                lambda s: rules.decide_decommission(s, reason=cmd.reason),
                cmd.correlation_id,
            )

    async def revoke_secret(self, cmd: RevokeClientSecret) -> None:
        async with self._repo.lock(cmd.client_id):
            await self._decide_and_save(
                cmd.client_id,
                lambda s: rules.decide_revoke_secret(s, reason=cmd.reason),
                cmd.correlation_id,
            )

    async def open_channel(self, cmd: OpenChannel) -> None:
        """Record a channel opened (and the one it replaces, closed) for the registered
        session; refused like a heartbeat of that session would be."""
        async with self._repo.lock(cmd.client_id):
            await self._decide_and_save(
                cmd.client_id,
                lambda s: channel_rules.decide_open_channel(
                    s,
                    channel_id=cmd.channel_id,
                    session_id=cmd.session_id,
                    remote=cmd.remote,
                    replacing=cmd.replacing,
                ),
                cmd.correlation_id,
                by_agent=True,
            )

    async def close_channel(self, cmd: CloseChannel) -> None:
        async with self._repo.lock(cmd.client_id):
            await self._decide_and_save(
                cmd.client_id,
                lambda s: channel_rules.decide_close_channel(
                    s, channel_id=cmd.channel_id, reason=cmd.reason, code=cmd.code
                ),
                cmd.correlation_id,
                by_agent=True,
            )

    async def detect_timeouts(self, _: DetectTimeouts | None = None) -> list[str]:
        """Emit ClientTimedOut for every silent client; returns the ids timed out.

        A full scan runs only once the earliest deadline seen by the last scan has passed:
        heartbeats only push deadlines later, and a client that (re)joins since then gets a
        deadline a whole timeout window after that scan, so nothing can fall due earlier.
        """
        now = self._clock.now()
        if self._next_due is not None and now < self._next_due:
            return []
        started = self._server_started_at()
        due: list[str] = []
        earliest: datetime | None = None
        for cached in self._repo.cached():
            if cached.status not in WATCHED or cached.last_seen is None:
                continue
            deadline = self._policy.deadline(cached.last_seen, started)
            if now > deadline:
                due.append(cached.client_id)
            elif earliest is None or deadline < earliest:
                earliest = deadline
        self._next_due = earliest or now + timedelta(seconds=self._policy.timeout_s)
        timed_out: list[str] = []
        errors: list[BaseException] = []
        # Together, so the store's group commit writes many timeouts in one transaction: a
        # new lease holder may find a whole instance's agents silent at once.
        for start in range(0, len(due), TIMEOUT_BATCH):
            chunk = due[start : start + TIMEOUT_BATCH]
            results = await asyncio.gather(
                *(self._time_out(cid, started) for cid in chunk), return_exceptions=True
            )
            for cid, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    errors.append(result)
                elif result:
                    timed_out.append(cid)
                    log.info("client %s timed out", cid)
        if errors:
            self._next_due = None  # sweep again at the next tick
            raise errors[0]
        return timed_out

    async def _time_out(self, client_id: str, started: datetime | None) -> bool:
        async with self._repo.lock(client_id):
            now = self._clock.now()
            decided: list[Event] = []

            def decide(s: ClientState) -> list[Event]:
                decided[:] = rules.decide_timeout(
                    s, now=now, policy=self._policy, server_started_at=started
                )
                return decided

            def ids(events: list[Event]) -> list[str]:
                # One timeout per silence, even with two schedulers racing.
                last_seen = events[0].last_seen.isoformat()  # type: ignore[attr-defined]
                return [deterministic_event_id(client_id, "timeout", last_seen)]

            await self._decide_and_save(client_id, decide, None, now=now, ids=ids)
            return bool(decided)

    # ------------------------------------------------------------ the loop

    async def _decide_and_save(
        self,
        client_id: str,
        decide: Callable[[ClientState], list[Event]],
        correlation_id: str | None,
        *,
        now: datetime | None = None,
        ids: Callable[[list[Event]], list[str]] | None = None,
        by_agent: bool = False,
    ) -> ClientState:
        """Decide on the cached state and append; on a lost race (or a refusal the cache may
        be too old for) re-read the stream and decide again. `by_agent`: the request was
        authenticated with the client's secret as cached, so a re-read that finds another
        secret (issued through another instance, revoking that one) refuses it."""
        self._write_gate()
        state = await self._repo.load(client_id)
        secret = state.secret_sha256
        for attempt in range(MAX_ATTEMPTS):
            try:
                events = decide(state)
            except ClientRuleViolation as exc:
                # The cache may be behind what another instance recorded (a new session, a
                # registration after a stop): refuse only on the state as the log has it.
                if attempt < MAX_ATTEMPTS - 1 and await self._repo.refreshed(client_id):
                    self._same_secret(by_agent, secret, state)
                    continue
                raise _domain_error(exc, client_id) from None
            at = now or self._clock.now()
            metadata: dict[str, Any] = {"server_id": self._server_id}
            if correlation_id:
                metadata["correlation_id"] = correlation_id
            try:
                await self._repo.save(
                    state,
                    events,
                    now=at,
                    ids=ids(events) if ids and events else None,
                    metadata=metadata,
                )
                return state
            except (WrongExpectedVersion, DuplicateEventId):
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                state = await self._repo.refresh(client_id)
                self._same_secret(by_agent, secret, state)
        raise AssertionError("unreachable")

    @staticmethod
    def _same_secret(by_agent: bool, secret: str | None, state: ClientState) -> None:
        if by_agent and state.secret_sha256 != secret:
            raise NotAuthenticated("unknown or revoked client secret; register again")
