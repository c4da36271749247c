from pathlib import Path

import pytest

from agent.errors import SettingsError
from agent.settings import default_state_dir, load_settings


def test_defaults() -> None:
    settings = load_settings(env_file=None)
    assert settings.server_url == "http://127.0.0.1:8881"
    assert settings.enrollment_token is None
    assert settings.client_id is None
    assert settings.labels == {}
    assert settings.ollama.base_url == "http://127.0.0.1:11434"


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OBT_SERVER_URL", "https://obt.internal:8881/")
    monkeypatch.setenv("OBT_ENROLLMENT_TOKEN", "s3cret-token")
    monkeypatch.setenv("OBT_CLIENT_ID", "gpu-01")
    monkeypatch.setenv("OBT_AGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBT_AGENT_LABELS", "room=lab, gpu = a4000")
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    settings = load_settings(env_file=None)
    assert settings.server_url == "https://obt.internal:8881"
    assert settings.enrollment_token == "s3cret-token"
    assert settings.client_id == "gpu-01"
    assert settings.resolved_state_dir() == tmp_path / "state"
    assert settings.labels == {"room": "lab", "gpu": "a4000"}
    assert settings.ollama.base_url == "http://127.0.0.1:11500"


def test_command_mode_and_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings(env_file=None)
    assert (defaults.read_only, defaults.transport) == (False, "auto")
    monkeypatch.setenv("OBT_AGENT_READ_ONLY", "true")
    monkeypatch.setenv("OBT_AGENT_TRANSPORT", "http")
    settings = load_settings(env_file=None)
    assert (settings.read_only, settings.transport) == (True, "http")


def test_reads_a_dotenv_file(tmp_path: Path) -> None:
    env = tmp_path / "agent.env"
    env.write_text("OBT_CLIENT_ID=from-file\nOBT_AGENT_LABELS=a=1\n")
    settings = load_settings(env_file=env)
    assert settings.client_id == "from-file"
    assert settings.labels == {"a": "1"}


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBT_CLIENT_ID", "from-env")
    assert load_settings(env_file=None, client_id="from-cli").client_id == "from-cli"
    assert load_settings(env_file=None, client_id=None).client_id == "from-env"


def test_secret_is_not_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBT_ENROLLMENT_TOKEN", "very-secret-value")
    assert "very-secret-value" not in repr(load_settings(env_file=None))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OBT_SERVER_URL", "obt.internal:8881"),
        ("OBT_SERVER_URL", "ftp://obt.internal"),
        ("OBT_CLIENT_ID", "has space"),
        ("OBT_CLIENT_ID", "x" * 65),
        ("OBT_CLIENT_ID", "slash/id"),
        ("OBT_AGENT_LABELS", "room"),
        ("OBT_AGENT_LABELS", "=value"),
        ("OLLAMA_HOST", "gpu-box:99999"),
        ("OBT_ENROLLMENT_TOKEN", "change-me"),
        ("OBT_AGENT_READ_ONLY", "perhaps"),
        ("OBT_AGENT_TRANSPORT", "carrier-pigeon"),
    ],
)
def test_bad_values_stop_with_the_variable_and_a_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    assert caught.value.variable == variable
    assert caught.value.fix
    assert variable in str(caught.value)


def test_client_id_of_64_allowed_characters_is_accepted() -> None:
    client_id = "A-z_0.9" + "x" * 57
    assert load_settings(env_file=None, client_id=client_id).client_id == client_id


@pytest.mark.parametrize(
    ("system", "env", "expected"),
    [
        ("Linux", {}, "/home/u/.local/state/obt-agent"),
        ("Linux", {"XDG_STATE_HOME": "/xdg"}, "/xdg/obt-agent"),
        ("Darwin", {}, "/home/u/Library/Application Support/obt-agent"),
        ("Windows", {"LOCALAPPDATA": "/lad"}, "/lad/obt-agent"),
    ],
)
def test_default_state_dir(system: str, env: dict[str, str], expected: str) -> None:
    assert default_state_dir(system, env, Path("/home/u")) == Path(expected)
