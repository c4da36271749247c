"""The models digest agents and server compare to know when a model report is due."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def models_digest(installed: Iterable[tuple[str, str]], loaded: Iterable[tuple[str, int]]) -> str:
    """sha256 hex of sorted `name@digest` lines, then sorted `loaded:name@size_vram` lines."""
    lines = sorted(f"{name}@{digest}" for name, digest in installed)
    lines += sorted(f"loaded:{name}@{size_vram}" for name, size_vram in loaded)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
