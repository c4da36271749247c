"""The models digest that heartbeats carry, so the server can tell when the model set changed.

One implementation serves agent and server (the byte layout is part of the API contract); it
lives in the server's pure domain package, which imports nothing beyond the standard library.
"""

from __future__ import annotations

from obt.domain.digest import models_digest

__all__ = ["models_digest"]
