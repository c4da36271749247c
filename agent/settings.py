"""The agent's settings: environment variables (and a .env file), overridden by CLI options.

Bad values stop start-up with a SettingsError that names the variable and says how to fix it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.errors import SettingsError
from agent.ollama_host import OllamaEndpoint, parse_ollama_host

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Values copied from an example file are never real credentials.
_PLACEHOLDERS = {"change-me", "changeme", "replace-me", "your-token", "<token>", "xxx"}
_FIXES = {
    "OBT_SERVER_URL": "set it to the OBT server's address, e.g. http://127.0.0.1:8881",
    "OBT_ENROLLMENT_TOKEN": "copy the enrollment token that `obt serve` printed at first start",
    "OBT_CLIENT_ID": "use 1-64 of A-Z a-z 0-9 . _ - (or unset it for a generated one)",
    "OBT_AGENT_STATE_DIR": "point it at a directory the agent may create and write",
    "OBT_AGENT_LABELS": "write key=value pairs separated by commas, e.g. room=lab,gpu=a4000",
    "OLLAMA_HOST": "use host[:port] or http(s)://host[:port], e.g. 127.0.0.1:11434",
    "OBT_AGENT_READ_ONLY": "use true or false",
    "OBT_AGENT_TRANSPORT": "use auto (the channel, HTTP when it fails) or http",
}
_FIELD_VARIABLES = {
    "server_url": "OBT_SERVER_URL",
    "enrollment_token": "OBT_ENROLLMENT_TOKEN",
    "client_id": "OBT_CLIENT_ID",
    "state_dir": "OBT_AGENT_STATE_DIR",
    "labels": "OBT_AGENT_LABELS",
    "ollama_host": "OLLAMA_HOST",
    "read_only": "OBT_AGENT_READ_ONLY",
    "transport": "OBT_AGENT_TRANSPORT",
}


def default_state_dir(system: str, env: Mapping[str, str], home: Path) -> Path:
    """Where the agent keeps its client id and secret when OBT_AGENT_STATE_DIR is unset."""
    if system == "Windows":
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "obt-agent"
    if system == "Darwin":
        return home / "Library" / "Application Support" / "obt-agent"
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "obt-agent"


def parse_labels(value: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in value.split(","))):
        key, sep, label = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{pair!r} is not key=value")
        labels[key.strip()] = label.strip()
    return labels


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    server_url: str = Field(
        default="http://127.0.0.1:8881", validation_alias=AliasChoices("OBT_SERVER_URL")
    )
    enrollment_token: str | None = Field(
        default=None, validation_alias=AliasChoices("OBT_ENROLLMENT_TOKEN"), repr=False
    )
    client_id: str | None = Field(default=None, validation_alias=AliasChoices("OBT_CLIENT_ID"))
    state_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("OBT_AGENT_STATE_DIR")
    )
    labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=AliasChoices("OBT_AGENT_LABELS")
    )
    ollama_host: str | None = Field(default=None, validation_alias=AliasChoices("OLLAMA_HOST"))
    # Refuse every fleet operation (pull, delete) the server sends.
    read_only: bool = Field(default=False, validation_alias=AliasChoices("OBT_AGENT_READ_ONLY"))
    # auto: the WebSocket channel, with HTTP as the fallback; http: never try the channel.
    transport: Literal["auto", "http"] = Field(
        default="auto", validation_alias=AliasChoices("OBT_AGENT_TRANSPORT")
    )

    @field_validator("server_url")
    @classmethod
    def _check_server_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("enrollment_token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and value.lower() in _PLACEHOLDERS:
            raise ValueError("it still holds the example placeholder")
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not CLIENT_ID_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid client id")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: Any) -> Any:
        return parse_labels(value) if isinstance(value, str) else value

    @field_validator("ollama_host")
    @classmethod
    def _check_ollama_host(cls, value: str | None) -> str | None:
        parse_ollama_host(value)  # raises SettingsError, reported as is by load_settings
        return value

    @property
    def ollama(self) -> OllamaEndpoint:
        return parse_ollama_host(self.ollama_host)

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        return default_state_dir(_system(), os.environ, Path.home())


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> AgentSettings:
    """Read settings; CLI overrides (None means "not given") beat the environment."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return AgentSettings(_env_file=env_file, **given)
    except SettingsError:
        raise
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = _FIELD_VARIABLES.get(field, field)
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, SettingsError):
            raise cause from None
        problem = str(cause) if cause is not None else error["msg"]
        raise SettingsError(variable, problem, _FIXES.get(variable, "correct the value")) from None


def _system() -> str:
    if sys.platform == "win32":
        return "Windows"
    return "Darwin" if sys.platform == "darwin" else "Linux"
