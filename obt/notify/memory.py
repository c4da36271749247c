"""An in-memory notifier for tests: records what it was given, fails while told to."""

from __future__ import annotations

from dataclasses import dataclass, field

from obt.notify import DeliveryFailed, Notice, Target


@dataclass
class MemoryNotifier:
    sent: list[tuple[Target, Notice]] = field(default_factory=list)
    attempts: int = 0
    failing: str | None = None  # while set, every send fails with this error

    async def send(self, target: Target, notice: Notice) -> None:
        self.attempts += 1
        if self.failing is not None:
            raise DeliveryFailed(self.failing)
        self.sent.append((target, notice))
