"""A reader of the live feed (`GET /api/v1/live`, Server-Sent Events) on a thread, for tests
against a real server."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import httpx

from tests.support.processes import ServerProcess


class SseReader:
    """Reads a /live stream on a thread and collects parsed messages."""

    def __init__(self, url: str, last_event_id: str | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.error: Exception | None = None
        self._response: httpx.Response | None = None
        self._stop = threading.Event()
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                self._response = response
                self._read(response)
        except (httpx.HTTPError, RuntimeError) as exc:
            # Closing the stream from the test's thread ends the read with an error.
            if not self._stop.is_set():
                self.error = exc

    def _read(self, response: httpx.Response) -> None:
        message: dict[str, Any] = {}
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if not line:
                if "event" in message:
                    message["received_at"] = time.monotonic()  # for delay measurements
                    self.messages.append(message)
                message = {}
                continue
            field, _, value = line.partition(":")
            if field in ("id", "event", "data"):
                message[field] = value.strip()

    def find(self, event: str, predicate: Any = lambda d: True) -> dict[str, Any] | None:
        for m in list(self.messages):
            if m["event"] == event and predicate(json.loads(m["data"])):
                return m
        return None

    def close(self) -> None:
        self._stop.set()
        if self._response is not None:
            # Closing the response from this thread does not wake a read blocked on the
            # socket (it waits for the next message or ping); shutting the socket down does.
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._response.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the SSE reader did not stop"
        assert self.error is None, self.error


def server_has_subscriber(server: ServerProcess) -> bool:
    health = httpx.get(f"{server.api_url}/health", timeout=5).json()
    return bool(health["live_subscribers"])
