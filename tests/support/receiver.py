"""A local notification receiver for tests: the signed generic webhook (HMAC checked as a real
receiver would) and Apprise's `json://` posts, on one port it can stop and start listening on,
or hold requests in flight."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.processes import free_port


def verify(secret: str, header: str, body: bytes) -> bool:
    """The check a receiver makes: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields.get("v1", ""))


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.webhooks: Counter[str] = Counter()  # dedupe key -> times received
        self.bodies: dict[str, dict[str, Any]] = {}
        self.apprise: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.hold = False  # while true, webhook requests wait for `release`
        self.held = threading.Event()  # set when a request is being held
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/apprise"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/apprise":
                    with receiver._lock:
                        receiver.apprise.append(json.loads(body))
                    self._answer(200)
                    return
                if receiver.hold:
                    receiver.held.set()
                    receiver.release.wait(30)
                signature = self.headers.get("X-OBT-Signature", "")
                if not verify(receiver.secret, signature, body):
                    with receiver._lock:
                        receiver.bad_signatures += 1
                    self._answer(401)
                    return
                payload = json.loads(body)
                assert self.headers["X-OBT-Dedupe-Key"] == payload["dedupe_key"]
                with receiver._lock:
                    receiver.webhooks[payload["dedupe_key"]] += 1
                    receiver.bodies[payload["dedupe_key"]] = payload
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
