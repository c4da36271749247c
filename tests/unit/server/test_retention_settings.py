"""OBT_HEARTBEAT_RETENTION and OBT_COMPACTION_EVERY: durations with a unit, checked at start."""

from __future__ import annotations

from datetime import timedelta

import pytest

from obt.errors import SettingsError
from obt.settings import load_settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("14d", 14 * 86400), ("36h", 36 * 3600), ("90m", 5400), ("3600s", 3600), ("3600", 3600),
     ("0", 0), (" 1.5D ", 1.5 * 86400)],
)  # fmt: skip
def test_durations_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_the_default_retention_is_fourteen_days_and_compaction_daily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OBT_HEARTBEAT_RETENTION", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.heartbeat_retention == timedelta(days=14)
    assert settings.compaction_every == timedelta(days=1)


@pytest.mark.parametrize("bad", ["forever", "14 days", "-1d", "d"])
def test_a_bad_retention_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("OBT_HEARTBEAT_RETENTION", bad)
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None)
    assert "OBT_HEARTBEAT_RETENTION" in str(refused.value)
