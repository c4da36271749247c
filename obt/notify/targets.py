"""Picks the adapter for a target's kind: the one Notifier the delivery job talks to."""

from __future__ import annotations

from obt.notify import Notice, Notifier, Target
from obt.notify.apprise_target import AppriseNotifier
from obt.notify.webhook import WebhookNotifier


class TargetNotifier:
    def __init__(self, webhook: Notifier | None = None, apprise: Notifier | None = None) -> None:
        self.webhook = webhook or WebhookNotifier()
        self.apprise = apprise or AppriseNotifier()

    async def send(self, target: Target, notice: Notice) -> None:
        await (self.webhook if target.kind == "webhook" else self.apprise).send(target, notice)

    async def close(self) -> None:
        for notifier in (self.webhook, self.apprise):
            close = getattr(notifier, "close", None)
            if close is not None:
                await close()
