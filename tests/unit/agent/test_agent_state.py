import json
import stat
from pathlib import Path

import pytest

from agent.settings import CLIENT_ID_PATTERN
from agent.state import Credentials, StateDir, generate_client_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_client_id_is_generated_once_and_kept(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    first = state.client_id("gpu box #1")
    assert CLIENT_ID_PATTERN.fullmatch(first)
    assert first.startswith("gpu-box-1-")
    assert StateDir(tmp_path / "state").client_id("other") == first


def test_directory_is_owner_only_even_if_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    StateDir(path).ensure()
    assert mode(path) == 0o700


def test_secret_is_saved_owner_only_and_read_back(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    creds = Credentials("gpu-01", "s3cret", "http://obt:8881")
    state.save_credentials(creds)
    assert mode(tmp_path / "state" / "secret.json") == 0o600
    assert state.load_credentials("gpu-01", "http://obt:8881") == creds
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["secret.json"]


@pytest.mark.parametrize(
    ("client_id", "server_url"), [("other", "http://obt:8881"), ("gpu-01", "http://else:8881")]
)
def test_secret_of_another_client_or_server_is_ignored(
    tmp_path: Path, client_id: str, server_url: str
) -> None:
    state = StateDir(tmp_path)
    state.save_credentials(Credentials("gpu-01", "s3cret", "http://obt:8881"))
    assert state.load_credentials(client_id, server_url) is None


@pytest.mark.parametrize("content", ["not json", "[]", json.dumps({"client_id": "gpu-01"})])
def test_damaged_secret_reads_as_none(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret.json").write_text(content)
    assert StateDir(tmp_path).load_credentials("gpu-01", "http://obt:8881") is None


def test_forget_removes_the_secret(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.save_credentials(Credentials("gpu-01", "s3cret", "http://obt:8881"))
    state.forget_credentials()
    state.forget_credentials()
    assert state.load_credentials("gpu-01", "http://obt:8881") is None


def test_generated_ids_fit_the_pattern_for_odd_host_names() -> None:
    for hostname in ["", "...", "ü" * 80, "a" * 200, "host.local"]:
        assert CLIENT_ID_PATTERN.fullmatch(generate_client_id(hostname, "abcd1234"))
