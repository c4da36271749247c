"""Server settings from the environment (and a `.env` file where present), checked at start."""

from __future__ import annotations

import os
import re
import secrets
import socket
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from obt.errors import SettingsError

PLACEHOLDERS = {"changeme", "change-me", "secret", "token", "xxx", "<token>", "replace-me"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OBT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    host: str = "127.0.0.1"
    port: int = Field(8881, ge=1, le=65535)
    store: Literal["sqlite", "mongodb"] = "sqlite"
    data_dir: Path = Path("./data")
    mongodb_uri: str | None = None
    mongodb_db: str = Field("obt", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    enrollment_token: str | None = None
    admin_token: str | None = None
    heartbeat_interval_s: float = Field(10.0, gt=0, le=3600)
    heartbeat_timeout_s: float = Field(30.0, gt=0, le=86400)
    cors_origins: str = ""
    log_level: Literal["debug", "info", "warning", "error", "DEBUG", "INFO", "WARNING", "ERROR"] = (
        "info"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    body_timeout_s: float = Field(10.0, gt=0, le=600)  # whole request body, else 408
    rate_limit_per_min: int = Field(120, ge=1)  # per client id, agent endpoints
    scheduler_tick_s: float = Field(1.0, gt=0, le=60)
    dashboard_dir: Path | None = None
    # full: every acknowledged event survives power loss (one fsync per group commit);
    # normal: survives any process crash, may lose the last commits on power loss.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Heartbeats older than this that no read model needs move to the archive (daily job and
    # `obt compact`): a number with d, h, m or s ("14d", "36h"); "0" keeps everything live.
    heartbeat_retention: timedelta = Field(timedelta(days=14))
    compaction_every: timedelta = Field(timedelta(days=1))
    # Several instances on one MongoDB: the jobs that must run once run on the holder of a
    # lease with this TTL; an instance silent for half of it counts as dead (see docs/scale.md).
    lease_ttl_s: float = Field(10.0, ge=1, le=600)
    # This instance's name in the instance registry, the lease and MongoDB's client metadata.
    instance_name: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,64}$")

    @field_validator("enrollment_token", "admin_token")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.strip().lower() in PLACEHOLDERS or len(value) < 16:
            raise ValueError("use a random value of at least 16 characters (not a placeholder)")
        return value

    @field_validator("heartbeat_retention", "compaction_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise ValueError("OBT_HEARTBEAT_TIMEOUT_S must be longer than OBT_HEARTBEAT_INTERVAL_S")
        if self.store == "mongodb" and not self.mongodb_uri:
            raise ValueError(
                "OBT_MONGODB_URI is required when OBT_STORE=mongodb "
                "(e.g. mongodb://localhost:27017/?replicaSet=rs0)"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def instance(self) -> str:
        """OBT_INSTANCE_NAME, or host-pid: unique among the instances sharing one store."""
        return self.instance_name or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "obt.sqlite3"

    @property
    def enrollment_token_path(self) -> Path:
        return self.data_dir / "enrollment-token"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*$")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}


def parse_duration(text: str) -> timedelta:
    """ "14d", "36h", "90m", "3600s" or "3600" (seconds)."""
    found = _DURATION.match(text.lower())
    if found is None:
        raise ValueError(f"{text!r} is not a duration: use a number with d, h, m or s (e.g. 14d)")
    return timedelta(seconds=float(found.group(1)) * _UNIT_S[found.group(2)])


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"] if part != "__root__"]
            name = f"OBT_{loc[0].upper()}" if loc else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def ensure_token(path: Path, configured: str | None) -> tuple[str, bool]:
    """The configured token, or one generated once into `path` (owner-only); (token, created)."""
    if configured:
        return configured, False
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token, True
