"""compose.yaml sets only variables the server's or the agent's settings know."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import AliasChoices

from agent.settings import AgentSettings
from obt.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def known_server_variables() -> set[str]:
    return {f"OBT_{name.upper()}" for name in Settings.model_fields}


def known_agent_variables() -> set[str]:
    names: set[str] = set()
    for field in AgentSettings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def test_compose_sets_only_known_variables() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"mongodb", "obt", "agent", "obt-2", "obt-3", "proxy"}
    server_env = set(services["obt"]["environment"])
    assert server_env <= known_server_variables(), server_env - known_server_variables()
    assert services["obt"]["environment"]["OBT_STORE"] == "mongodb"
    agent_env = set(services["agent"]["environment"])
    assert agent_env <= known_agent_variables(), agent_env - known_agent_variables()
    assert services["agent"]["profiles"] == ["agent"]
    assert "--replSet" in services["mongodb"]["command"]


def test_env_example_lists_only_known_variables() -> None:
    names = set()
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.lstrip("# ").strip()
        if line.startswith("OBT_") and "=" in line:
            names.add(line.split("=", 1)[0])
    assert names
    assert names <= known_server_variables(), names - known_server_variables()


def test_the_scale_profile_runs_three_named_instances_behind_the_proxy() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    instances = ["obt", "obt-2", "obt-3"]
    for name in ["obt-2", "obt-3", "proxy"]:
        assert services[name]["profiles"] == ["scale"]
    envs = [services[name]["environment"] for name in instances]
    for env in envs:
        assert set(env) <= known_server_variables(), set(env) - known_server_variables()
        assert env["OBT_MONGODB_URI"] == envs[0]["OBT_MONGODB_URI"]  # one replica set
    assert len({env["OBT_INSTANCE_NAME"] for env in envs}) == 3
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    for name in instances:
        assert f"{name}:8881" in caddyfile
    assert "deploy/Caddyfile" in services["proxy"]["volumes"][0]
