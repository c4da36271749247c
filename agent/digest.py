"""The models digest that heartbeats carry, so the server can tell when the model set changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def models_digest(installed: Iterable[tuple[str, str]], loaded: Iterable[tuple[str, int]]) -> str:
    """sha256 hex of `name@digest` lines (sorted), then `loaded:name@size_vram` lines (sorted).

    The server computes the same function over the last model report, so the exact byte
    layout is part of the contract (ARCHITECTURE.md, "Contract details").
    """
    lines = sorted(f"{name}@{digest}" for name, digest in installed)
    lines += sorted(f"loaded:{name}@{size_vram}" for name, size_vram in loaded)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
