"""Fleet model operations on this host: the server's `command` frames carried out through
Ollama's REST API, answered with `progress` and `result` frames (contract "Fleet model
operations").

One operation at a time: a second command while one runs fails with "busy". A read-only
agent (OBT_AGENT_READ_ONLY) refuses every command. Progress goes out at most once a second,
plus at every change of phase; after a success a fresh model report goes out before the
result, so the server's ModelAdded/ModelRemoved come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.errors import AgentError, OllamaError
from agent.logs import get_logger, log_event
from agent.model_names import is_valid_model_name
from agent.ollama import PullProgress

PROGRESS_EVERY_S = 1.0
ACTIONS = ("pull", "delete")
READ_ONLY_REASON = "read-only agent"


class ModelAdmin(Protocol):
    """The Ollama side of an operation (OllamaClient is one)."""

    def pull(self, model: str) -> AsyncIterator[PullProgress]: ...

    async def delete(self, model: str) -> None: ...


# (frame, keep): send a frame over the channel; keep it for the next channel if it cannot go.
FrameSender = Callable[[dict[str, Any], bool], Awaitable[bool]]


@dataclass
class _Running:
    operation_id: str
    action: str
    model: str
    task: asyncio.Task[None] | None = None
    last_body: dict[str, Any] | None = None
    sent_at: float | None = None
    cancelled: bool = False


@dataclass
class OperationRunner:
    ollama: ModelAdmin
    send: FrameSender
    report_models: Callable[[], Awaitable[bool]]
    read_only: bool = False
    monotonic: Callable[[], float] = time.monotonic
    log: logging.Logger = field(default_factory=lambda: get_logger("operations"))
    current: _Running | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def handle(self, frame: dict[str, Any]) -> None:
        """Take a `command` or `cancel` frame. Decides at once (so two commands arriving
        together cannot both start) and leaves the sending and the work to tasks."""
        operation_id = frame.get("operation_id")
        if not isinstance(operation_id, str) or not operation_id:
            log_event(self.log, logging.WARNING, "operation_frame_ignored", frame=frame)
            return
        if frame.get("type") == "cancel":
            self._cancel(operation_id)
            return
        action, model = frame.get("action"), frame.get("model")
        running = self.current
        if running is not None and running.operation_id == operation_id:
            # The server sent it again (after a reconnect): it runs; say where it is.
            if running.last_body is not None:
                self._spawn(self._progress(running, running.last_body, force=True))
            return
        refusal = self._refusal(action, model)
        if refusal is not None:
            log_event(
                self.log, logging.WARNING, "operation_refused", id=operation_id, reason=refusal
            )
            self._spawn(self._result(operation_id, "failed", refusal))
            return
        assert isinstance(action, str) and isinstance(model, str)
        running = _Running(operation_id, action, model)
        self.current = running
        running.task = self._spawn(self._run(running))

    def _refusal(self, action: Any, model: Any) -> str | None:
        if self.read_only:
            return READ_ONLY_REASON
        if self.current is not None:
            return "busy"
        if action not in ACTIONS:
            return f"unknown action {action!r}; this agent does {', '.join(ACTIONS)}"
        if not is_valid_model_name(model):
            return f"invalid model name {str(model)[:100]!r}"
        return None

    def _cancel(self, operation_id: str) -> None:
        running = self.current
        if running is None or running.operation_id != operation_id or running.task is None:
            return  # finished already (its result went out) or never ran here
        running.cancelled = True
        running.task.cancel()

    async def close(self) -> None:
        """Stop whatever runs (the agent is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, running: _Running) -> None:
        log_event(
            self.log,
            logging.INFO,
            "operation_started",
            id=running.operation_id,
            action=running.action,
            model=running.model,
        )
        try:
            if running.action == "pull":
                await self._pull(running)
            else:
                await self.ollama.delete(running.model)
        except asyncio.CancelledError:
            self.current = None
            if not running.cancelled:
                raise  # the agent is stopping: nobody to tell
            await self._result(running.operation_id, "failed", "cancelled")
            return
        except OllamaError as exc:
            self.current = None
            await self._result(running.operation_id, "failed", str(exc))
            return
        self.current = None
        try:
            await self.report_models()
        except AgentError as exc:  # the next heartbeat reports the change anyway
            log_event(self.log, logging.WARNING, "model_report_failed", reason=str(exc))
        await self._result(running.operation_id, "succeeded", None)

    async def _pull(self, running: _Running) -> None:
        async for step in self.ollama.pull(running.model):
            body = {
                "status": step.status,
                "digest": step.digest,
                "completed": step.completed,
                "total": step.total,
            }
            await self._progress(running, body)

    async def _progress(self, running: _Running, body: dict[str, Any], force: bool = False) -> None:
        now = self.monotonic()
        new_phase = running.last_body is None or running.last_body["status"] != body["status"]
        due = running.sent_at is None or now - running.sent_at >= PROGRESS_EVERY_S
        running.last_body = body
        if not (force or new_phase or due):
            return
        running.sent_at = now
        frame = {"type": "progress", "operation_id": running.operation_id, "body": body}
        await self.send(frame, False)

    async def _result(self, operation_id: str, status: str, reason: str | None) -> None:
        log_event(
            self.log,
            logging.INFO if status == "succeeded" else logging.WARNING,
            "operation_finished",
            id=operation_id,
            status=status,
            reason=reason,
        )
        frame = {
            "type": "result",
            "operation_id": operation_id,
            "body": {"status": status, "reason": reason},
        }
        await self.send(frame, True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
