"""Alert endpoints (admin token): rules under /alerts/rules, firing and past alerts at /alerts.

Request schemas live here, converted to commands at the edge; what a rule may say beyond its
shape (statuses, targets, reminder bounds) is checked by obt/domain/alerts.py.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field, StringConstraints

from obt.api.deps import AdminDep, OBTDep
from obt.api.errors import json_response
from obt.api.schemas import ClientId, ErrorResponse, LabelKey, LabelValue, _In
from obt.bootstrap import OBT
from obt.commands.alerts import ChangeAlertRule, CreateAlertRule, DeleteAlertRule, SavedRule
from obt.domain.alerts import MAX_FOR_S, MAX_REMIND_S, MAX_TARGETS
from obt.errors import UnknownAlertRule
from obt.jobs.notifications import NotificationDelivery
from obt.projections.alert_notices import NOTICES
from obt.projections.alert_rules import AlertRulesProjector
from obt.projections.alerts import ALERTS, AlertsProjector
from obt.store.ports import Doc

router = APIRouter(tags=["alerts"])

RULE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
RuleIdPath = Annotated[str, Path(pattern=RULE_ID_PATTERN, description="the rule's id")]
ForS = Annotated[float, Field(ge=0, le=MAX_FOR_S, description="how long it must hold (s)")]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


class ScopeIn(_In):
    client_ids: Annotated[list[ClientId], Field(max_length=1000)] = Field(default_factory=list)
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=64)] = Field(
        default_factory=dict
    )


class StatusConditionIn(_In):
    kind: Literal["status"]
    statuses: Annotated[
        list[Literal["offline", "degraded", "stopped"]], Field(min_length=1, max_length=3)
    ]
    for_s: ForS = 0


class ModelMissingConditionIn(_In):
    kind: Literal["model_missing"]
    model: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    for_s: ForS = 0


class DigestDriftConditionIn(_In):
    kind: Literal["digest_drift"]
    model: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    for_s: ForS = 0


ConditionIn = Annotated[
    StatusConditionIn | ModelMissingConditionIn | DigestDriftConditionIn,
    Field(discriminator="kind"),
]


class WebhookIn(_In):
    url: Url
    secret: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        None, description="HMAC key; omit on PUT to keep the stored secret of the same url"
    )


class NotifyIn(_In):
    urls: Annotated[list[Url], Field(max_length=MAX_TARGETS)] = Field(default_factory=list)
    webhooks: Annotated[list[WebhookIn], Field(max_length=MAX_TARGETS)] = Field(
        default_factory=list
    )


class AlertRuleIn(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    scope: ScopeIn = Field(default_factory=ScopeIn)
    condition: ConditionIn
    notify: NotifyIn = Field(default_factory=NotifyIn)
    send_resolved: bool = True
    remind_every_s: Annotated[float, Field(gt=0, le=MAX_REMIND_S)] | None = None


class AlertRuleOut(BaseModel):
    id: str
    name: str
    scope: dict[str, Any]
    condition: dict[str, Any]
    notify: dict[str, Any]
    send_resolved: bool
    remind_every_s: float | None
    created_at: str | None = None
    updated_at: str | None = None
    position: int


class AlertRuleList(BaseModel):
    items: list[AlertRuleOut]


def rule_out(doc: Doc) -> Doc:
    """A rule as the API shows it: webhook secrets never leave the server."""
    out = dict(doc)
    notify = doc.get("notify", {})
    out["notify"] = {
        "urls": list(notify.get("urls", [])),
        "webhooks": [{"url": w["url"], "has_secret": True} for w in notify.get("webhooks", [])],
    }
    return out


def saved_out(saved: SavedRule) -> Doc:
    return rule_out(
        {"id": saved.rule_id, **dataclasses.asdict(saved.spec), "position": saved.position}
    )


def _rules(obt: OBT) -> AlertRulesProjector:
    projector = obt.runner.projector("alert_rules")
    assert isinstance(projector, AlertRulesProjector)
    return projector


def _fields(body: AlertRuleIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "scope": body.scope.model_dump(),
        "condition": body.condition.model_dump(),
        "notify": body.notify.model_dump(),
        "send_resolved": body.send_resolved,
        "remind_every_s": body.remind_every_s,
    }


@router.post(
    "/alerts/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses={201: {"model": AlertRuleOut}, **ADMIN_ERRORS},
    summary="Create an alert rule (admin)",
)
async def create_rule(body: AlertRuleIn, obt: OBTDep, _: AdminDep) -> Response:
    saved = await obt.alert_rules.create(CreateAlertRule(**_fields(body)))
    return json_response(saved_out(saved), status=201)


@router.get(
    "/alerts/rules",
    response_model=None,
    responses={200: {"model": AlertRuleList}, **ADMIN_ERRORS},
    summary="Every alert rule (admin)",
)
async def list_rules(obt: OBTDep, _: AdminDep) -> Response:
    rules = sorted(_rules(obt).rules.values(), key=lambda d: (d["created_at"], d["id"]))
    return json_response({"items": [rule_out(d) for d in rules]})


@router.get(
    "/alerts/rules/{rule_id}",
    response_model=None,
    responses={200: {"model": AlertRuleOut}, **ADMIN_ERRORS, **NOT_FOUND},
    summary="One alert rule (admin)",
)
async def get_rule(rule_id: RuleIdPath, obt: OBTDep, _: AdminDep) -> Response:
    doc = _rules(obt).rules.get(rule_id)
    if doc is None:
        raise UnknownAlertRule(rule_id)
    return json_response(rule_out(doc))


@router.put(
    "/alerts/rules/{rule_id}",
    response_model=None,
    responses={200: {"model": AlertRuleOut}, **ADMIN_ERRORS, **NOT_FOUND},
    summary="Replace an alert rule (admin)",
)
async def change_rule(rule_id: RuleIdPath, body: AlertRuleIn, obt: OBTDep, _: AdminDep) -> Response:
    saved = await obt.alert_rules.change(ChangeAlertRule(rule_id=rule_id, **_fields(body)))
    return json_response(saved_out(saved))


@router.delete(
    "/alerts/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ADMIN_ERRORS, **NOT_FOUND},
    summary="Delete an alert rule (admin); its firing alerts resolve",
)
async def delete_rule(rule_id: RuleIdPath, obt: OBTDep, _: AdminDep) -> Response:
    await obt.alert_rules.delete(DeleteAlertRule(rule_id=rule_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/alerts/rules/{rule_id}/test",
    response_model=None,
    responses={**ADMIN_ERRORS, **NOT_FOUND},
    summary="Send a test notice to every target of a rule now (admin); nothing is recorded",
)
async def send_test_notice(rule_id: RuleIdPath, obt: OBTDep, _: AdminDep) -> Response:
    doc = _rules(obt).rules.get(rule_id)
    if doc is None:
        raise UnknownAlertRule(rule_id)
    delivery = obt.jobs.job("notification-delivery")
    assert isinstance(delivery, NotificationDelivery)
    results = await delivery.test_send(doc, obt.clock.now())
    return json_response({"items": results})


Limit = Annotated[int, Query(ge=1, le=1000, description="page size (default 100)")]


class AlertList(BaseModel):
    items: list[dict[str, Any]]
    firing: int


def _alerts(obt: OBT) -> AlertsProjector:
    projector = obt.runner.projector("alerts")
    assert isinstance(projector, AlertsProjector)
    return projector


@router.get(
    "/alerts",
    response_model=None,
    responses={200: {"model": AlertList}, **ADMIN_ERRORS},
    summary="Firing alerts, or every alert newest first (admin)",
)
async def list_alerts(
    obt: OBTDep,
    _: AdminDep,
    state: Literal["firing", "all"] = "all",
    client_id: Annotated[ClientId | None, Query()] = None,
    limit: Limit = 100,
) -> Response:
    projector = _alerts(obt)
    firing = [
        d for d in projector.open.values() if client_id is None or d["client_id"] == client_id
    ]
    if state == "firing":
        items = sorted(firing, key=lambda d: (d["fired_at"], d["dedupe_key"]), reverse=True)
        items = await with_notices(obt, items[:limit])
    else:
        items = await obt.store.find(ALERTS, client_id=client_id, descending=True, limit=limit)
        items = await with_notices(obt, items)
    return json_response({"items": items, "firing": len(firing)})


async def with_notices(obt: OBT, alerts: list[Doc]) -> list[Doc]:
    """Each alert with its notices (fired, reminders, resolved) and their delivery attempts."""
    by_key: dict[str, list[Doc]] = {a["dedupe_key"]: [] for a in alerts}
    for cid in {a["client_id"] for a in alerts}:
        for notice in await obt.store.find(NOTICES, client_id=cid):
            if notice["dedupe_key"] in by_key:
                by_key[notice["dedupe_key"]].append(notice_out(notice))
    return [
        {**a, "notices": sorted(by_key[a["dedupe_key"]], key=lambda n: n["created_at"])}
        for a in alerts
    ]


def notice_out(doc: Doc) -> Doc:
    return {
        "id": doc["id"],
        "kind": doc["kind"],
        "state": doc["state"],
        "created_at": doc["created_at"],
        "deliveries": [{"target_id": tid, **d} for tid, d in sorted(doc["deliveries"].items())],
    }
