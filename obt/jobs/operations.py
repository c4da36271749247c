"""Fleet operation dispatch: queued hosts start over their agent channel, within each
operation's max_parallel; past its expiry what is left expires. Runs with the other jobs (on
the lease holder); the agents' progress and result frames are recorded wherever they arrive.

What the dispatcher reads is the operations read model (which operations are unfinished) and
the operation's own state through OperationCommands (kept current by every append it makes,
so a start is never decided twice from a read model that has not caught up). Rules:
- one operation at a time per host: a host running a target of one operation starts no other
  (so never two pulls of one model on one host either);
- a queued host starts only while its agent is connected, oldest operation first;
- a running host whose channel dropped is sent its command again when it is back (the agent
  ignores a re-sent command for the pull it is running, and Ollama resumes a cut download),
  and again every RESEND_EVERY while it runs, in case a reconnect fell between two ticks;
  it stays running until its result arrives or the operation expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from obt.commands.agent_link import AgentLink
from obt.commands.handlers import Clock
from obt.commands.operations import OperationCommands
from obt.domain import operations as rules
from obt.domain.operations import OperationState
from obt.errors import AgentUnreachable, InvalidOperation, StoreError, UnknownOperation
from obt.projections.operations import OperationsProjector

log = logging.getLogger(__name__)

RESEND_EVERY_S = 30.0


class OperationDispatcher:
    name = "operation-dispatch"

    def __init__(
        self,
        commands: OperationCommands,
        clock: Clock,
        operations: OperationsProjector,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._commands = commands
        self._clock = clock
        self._operations = operations
        self._monotonic = monotonic
        self._link: AgentLink | None = None
        self._wake: Callable[[], None] = lambda: None
        self._sent: dict[tuple[str, str], float] = {}  # (operation, host) -> when sent

    def attach(self, link: AgentLink, wake: Callable[[], None] = lambda: None) -> None:
        """Dispatch over `link` and record the frames its agents send; `wake` runs the jobs
        again at once (a host finished: the next one may start)."""
        self._link = link
        self._wake = wake
        link.subscribe(self.on_frame)

    async def run_once(self) -> int:
        link = self._link
        if link is None:
            return 0
        now = self._clock.now()
        unfinished = sorted(
            (d for d in self._operations.docs.values() if d.get("finished_at") is None),
            key=lambda d: (d["requested_at"], d["id"]),
        )
        states = [await self._commands.load(d["id"]) for d in unfinished]
        busy = {
            cid
            for s in states
            if not s.finished
            for cid, t in s.targets.items()
            if t.state == rules.RUNNING
        }
        done = 0
        for state in states:
            if state.finished:
                continue
            if state.expires_at is not None and now >= state.expires_at:
                done += await self._expire(link, state)
                continue
            done += await self._keep_running(link, state)
            done += await self._start_queued(link, state, busy, now)
        return done

    async def _expire(self, link: AgentLink, state: OperationState) -> int:
        running = await self._commands.expire(state.operation_id)
        for cid in running:
            await self._send(link, cid, {"type": "cancel", "operation_id": state.operation_id})
        return 1

    async def _keep_running(self, link: AgentLink, state: OperationState) -> int:
        sent = 0
        for cid, target in state.targets.items():
            key = (state.operation_id, cid)
            if target.state != rules.RUNNING:
                self._sent.pop(key, None)
                continue
            if not link.connected(cid):
                self._sent.pop(key, None)  # sent again when it is back
                continue
            last = self._sent.get(key)
            if last is None or self._monotonic() - last >= RESEND_EVERY_S:
                sent += await self._command(link, state, cid)
        return sent

    async def _start_queued(
        self, link: AgentLink, state: OperationState, busy: set[str], now: datetime
    ) -> int:
        started = 0
        for cid in sorted(state.targets):
            if state.count(rules.RUNNING) >= state.max_parallel:
                break
            if state.targets[cid].state != rules.QUEUED or cid in busy:
                continue
            if not link.connected(cid):
                continue
            if not await self._commands.start(state.operation_id, cid):
                continue
            busy.add(cid)
            started += 1
            await self._command(link, state, cid)
        return started

    async def _command(self, link: AgentLink, state: OperationState, cid: str) -> int:
        frame = {
            "type": "command",
            "operation_id": state.operation_id,
            "action": state.action,
            "model": state.model,
        }
        if await self._send(link, cid, frame):
            self._sent[(state.operation_id, cid)] = self._monotonic()
            return 1
        return 0

    async def _send(self, link: AgentLink, cid: str, frame: Mapping[str, Any]) -> bool:
        try:
            await link.send(cid, frame)
        except AgentUnreachable as exc:
            log.info("operation frame for %s not sent: %s", cid, exc)
            return False
        return True

    async def on_frame(self, client_id: str, frame: Mapping[str, Any]) -> None:
        """An agent's `progress` or `result` frame, recorded through the commands."""
        operation_id = frame.get("operation_id")
        body = frame.get("body")
        if not isinstance(operation_id, str) or not isinstance(body, dict):
            log.info("operation frame from %s without operation_id or body", client_id)
            return
        try:
            if frame.get("type") == "progress":
                await self._commands.progress(
                    operation_id,
                    client_id,
                    status=_text(body.get("status")),
                    completed=_count(body.get("completed")),
                    total=_count(body.get("total")),
                )
            elif frame.get("type") == "result":
                await self._commands.result(
                    operation_id,
                    client_id,
                    succeeded=body.get("status") == "succeeded",
                    reason=_text(body.get("reason")),
                )
                self._wake()
        except (UnknownOperation, InvalidOperation) as exc:
            log.info("operation frame from %s refused: %s", client_id, exc)
        except StoreError as exc:  # the agent reports again (its result) or moves on (progress)
            log.warning("operation frame from %s not recorded: %s", client_id, exc)


def _text(value: object) -> str | None:
    return value[:500] if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def attach_operations(jobs: Any, link: AgentLink) -> None:
    """Give the jobs' dispatcher the agent channels (an app without one dispatches nothing)."""
    try:
        dispatcher = jobs.job(OperationDispatcher.name)
    except KeyError:
        return
    assert isinstance(dispatcher, OperationDispatcher)
    dispatcher.attach(link, jobs.wake)


def operation_dispatcher(
    commands: OperationCommands, clock: Clock, runner: Any
) -> OperationDispatcher:
    projector = runner.projector("operations")
    assert isinstance(projector, OperationsProjector)
    return OperationDispatcher(commands, clock, projector)
