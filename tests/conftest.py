"""Fixtures shared by the integration and end-to-end tests: a MongoDB-wire server for the
session, and real processes that are always stopped and whose output is shown on failure."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.support.processes import Launcher

FAILED = pytest.StashKey[bool]()
TRANSACTION_LIFETIME_S = 3.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


def with_option(uri: str, option: str) -> str:
    """`uri` with a query option added unless the option is already there."""
    if option.split("=")[0] in uri:
        return uri
    if "?" in uri:
        return f"{uri}&{option}"
    return f"{uri}?{option}" if uri.endswith("/") or uri.count("/") > 2 else f"{uri}/?{option}"


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    """A MongoDB for the session: OBT_TEST_MONGODB_URI when set (a real replica set), else the
    secantusdb stand-in in this process. Tests use their own database names."""
    real = os.environ.get("OBT_TEST_MONGODB_URI")
    if real:
        yield real
        return
    secantus = pytest.importorskip("secantus")
    # Like mongod, the stand-in aborts a transaction whose client vanished only after the
    # transaction lifetime (60 s by default), and until then it blocks every later append
    # (they all $inc one counter). Tests kill servers mid-commit, so keep the limit short, as
    # `--setParameter transactionLifetimeLimitSeconds` would on a real deployment.
    server = secantus.SecantusDBServer(
        host="127.0.0.1",
        port=0,
        storage_path=":memory:",
        transaction_lifetime_seconds=TRANSACTION_LIFETIME_S,
    )
    server.start()
    try:
        # Retryable writes cut the stand-in's insert rate by ~6x (docs TOOLCHAIN.md).
        yield with_option(server.uri, "retryWrites=false")
    finally:
        server.stop()


@pytest.fixture
def launch(request: pytest.FixtureRequest) -> Iterator[Launcher]:
    """Start a process for this test: `server = launch(ServerProcess(...))`.

    Whatever was launched is stopped afterwards, last started first (the agent before the
    server it deregisters from); when the test failed, every process's output is printed.
    """
    launcher = Launcher()
    try:
        yield launcher
    finally:
        problems = []
        for process in reversed(launcher.launched):
            try:
                process.stop()
            except AssertionError as exc:
                problems.append(str(exc))
        if request.node.stash.get(FAILED, False) or problems:
            for process in launcher.launched:
                print(f"\n===== {process.name} (logs in {process.log_dir}) =====")
                print(process.output())
        if problems:
            pytest.fail("\n".join(problems))
