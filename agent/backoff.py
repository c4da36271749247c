"""Exponential back-off with jitter, so a fleet of agents does not reconnect in lock-step."""

from __future__ import annotations

import random

BACKOFF_CAP_S = 60.0


class Backoff:
    def __init__(
        self, rng: random.Random, base_s: float = 1.0, cap_s: float = BACKOFF_CAP_S
    ) -> None:
        self._rng = rng
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0

    def next(self) -> float:
        """A delay in [ceiling/2, ceiling], the ceiling doubling per failure up to the cap."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0
