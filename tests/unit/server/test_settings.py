"""Server settings: defaults, and errors that name the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from obt.cli import main
from obt.errors import SettingsError
from obt.settings import ensure_token, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("OBT_PORT", "OBT_STORE", "OBT_MONGODB_URI", "OBT_HEARTBEAT_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_architecture() -> None:
    s = load_settings()
    assert (s.host, s.port, s.store, s.mongodb_db) == ("127.0.0.1", 8881, "sqlite", "obt")
    assert (s.heartbeat_interval_s, s.heartbeat_timeout_s) == (10, 30)
    assert s.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("OBT_PORT", "eighty", "OBT_PORT"),
        ("OBT_PORT", "70000", "OBT_PORT"),
        ("OBT_STORE", "postgres", "OBT_STORE"),
        ("OBT_ENROLLMENT_TOKEN", "changeme", "OBT_ENROLLMENT_TOKEN"),
        ("OBT_HEARTBEAT_TIMEOUT_S", "5", "OBT_HEARTBEAT_TIMEOUT_S"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_mongodb_needs_a_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBT_STORE", "mongodb")
    with pytest.raises(SettingsError, match="OBT_MONGODB_URI is required"):
        load_settings()


def test_cli_stops_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBT_PORT", "eighty")
    assert main(["serve"]) == 2
    assert "OBT_PORT" in capsys.readouterr().err


def test_generated_token_is_kept_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "enrollment-token"
    token, created = ensure_token(path, None)
    assert created
    assert len(token) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_token(path, None) == (token, False)
    assert ensure_token(path, "configured-token-123456") == ("configured-token-123456", False)
