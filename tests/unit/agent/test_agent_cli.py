from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from agent.cli import build_parser, doctor, main, run
from agent.detect.views import FakeFileSystem, FakeProcesses, FakeServices, HostView
from agent.settings import load_settings
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama

LINUX = (
    "Linux",
    HostView(
        fs=FakeFileSystem({"/usr/local/bin/ollama"}),
        processes=FakeProcesses(),
        services=FakeServices(),
        env={},
        home="/home/ada",
    ),
)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for text in [
        "run",
        "doctor",
        "--server-url",
        "--client-id",
        "--state-dir",
        "--label",
        "--ollama-host",
        "--log-format",
        "-v",
        "OBT_ENROLLMENT_TOKEN",
        "OLLAMA_HOST",
    ]:
        assert text in out


def test_options_may_come_after_the_subcommand() -> None:
    args = build_parser().parse_args(["--server-url", "http://a:1", "doctor", "-v"])
    assert (args.command, args.server_url, args.verbose) == ("doctor", "http://a:1", True)
    assert build_parser().parse_args([]).command is None


def test_bad_setting_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBT_CLIENT_ID", "no spaces allowed")
    assert main(["run"]) == 2
    assert "OBT_CLIENT_ID" in capsys.readouterr().err


def test_bad_label_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--label", "novalue", "run"]) == 2
    assert "--label" in capsys.readouterr().err


def test_run_without_token_or_secret_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--state-dir", str(tmp_path / "state")]) == 2
    assert "OBT_ENROLLMENT_TOKEN" in capsys.readouterr().err


async def test_run_reports_until_stopped(
    fake_obt: FakeObtServer, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    settings = load_settings(
        env_file=None,
        server_url=fake_obt.base_url,
        ollama_host=fake_ollama.base_url,
        state_dir=tmp_path / "state",
    ).model_copy(update={"enrollment_token": fake_obt.enrollment_token})
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, host=LINUX))
    await fake_obt.wait_until(lambda: len(fake_obt.model_reports) >= 1)
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0
    assert fake_obt.deregistrations == [fake_obt.registrations[0]["client_id"]]
    assert fake_obt.registrations[0]["ollama"]["installed"] is True


async def test_doctor_all_good(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_ollama.load("llama3.2:3b")
    settings = load_settings(
        env_file=None,
        server_url=fake_obt.base_url,
        ollama_host=fake_ollama.base_url,
        state_dir=tmp_path / "state",
    ).model_copy(update={"enrollment_token": fake_obt.enrollment_token})
    assert await doctor(settings, host=LINUX) == 0
    out = capsys.readouterr().out
    assert "running, version 0.9.6" in out
    assert "/usr/local/bin/ollama" in out
    assert "2 installed" in out
    assert "llama3.2:3b" in out
    assert "enrollment token accepted" in out
    assert "Verdict: all good" in out
    assert fake_obt.registrations == []
    assert not (tmp_path / "state").exists()


async def test_doctor_names_each_problem_with_a_fix(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_ollama.set_mode("down")
    settings = load_settings(
        env_file=None,
        server_url=fake_obt.base_url,
        ollama_host=fake_ollama.base_url,
        state_dir=tmp_path,
    )
    empty = ("Linux", HostView(FakeFileSystem(), FakeProcesses(), FakeServices(), {}, "/h"))
    assert await doctor(settings, host=empty) == 1
    out = capsys.readouterr().out
    assert "[BAD] ollama" in out
    assert "[BAD] binary" in out
    assert "[BAD] auth" in out
    assert out.count("fix:") == 3
    assert "Verdict: 3 problem(s)" in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_deregisters_and_exits_0(
    fake_obt: FakeObtServer, fake_ollama: FakeOllama, tmp_path: Path, signum: int
) -> None:
    env = {
        **os.environ,
        "OBT_SERVER_URL": fake_obt.base_url,
        "OBT_ENROLLMENT_TOKEN": fake_obt.enrollment_token,
        "OBT_AGENT_STATE_DIR": str(tmp_path / "state"),
        "OLLAMA_HOST": fake_ollama.base_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await fake_obt.wait_until(lambda: len(fake_obt.heartbeats) >= 1, timeout=30)
        proc.send_signal(signum)
        _, stderr = await asyncio.wait_for(proc.communicate(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert len(fake_obt.deregistrations) == 1
    assert b"event=deregistered" in stderr
