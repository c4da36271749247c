"""The state directory: the agent's stable client id and the secret the server issued.

The directory is owner-only (0700) and the secret file 0600, written atomically so a crash
mid-write never leaves a half secret behind.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StateError
from agent.settings import CLIENT_ID_PATTERN

CLIENT_ID_FILE = "client_id"
SECRET_FILE = "secret.json"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    server_url: str


def generate_client_id(hostname: str, suffix: str) -> str:
    """A readable id: the host name cleaned to the allowed alphabet, plus a random suffix."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", hostname).strip("-.")[:48] or "ollama-host"
    return f"{base}-{suffix}"


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask and ignored for an existing directory.
            if stat.S_IMODE(self.path.stat().st_mode) != 0o700:
                self.path.chmod(0o700)
        except OSError as exc:
            raise StateError(f"cannot create state dir {self.path}: {exc.strerror}") from None

    def client_id(self, hostname: str | None = None) -> str:
        """The stored id, or a new one generated and stored on first use."""
        stored = self.stored_client_id()
        if stored is not None:
            return stored
        new = generate_client_id(hostname or socket.gethostname(), uuid.uuid4().hex[:8])
        self._write(CLIENT_ID_FILE, new + "\n")
        return new

    def stored_client_id(self) -> str | None:
        file = self.path / CLIENT_ID_FILE
        try:
            stored = file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {file}: {exc.strerror}") from None
        return stored if CLIENT_ID_PATTERN.fullmatch(stored) else None

    def load_credentials(self, client_id: str, server_url: str) -> Credentials | None:
        """The saved secret, but only if it was issued to this client id by this server."""
        file = self.path / SECRET_FILE
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # an unreadable secret is as good as none: re-enrol
        if not isinstance(doc, dict):
            return None
        creds = Credentials(
            client_id=str(doc.get("client_id", "")),
            client_secret=str(doc.get("client_secret", "")),
            server_url=str(doc.get("server_url", "")),
        )
        if creds.client_id != client_id or creds.server_url != server_url:
            return None
        return creds if creds.client_secret else None

    def save_credentials(self, creds: Credentials) -> None:
        doc = {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "server_url": creds.server_url,
        }
        self._write(SECRET_FILE, json.dumps(doc, indent=2) + "\n")

    def forget_credentials(self) -> None:
        try:
            (self.path / SECRET_FILE).unlink(missing_ok=True)
        except OSError as exc:
            raise StateError(f"cannot remove {self.path / SECRET_FILE}: {exc.strerror}") from None

    def _write(self, name: str, text: str) -> None:
        self.ensure()
        target = self.path / name
        temp = self.path / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StateError(f"cannot write {target}: {exc.strerror}") from None
