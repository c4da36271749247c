"""The aggregate cache follows the log: states the snapshot projector holds (what any instance
recorded) are adopted where they are newer, never over a newer cache or a running command."""

from __future__ import annotations

from obt.commands.repository import ClientRepository
from obt.domain.client import ClientState
from obt.store.memory import MemoryStore


def state(client_id: str, version: int, secret: str = "s1") -> ClientState:
    return ClientState(client_id=client_id, registered=True, version=version, secret_sha256=secret)


async def test_a_client_recorded_elsewhere_becomes_known_and_a_newer_state_replaces_the_cache() -> (
    None
):
    repo = ClientRepository(MemoryStore())
    assert repo.adopt([state("a", 1), None, ClientState(client_id="unregistered")]) == 1
    assert [s.client_id for s in repo.cached()] == ["a"]
    assert repo.owner_of_secret("s1") == "a"
    newer = state("a", 3, secret="s2")  # re-enrolled through another instance
    assert repo.adopt([newer]) == 1
    cached = next(repo.cached())
    assert cached.version == 3 and cached is not newer  # a copy: the projector keeps its own
    assert repo.owner_of_secret("s1") is None and repo.owner_of_secret("s2") == "a"


async def test_an_older_or_equal_state_or_a_running_command_keeps_the_cache() -> None:
    repo = ClientRepository(MemoryStore())
    repo.adopt([state("a", 5)])
    assert repo.adopt([state("a", 5), state("a", 4)]) == 0
    async with repo.lock("a"):
        assert repo.adopt([state("a", 9)]) == 0
    assert next(repo.cached()).version == 5
    assert repo.adopt([state("a", 9)]) == 1
