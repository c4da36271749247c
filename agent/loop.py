"""The agent's life: register, heartbeat on a fixed grid, report models on change, deregister.

Every server failure has one answer: 401/403/404 re-register, 429/5xx wait (Retry-After when
given), no answer back off with jitter up to 60 s. The loop never gives up by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.backoff import Backoff
from agent.clock import Clock
from agent.digest import models_digest
from agent.errors import (
    AuthRejected,
    ClientUnknown,
    ServerBusy,
    ServerError,
    ServerRejected,
    ServerUnreachable,
)
from agent.logs import get_logger, log_event
from agent.ollama import OllamaSnapshot
from agent.server import HeartbeatReply, Registration
from agent.state import Credentials

DEREGISTER_TIMEOUT_S = 3.0
SESSION_GONE = frozenset({"session_mismatch", "client_stopped"})
MAX_INTERVAL_S = 3600.0
# Sent while Ollama has never answered: a string keeps the field's type stable for the server.
EMPTY_DIGEST = models_digest((), ())


class OllamaPort(Protocol):
    async def snapshot(self) -> OllamaSnapshot: ...


class ServerPort(Protocol):
    async def register(self, body: dict[str, Any], token: str) -> tuple[Registration, bool]: ...

    async def heartbeat(
        self, client_id: str, secret: str, body: dict[str, Any]
    ) -> HeartbeatReply: ...

    async def put_models(
        self,
        client_id: str,
        secret: str,
        models: list[dict[str, Any]],
        loaded: list[dict[str, Any]],
    ) -> dict[str, Any]: ...

    async def deregister(
        self, client_id: str, secret: str, timeout_s: float | None = None
    ) -> None: ...


class CredentialStore(Protocol):
    def load_credentials(self, client_id: str, server_url: str) -> Credentials | None: ...

    def save_credentials(self, creds: Credentials) -> None: ...

    def forget_credentials(self) -> None: ...


@dataclass(frozen=True)
class Identity:
    client_id: str
    session_id: str
    hostname: str
    platform: dict[str, str]
    agent_version: str
    labels: dict[str, str]
    server_url: str
    ollama_base_url: str
    ollama_installed: bool


class NotEnrolled(ServerError):
    """No usable secret and no enrollment token: only the operator can fix this."""


@dataclass
class AgentLoop:
    identity: Identity
    enrollment_token: str | None
    ollama: OllamaPort
    server: ServerPort
    store: CredentialStore
    clock: Clock
    backoff: Backoff
    log: logging.Logger = field(default_factory=lambda: get_logger("loop"))
    interval_s: float = 10.0
    seq: int = 0
    secret: str | None = None
    reported_digest: str | None = None
    known_digest: str | None = None
    ollama_ok: bool | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then deregister. A stop interrupts any request in flight."""
        work = asyncio.create_task(self._work(stop))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not work.done():
            work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        await self._deregister()

    async def _work(self, stop: asyncio.Event) -> None:
        if not await self._register_until_done(stop):
            return
        next_at = self.clock.monotonic()
        while not await self.clock.wait(stop, next_at - self.clock.monotonic()):
            try:
                try:
                    await self._beat()
                except ServerRejected as exc:
                    if exc.status == 409 and exc.code in SESSION_GONE:
                        # The server no longer takes this session's heartbeats (another
                        # registration replaced it, or it recorded our stop): register again.
                        raise ClientUnknown(exc.status, exc.code, exc.detail) from None
                    raise
            except (AuthRejected, ClientUnknown) as exc:
                self._log(logging.WARNING, "reregistering", reason=str(exc))
                if isinstance(exc, AuthRejected):
                    self.secret = None
                    self.store.forget_credentials()
                if not await self._register_until_done(stop):
                    return
                next_at = self.clock.monotonic()
            except ServerBusy as exc:
                next_at = self.clock.monotonic() + self._busy_delay(exc)
            except ServerUnreachable as exc:
                delay = self.backoff.next()
                self._log(logging.WARNING, "server_unreachable", reason=str(exc), retry_in_s=delay)
                next_at = self.clock.monotonic() + delay
            except ServerRejected as exc:
                # Our request is wrong for this server (a version mismatch?): keep the pace.
                self._log(logging.ERROR, "request_rejected", reason=str(exc))
                next_at = self._next_slot(next_at)
            else:
                self.backoff.reset()
                next_at = self._next_slot(next_at)

    def _next_slot(self, previous: float) -> float:
        """The next point on a fixed grid, so heartbeats never drift; missed slots are
        skipped (after a slow Ollama or a suspended machine) instead of sent in a burst."""
        slot = previous + self.interval_s
        now = self.clock.monotonic()
        if slot <= now:
            missed = int((now - previous) // self.interval_s)
            slot = previous + (missed + 1) * self.interval_s
        return slot

    async def _register_until_done(self, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            try:
                await self._register()
            except ServerBusy as exc:
                delay = self._busy_delay(exc)
            except ServerUnreachable as exc:
                delay = self.backoff.next()
                self._log(logging.WARNING, "server_unreachable", reason=str(exc), retry_in_s=delay)
            except (NotEnrolled, ServerRejected) as exc:
                delay = self.backoff.next()
                self._log(logging.ERROR, "register_refused", reason=str(exc), retry_in_s=delay)
            else:
                self.backoff.reset()
                return True
            if await self.clock.wait(stop, delay):
                return False
        return False

    async def _register(self) -> None:
        snapshot = await self.ollama.snapshot()
        body = self._register_body(snapshot)
        ident = self.identity
        saved = self.store.load_credentials(ident.client_id, ident.server_url)
        if saved is not None:
            try:
                registration, created = await self.server.register(body, saved.client_secret)
            except AuthRejected:
                self._log(logging.WARNING, "saved_secret_refused", action="enrolling again")
                self.store.forget_credentials()
                saved = None
        if saved is None:
            if not self.enrollment_token:
                raise NotEnrolled(
                    "no saved secret and OBT_ENROLLMENT_TOKEN is not set; "
                    "set it to the token the OBT server printed"
                )
            registration, created = await self.server.register(body, self.enrollment_token)
            if not registration.client_secret:
                raise ServerRejected(200, "no_secret", "enrolled, but no client_secret came back")
        secret = registration.client_secret or (saved.client_secret if saved else "")
        if registration.client_secret:
            self.store.save_credentials(Credentials(ident.client_id, secret, ident.server_url))
        self.secret = secret
        self.interval_s = min(max(registration.heartbeat_interval_s, 0.01), MAX_INTERVAL_S)
        self.reported_digest = None  # a (re)started session reports its models again
        self._log(
            logging.INFO,
            "registered",
            client_id=ident.client_id,
            created=created,
            interval_s=self.interval_s,
        )

    def _register_body(self, snapshot: OllamaSnapshot) -> dict[str, Any]:
        ident = self.identity
        return {
            "client_id": ident.client_id,
            "hostname": ident.hostname,
            "platform": ident.platform,
            "agent_version": ident.agent_version,
            "ollama": {
                "installed": ident.ollama_installed or snapshot.reachable,
                "version": snapshot.version,
                "base_url": ident.ollama_base_url,
                "reachable": snapshot.reachable,
            },
            "labels": ident.labels,
            "session_id": ident.session_id,
        }

    async def _beat(self) -> None:
        snapshot = await self.ollama.snapshot()
        self._note_ollama(snapshot)
        if snapshot.reachable:
            self.known_digest = snapshot.models_digest
        digest = self.known_digest or EMPTY_DIGEST
        self.seq += 1
        body = {
            "seq": self.seq,
            "session_id": self.identity.session_id,
            "sent_at": self.clock.now().isoformat(),
            "ollama": {
                "reachable": snapshot.reachable,
                "version": snapshot.version,
                "latency_ms": snapshot.latency_ms,
                "error": snapshot.error,
            },
            "models_digest": digest,
        }
        reply = await self.server.heartbeat(self.identity.client_id, self._secret(), body)
        self._log(logging.DEBUG, "heartbeat", seq=self.seq, status=reply.status)
        if reply.next_in_s is not None and reply.next_in_s > 0:
            self.interval_s = min(reply.next_in_s, MAX_INTERVAL_S)
        # Without Ollama the model set is unknown, and reporting it empty would read as removal.
        if snapshot.reachable and (reply.models_wanted or digest != self.reported_digest):
            await self._report(snapshot)

    async def report_models(self) -> bool:
        """Send a fresh model report now (after a pull or delete changed the set); False when
        Ollama does not answer or the agent is not registered (the next beat catches up)."""
        snapshot = await self.ollama.snapshot()
        if not snapshot.reachable or self.secret is None:
            return False
        self.known_digest = snapshot.models_digest
        await self._report(snapshot)
        return True

    async def _report(self, snapshot: OllamaSnapshot) -> None:
        await self.server.put_models(
            self.identity.client_id,
            self._secret(),
            [m.model_dump(mode="json") for m in snapshot.installed],
            [m.model_dump(mode="json") for m in snapshot.loaded],
        )
        self.reported_digest = snapshot.models_digest
        self._log(
            logging.INFO,
            "models_reported",
            installed=len(snapshot.installed),
            loaded=len(snapshot.loaded),
            digest=snapshot.models_digest[:12],
        )

    def _note_ollama(self, snapshot: OllamaSnapshot) -> None:
        if snapshot.reachable == self.ollama_ok:
            return
        self.ollama_ok = snapshot.reachable
        if snapshot.reachable:
            self._log(logging.INFO, "ollama_available", version=snapshot.version)
        else:
            self._log(logging.WARNING, "ollama_unavailable", reason=snapshot.error)

    def _busy_delay(self, exc: ServerBusy) -> float:
        delay = exc.retry_after if exc.retry_after is not None else self.backoff.next()
        self._log(logging.WARNING, "server_busy", status=exc.status, retry_in_s=round(delay, 2))
        return delay

    def _secret(self) -> str:
        if self.secret is None:  # _work only beats after a successful registration
            raise NotEnrolled("heartbeat attempted before registration")
        return self.secret

    async def _deregister(self) -> None:
        if self.secret is None:
            return
        try:
            await self.server.deregister(
                self.identity.client_id, self.secret, timeout_s=DEREGISTER_TIMEOUT_S
            )
        except ServerError as exc:
            self._log(logging.WARNING, "deregister_failed", reason=str(exc))
        else:
            self._log(logging.INFO, "deregistered", client_id=self.identity.client_id)

    def _log(self, level: int, event: str, **fields: Any) -> None:
        log_event(self.log, level, event, **fields)
