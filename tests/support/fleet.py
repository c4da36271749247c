"""Drives the application layer like a fleet of agents would, against any Store, on a fake clock.

Used by projection tests and the property test: no HTTP, real handlers, real projectors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from obt.commands.alerts import AlertRuleCommands, ChangeAlertRule, CreateAlertRule, DeleteAlertRule
from obt.commands.handlers import ClientCommands
from obt.commands.lifecycle import ServerLifecycle
from obt.commands.messages import (
    CloseChannel,
    DecommissionClient,
    DeregisterClient,
    OpenChannel,
    RecordHeartbeat,
    RegisterClient,
    ReportModels,
)
from obt.commands.operations import OperationCommands, RequestOperation
from obt.commands.repository import ClientRepository
from obt.domain.client import InstalledModel, LoadedModel
from obt.domain.liveness import LivenessPolicy
from obt.jobs.alerts import alert_evaluator
from obt.jobs.notifications import notification_delivery
from obt.notify.memory import MemoryNotifier
from obt.projections.runner import ProjectionRunner, default_projectors
from obt.store.codec import dumps
from obt.store.ports import Store
from tests.support.clock import FakeClock

ENROLLMENT = "enrollment-token-for-tests-0123456789"
ALL_COLLECTIONS = tuple(c for p in default_projectors() for c in p.collections)


@dataclass
class Agent:
    client_id: str
    session: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    channel: str | None = None  # the id of its open channel, as the server's registry has it


class Fleet:
    def __init__(self, store: Store, clock: FakeClock | None = None) -> None:
        self.store = store
        self.clock = clock or FakeClock()
        self.policy = LivenessPolicy(10, 30)
        self.repo = ClientRepository(store)
        self.lifecycle = ServerLifecycle(store, server_id="test")
        self.commands = ClientCommands(
            self.repo,
            self.clock,
            self.policy,
            enrollment_token=ENROLLMENT,
            server_started_at=lambda: self.lifecycle.started_at,
            server_id="test",
        )
        self.runner = ProjectionRunner(store, batch_size=50)
        self.agents: dict[str, Agent] = {}
        self.alert_rules = AlertRuleCommands(store, self.clock, server_id="test")
        self.evaluator = alert_evaluator(store, self.clock, self.runner, self.repo, "test")
        self.notifier = MemoryNotifier()
        self.delivery = notification_delivery(store, self.clock, self.runner, self.notifier, "test")
        self.rule_ids: list[str] = []
        self.operation_ids: list[str] = []
        self.operations = OperationCommands(
            store, self.clock, server_id="test", new_id=lambda: f"op{len(self.operation_ids) + 1}"
        )

    async def start(self) -> None:
        await self.lifecycle.record_start(self.clock.now())
        await self.runner.start()

    async def register(
        self, cid: str, *, reachable: bool = True, new_session: bool = False
    ) -> None:
        agent = self.agents.get(cid)
        if agent is None or new_session:
            agent = self.agents[cid] = Agent(cid)
        await self.commands.register(
            RegisterClient(
                client_id=cid,
                hostname=f"host-{cid}",
                platform={"system": "Linux", "release": "6.1", "machine": "x86_64"},
                agent_version="0.1.0",
                labels={"rack": cid[-1]},
                ollama={
                    "installed": True,
                    "version": "0.5.1",
                    "base_url": "",
                    "reachable": reachable,
                },
                session_id=agent.session,
                credential=ENROLLMENT,
            )
        )

    async def heartbeat(self, cid: str, *, reachable: bool = True) -> None:
        agent = self.agents[cid]
        agent.seq += 1
        await self.commands.heartbeat(
            RecordHeartbeat(
                client_id=cid,
                seq=agent.seq,
                session_id=agent.session,
                sent_at=self.clock.now(),
                ollama={
                    "reachable": reachable,
                    "version": "0.5.1",
                    "latency_ms": 2.0,
                    "error": None if reachable else "connection refused",
                },
                models_digest=None,
            )
        )

    async def models(
        self, cid: str, names: dict[str, str], loaded: dict[str, int] | None = None
    ) -> None:
        await self.commands.report_models(
            ReportModels(
                client_id=cid,
                installed=[
                    InstalledModel(name=n, digest=d, size=1000 + len(n)) for n, d in names.items()
                ],
                loaded=[
                    LoadedModel(name=n, digest=names.get(n), size=1000, size_vram=v)
                    for n, v in (loaded or {}).items()
                ],
            )
        )

    async def deregister(self, cid: str) -> None:
        await self.commands.deregister(DeregisterClient(client_id=cid))

    async def open_channel(self, cid: str) -> None:
        """A channel opened (replacing the agent's open one, as the server's registry does)."""
        agent = self.agents[cid]
        channel = uuid.uuid4().hex
        await self.commands.open_channel(
            OpenChannel(
                client_id=cid,
                channel_id=channel,
                session_id=agent.session,
                remote="127.0.0.1:40000",
                replacing=agent.channel,
            )
        )
        agent.channel = channel

    async def close_channel(self, cid: str, reason: str) -> None:
        agent = self.agents[cid]
        if agent.channel is None:
            return
        channel, agent.channel = agent.channel, None
        await self.commands.close_channel(
            CloseChannel(client_id=cid, channel_id=channel, reason=reason, code=1006)
        )

    async def decommission(self, cid: str) -> None:
        await self.commands.decommission(DecommissionClient(client_id=cid))

    async def create_rule(self, variant: int) -> str:
        saved = await self.alert_rules.create(CreateAlertRule(**rule_variant(variant)))
        self.rule_ids.append(saved.rule_id)
        return saved.rule_id

    async def change_rule(self, which: int, variant: int) -> None:
        rule_id = self.rule_ids[which % len(self.rule_ids)] if self.rule_ids else "none"
        await self.alert_rules.change(ChangeAlertRule(rule_id=rule_id, **rule_variant(variant)))

    async def delete_rule(self, which: int) -> None:
        rule_id = self.rule_ids[which % len(self.rule_ids)] if self.rule_ids else "none"
        await self.alert_rules.delete(DeleteAlertRule(rule_id=rule_id))

    async def evaluate(self, *, project: bool = False) -> int:
        """One alert evaluation on what the read models know now (caught up first if asked)."""
        if project:
            await self.project()
        return await self.evaluator.run_once()

    async def deliver(self, *, failing: str | None = None) -> int:
        """One delivery round through the in-memory notifier (failing with `failing` if set),
        waited for to the end."""
        self.notifier.failing = failing
        started = await self.delivery.run_once()
        await self.delivery.settle()
        return started

    async def request_operation(self, hosts: list[str], max_parallel: int, action: str) -> None:
        await self.operations.request(
            RequestOperation(
                action=action,
                model="llama3.2:3b",
                targets=hosts,
                selector={"client_ids": hosts},
                max_parallel=max_parallel,
            )
        )
        self.operation_ids.append(f"op{len(self.operation_ids) + 1}")

    def operation(self, which: int) -> str:
        return self.operation_ids[which % len(self.operation_ids)] if self.operation_ids else "none"

    async def start_target(self, which: int, cid: str) -> None:
        await self.operations.start(self.operation(which), cid)

    async def report_progress(self, which: int, cid: str, status: str, completed: int) -> None:
        await self.operations.progress(
            self.operation(which), cid, status=status, completed=completed, total=100
        )

    async def report_result(self, which: int, cid: str, succeeded: bool) -> None:
        reason = None if succeeded else "pull failed"
        await self.operations.result(self.operation(which), cid, succeeded=succeeded, reason=reason)

    async def cancel_operation(self, which: int) -> None:
        await self.operations.cancel(self.operation(which))

    async def expire_operation(self, which: int) -> None:
        await self.operations.expire(self.operation(which))

    async def sweep(self) -> list[str]:
        return await self.commands.detect_timeouts()

    async def restart_server(self, *, clean: bool, down_for_s: float) -> None:
        """Stop (cleanly or not), stay down, start again with fresh in-memory state."""
        if clean:
            await self.lifecycle.record_stop(self.clock.now())
        self.clock.advance(down_for_s)
        fresh = Fleet(self.store, self.clock)
        fresh.agents = self.agents
        for agent in self.agents.values():
            agent.channel = None  # channels end with their server
        fresh.rule_ids = self.rule_ids
        fresh.operation_ids = self.operation_ids
        self.__dict__.update(fresh.__dict__)
        await self.start()
        await self.repo.warm()

    async def project(self) -> None:
        await self.runner.catch_up()

    async def dump(self) -> dict[str, list[str]]:
        """Every read-model document, canonically serialised and sorted, by collection."""
        return {
            collection: sorted(dumps(doc) for doc in await self.store.find(collection))
            for collection in ALL_COLLECTIONS
        }


def rule_variant(variant: int) -> dict[str, Any]:
    """A few alert rules that differ in every way a rule can (scope, condition, targets)."""
    conditions: list[dict[str, Any]] = [
        {"kind": "status", "statuses": ["offline", "stopped"], "for_s": 0},
        {"kind": "status", "statuses": ["offline", "degraded", "stopped"], "for_s": 60},
        {"kind": "model_missing", "model": "llama3"},
        {"kind": "digest_drift"},
    ]
    scopes: list[dict[str, Any]] = [{}, {"labels": {"rack": "a"}}, {"client_ids": ["a", "b"]}]
    return {
        "name": f"rule {variant}",
        "scope": scopes[variant % len(scopes)],
        "condition": conditions[variant % len(conditions)],
        "notify": {"webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "s"}]},
        "send_resolved": variant % 2 == 0,
        "remind_every_s": 600 if variant % 3 == 0 else None,
    }
