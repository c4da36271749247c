"""Outbound notifications: the port every target is reached through, and what travels on it.

Adapters beside this module: the signed generic webhook (`webhook.py`), Apprise for the
services it knows by URL (`apprise_target.py`), and an in-memory fake for tests (`memory.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

TargetKind = Literal["webhook", "apprise"]


class DeliveryFailed(Exception):
    """The target did not take the notice; the message says why (it is recorded)."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    url: str
    secret: str | None = None  # webhooks sign with it

    @property
    def id(self) -> str:
        """Stable, and safe to record: a hash of the address, never the address."""
        return hashlib.sha256(f"{self.kind} {self.url}".encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """What kind of target, without credentials: the Apprise scheme, the webhook host."""
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return self.kind
        if self.kind == "webhook":
            return f"webhook {parts.scheme}://{parts.hostname or ''}/…"
        return f"apprise {parts.scheme}://…"


def targets_of(notify: dict[str, Any]) -> list[Target]:
    """A rule's `notify` as targets, Apprise URLs first, each once."""
    found: dict[str, Target] = {}
    for url in notify.get("urls", []):
        t = Target("apprise", url)
        found.setdefault(t.id, t)
    for hook in notify.get("webhooks", []):
        t = Target("webhook", hook["url"], hook.get("secret"))
        found.setdefault(t.id, t)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice: the contract's webhook body, built once, the same on every attempt."""

    body: dict[
        str, Any
    ]  # {kind, rule_id, rule_name, client_id, hostname, status, since, at, dedupe_key}

    @property
    def dedupe_key(self) -> str:
        return str(self.body["dedupe_key"])

    def title(self) -> str:
        b = self.body
        host = b.get("hostname") or b.get("client_id")
        return f"[OBT] {host}: {b['kind'].replace('_', ' ')} ({b.get('status')})"

    def text(self) -> str:
        b = self.body
        return (
            f"Rule {b.get('rule_name')!r} {b['kind']} for {b.get('client_id')} "
            f"(status {b.get('status')} since {b.get('since')}) at {b.get('at')}. "
            f"Dedupe key: {b['dedupe_key']}"
        )


class Notifier(Protocol):
    async def send(self, target: Target, notice: Notice) -> None:
        """Deliver or raise DeliveryFailed."""
        ...
