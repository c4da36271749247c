"""Upcasters: turn an old event payload into the next schema version's, one step at a time.

Register `(event type, from_version): function` here and raise the event class's
SCHEMA_VERSION; the store's codec then applies the steps on every read path. All events are
at schema version 1 so far, so there is nothing to upcast yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
