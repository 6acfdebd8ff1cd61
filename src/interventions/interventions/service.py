"""Intervention use cases. Services validate, change rows and flush; the request commits."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from interventions.auth import rate_limit
from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import execute_core, table_of, utcnow
from interventions.errors import (
    AnomaliesNotOpen,
    AnomalyTaken,
    EndsBeforeStart,
    NotATrainingRule,
    NotNullable,
    NotSiteRules,
    RoutineWithoutSiteRules,
    StartsInTheFuture,
    VerifiedMeanwhile,
)
from interventions.interventions import messaging, onsite
from interventions.interventions import repository as repo
from interventions.interventions.assignment import Assignment, resolve_assignment
from interventions.interventions.lifecycle import (
    Action,
    AnomalyStatus,
    CheckType,
    CreationStatus,
    Decision,
    Kind,
    Status,
    anomaly_move,
    apply,
    ensure,
)
from interventions.interventions.models import Intervention, InterventionAnomaly
from interventions.interventions.schemas import (
    CancelRequest,
    CurativeCreate,
    InformationEmailRequest,
    InterventionRead,
    PreventiveUpdate,
    RoutineInterventionCreate,
    TrainingCreate,
    TrainingUpdate,
    UnplannedCreate,
    VerifyRequest,
)
from interventions.notifications import service as notifications
from interventions.references import repository as refs
from interventions.references.models import Anomaly, Company, CompanyContact, Rule, Site, SiteRule
from interventions.storage import service as storage


def draw_code_pin() -> int:
    """Six digits from the operating system's cryptographic random source."""
    return 100_000 + secrets.randbelow(900_000)


def check_schedule(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise EndsBeforeStart()


def _new_intervention(
    caller: Caller, *, kind: Kind, creation_status: int, **fields: Any
) -> Intervention:
    now = utcnow()
    status = apply(Action.CREATE, None, kind, creation_status=creation_status)
    intervention = Intervention(
        organization_id=caller.organization_id,
        type=kind,
        status=status,
        creation_status=creation_status,
        code_pin=draw_code_pin(),
        auto_created=False,
        check_type=fields.pop("check_type", CheckType.PLANNED),
        created_by_user_id=caller.user_id,
        created_at=now,
        updated_at=now,
        **fields,
    )
    if status == Status.TO_VERIFY and intervention.actual_start is None:
        # "Done": recorded after the fact, so it happened when it was planned.
        intervention.actual_start = intervention.scheduled_start
        intervention.actual_end = intervention.scheduled_end
    return intervention


def _link_sets(**members: Iterable[int]) -> dict[str, list[int]]:
    """All four link sets as ``repo.links`` gives them, from the ids just written."""
    out = repo.no_links()
    for member, ids in members.items():
        out[member] = sorted(set(ids))
    return out


async def _created(
    session: AsyncSession,
    caller: Caller,
    intervention: Intervention,
    link_sets: dict[str, list[int]],
    known_users: dict[int, int] | None = None,
) -> InterventionRead:
    """History and wire form of a new intervention, from what the caller has just written."""
    await session.flush()
    await repo.record_history(
        session,
        intervention,
        user_id=caller.user_id,
        action=Action.CREATE,
        changes={"status": intervention.status, "type": intervention.type},
    )
    return await repo.read_one(session, intervention, link_sets, known_users)


async def create_curative(
    session: AsyncSession, caller: Caller, body: CurativeCreate
) -> InterventionRead:
    """Seed 000: repair open anomalies; they move to 'in repair' in the same transaction."""
    check_schedule(body.scheduled_start, body.scheduled_end)
    anomalies = await refs.require_all(
        session,
        Anomaly,
        caller.organization_id,
        body.anomaly_ids,
        field="anomalyIds",
        label="anomaly",
    )
    move = anomaly_move(Action.CREATE, Kind.CURATIVE)
    assert move is not None
    takes, into = move
    busy = [a.id for a in anomalies.values() if a.status != takes]
    if busy:
        raise AnomaliesNotOpen(busy)
    assignment = await resolve_assignment(session, caller, body)
    intervention = _new_intervention(
        caller,
        kind=Kind.CURATIVE,
        creation_status=body.creation_status,
        description=body.description,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        **assignment.columns(),
    )
    session.add(intervention)
    await session.flush()
    site_ids = sorted({a.site_id for a in anomalies.values()})
    await repo.add_links(session, intervention, "anomaly_ids", body.anomaly_ids)
    await repo.add_links(session, intervention, "site_ids", site_ids)
    # Guarded by status so that two curatives racing for one anomaly cannot both take it.
    anomalies_table = table_of(Anomaly)  # Core: the rows read above are not used again
    anomaly = anomalies_table.c
    taken = await execute_core(
        session,
        update(anomalies_table)
        .where(anomaly.id.in_(body.anomaly_ids), anomaly.status == takes)
        .values(status=into, updated_at=utcnow()),
    )
    if taken.rowcount != len(anomalies):
        raise AnomalyTaken()
    link_sets = _link_sets(anomaly_ids=body.anomaly_ids, site_ids=site_ids)
    return await _created(session, caller, intervention, link_sets, assignment.known_users())


async def create_unplanned(
    session: AsyncSession,
    caller: Caller,
    body: UnplannedCreate,
    settings: Settings,
    base_url: str,
    storage_backend: storage.Storage,
) -> tuple[InterventionRead, str]:
    """Seed 001: a check done on the spot, already executed and signed (status 4)."""
    onsite.check_signature_size(settings, body.signature.size, "signature.size")
    now = utcnow()
    actual_start = body.actual_start or now
    if actual_start > now + dt.timedelta(seconds=settings.clock_skew_seconds):
        raise StartsInTheFuture()
    org = caller.organization_id
    await refs.require_all(
        session, Company, org, [body.company_id], field="companyId", label="company"
    )
    await refs.require_all(session, Site, org, body.site_ids, field="siteIds", label="site")
    await refs.require_all(session, Rule, org, body.rule_ids, field="ruleIds", label="rule")
    pairs = await refs.site_rules_between(session, org, body.site_ids, body.rule_ids)
    missing = [(s, r) for s in body.site_ids for r in body.rule_ids if (s, r) not in pairs]
    if missing:
        raise NotSiteRules(missing)
    signature = await onsite.attach_signature(session, caller, None, body.signature)
    provider = body.provider
    intervention = _new_intervention(
        caller,
        kind=Kind.PREVENTIVE,
        creation_status=CreationStatus.DONE,
        check_type=CheckType.UNPLANNED,
        scheduled_start=actual_start,
        scheduled_end=now if now >= actual_start else actual_start,
        actual_start=actual_start,
        actual_end=now if now >= actual_start else actual_start,
        provider_name=f"{provider.first_name} {provider.last_name}",
        provider_email=provider.email,
        provider_action_comment=provider.action_comment,
        provider_general_comment=provider.comment,
        company_id=body.company_id,
        signature_file_id=signature.id,
    )
    session.add(intervention)
    await session.flush()
    await repo.add_links(session, intervention, "site_ids", body.site_ids)
    await repo.add_links(session, intervention, "rule_ids", body.rule_ids)
    site_rule_ids = sorted(sr.id for sr in pairs.values())
    await repo.add_links(session, intervention, "site_rule_ids", site_rule_ids)
    await onsite.notify_executed(session, intervention)
    link_sets = _link_sets(
        site_ids=body.site_ids, rule_ids=body.rule_ids, site_rule_ids=site_rule_ids
    )
    read = await _created(session, caller, intervention, link_sets)
    return read, storage_backend.presign_put(signature, base_url)


async def create_from_routine(
    session: AsyncSession, caller: Caller, body: RoutineInterventionCreate
) -> InterventionRead:
    check_schedule(body.scheduled_start, body.scheduled_end)
    found = await refs.routine_with_site_rules(session, caller.organization_id, body.routine_id)
    if found is None:
        raise refs.unprocessable_ids("routineId", "routine", [body.routine_id])
    routine, site_rules = found
    if not site_rules:
        raise RoutineWithoutSiteRules(routine.id)
    assignment = Assignment(
        profile_id=routine.assigned_profile_id,
        contact=(
            await session.get(CompanyContact, routine.assigned_company_contact_id)
            if routine.assigned_company_contact_id
            else None
        ),
    )
    intervention = _new_intervention(
        caller,
        kind=Kind.PREVENTIVE,
        creation_status=body.creation_status,
        check_type=CheckType.PLANNED,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        routine_id=routine.id,
        **assignment.columns(),
    )
    session.add(intervention)
    await session.flush()
    link_sets = {**repo.no_links(), **await _link_site_rules(session, intervention, site_rules)}
    return await _created(session, caller, intervention, link_sets)


async def _link_site_rules(
    session: AsyncSession, intervention: Intervention, site_rules: Sequence[SiteRule]
) -> dict[str, list[int]]:
    """Link the site rules, their sites and their rules instead of the current ones; returns
    the three link sets as ``repo.links`` would."""
    link_sets = {
        "site_rule_ids": sorted({sr.id for sr in site_rules}),
        "site_ids": sorted({sr.site_id for sr in site_rules}),
        "rule_ids": sorted({sr.rule_id for sr in site_rules}),
    }
    for member, ids in link_sets.items():
        await repo.replace_links(session, intervention, member, ids)
    return link_sets


async def _require_training_rule(session: AsyncSession, caller: Caller, rule_id: int) -> Rule:
    found = await refs.require_all(
        session, Rule, caller.organization_id, [rule_id], field="ruleId", label="rule"
    )
    rule: Rule = found[rule_id]
    if rule.type != 2:
        raise NotATrainingRule(rule_id)
    return rule


async def create_training(
    session: AsyncSession, caller: Caller, body: TrainingCreate
) -> InterventionRead:
    check_schedule(body.scheduled_start, body.scheduled_end)
    await _require_training_rule(session, caller, body.rule_id)
    await refs.require_all(
        session, Site, caller.organization_id, body.site_ids, field="siteIds", label="site"
    )
    assignment = await resolve_assignment(session, caller, body)
    intervention = _new_intervention(
        caller,
        kind=Kind.TRAINING,
        creation_status=body.creation_status,
        description=body.description,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        **assignment.columns(),
    )
    session.add(intervention)
    await session.flush()
    await repo.add_links(session, intervention, "rule_ids", [body.rule_id])
    await repo.add_links(session, intervention, "site_ids", body.site_ids)
    link_sets = _link_sets(rule_ids=[body.rule_id], site_ids=body.site_ids)
    return await _created(session, caller, intervention, link_sets, assignment.known_users())


class ChangeSet:
    """Applies member changes to an intervention and remembers them for the history."""

    def __init__(self, intervention: Intervention) -> None:
        self.intervention = intervention
        self.changes: dict[str, tuple[Any, Any]] = {}

    def set(self, attr: str, value: Any) -> None:
        before = getattr(self.intervention, attr)
        if before != value:
            self.changes[attr] = (before, value)
            setattr(self.intervention, attr, value)

    def links(self, member: str, before: list[int], after: list[int]) -> None:
        if sorted(set(before)) != sorted(set(after)):
            self.changes[member] = (sorted(set(before)), sorted(set(after)))


async def _apply_common(
    session: AsyncSession,
    caller: Caller,
    intervention: Intervention,
    body: PreventiveUpdate | TrainingUpdate,
    changes: ChangeSet,
) -> tuple[Assignment, Assignment]:
    """Description, dates, assignees and creation status, shared by both PATCH endpoints."""
    fields = body.model_fields_set
    for name in ("scheduled_start", "scheduled_end", "creation_status"):
        if name in fields and getattr(body, name) is None:
            raise NotNullable(to_camel(name))
    start = body.scheduled_start if "scheduled_start" in fields else intervention.scheduled_start
    end = body.scheduled_end if "scheduled_end" in fields else intervention.scheduled_end
    check_schedule(start, end)

    previous = Assignment(
        profile_id=intervention.assigned_profile_id,
        contact=(
            await session.get(CompanyContact, intervention.assigned_company_contact_id)
            if intervention.assigned_company_contact_id
            else None
        ),
    )
    current = await resolve_assignment(session, caller, body, intervention)

    if "description" in fields:
        changes.set("description", body.description)
    changes.set("scheduled_start", start)
    changes.set("scheduled_end", end)
    changes.set("assigned_profile_id", current.profile_id)
    changes.set("assigned_company_contact_id", current.contact.id if current.contact else None)
    if body.contact_given():
        changes.set("company_id", current.contact.company_id if current.contact else None)

    creation_status = (
        body.creation_status if body.creation_status is not None else intervention.creation_status
    )
    new_status = apply(
        Action.UPDATE,
        intervention.status,
        intervention.type,
        creation_status=creation_status,
        previous_creation_status=intervention.creation_status,
    )
    if new_status != intervention.status or creation_status != intervention.creation_status:
        # Re-planned as at creation (a change of creation status, or a rejected intervention
        # planned again): the earlier decision goes, and stays in the history.
        changes.set("creation_status", creation_status)
        changes.set("status", new_status)
        changes.set("verified_by_user_id", None)
        changes.set("verified_at", None)
        changes.set("decision_comment", None)
        if new_status == Status.TO_VERIFY:
            changes.set("actual_start", intervention.scheduled_start)
            changes.set("actual_end", intervention.scheduled_end)
    return previous, current


async def _finish_update(
    session: AsyncSession,
    caller: Caller,
    intervention: Intervention,
    changes: ChangeSet,
    action: Action,
    link_sets: dict[str, list[int]] | None,
    known_users: dict[int, int] | None = None,
) -> InterventionRead:
    if changes.changes:
        intervention.updated_at = utcnow()
        await repo.record_history(
            session, intervention, user_id=caller.user_id, action=action, changes=changes.changes
        )
    await session.flush()
    return await repo.read_one(session, intervention, link_sets, known_users)


async def update_preventive(
    session: AsyncSession, caller: Caller, intervention_id: int, body: PreventiveUpdate
) -> InterventionRead:
    """Seed 002: re-plan, change site rules or assignee, with optional e-mails."""
    intervention = await repo.get_for_update(
        session, caller.organization_id, intervention_id, Kind.PREVENTIVE
    )
    ensure(Action.UPDATE, intervention.status, intervention.type)
    changes = ChangeSet(intervention)
    link_sets: dict[str, list[int]] | None = None
    if body.site_rule_ids is not None:
        found = await refs.require_all(
            session,
            SiteRule,
            caller.organization_id,
            body.site_rule_ids,
            field="siteRuleIds",
            label="site rule",
        )
        before = (await repo.links(session, [intervention.id]))[intervention.id]
        changes.links("siteRuleIds", before["site_rule_ids"], body.site_rule_ids)
        chosen = [found[i] for i in body.site_rule_ids]
        link_sets = {**before, **await _link_site_rules(session, intervention, chosen)}
    previous, current = await _apply_common(session, caller, intervention, body, changes)
    await messaging.queue_assignee_emails(session, intervention, body, previous, current)
    return await _finish_update(
        session, caller, intervention, changes, Action.UPDATE, link_sets, current.known_users()
    )


async def update_training(
    session: AsyncSession, caller: Caller, intervention_id: int, body: TrainingUpdate
) -> InterventionRead:
    """Seed 003: re-plan a drill, or validate it (``validateIntervention``)."""
    intervention = await repo.get_for_update(
        session, caller.organization_id, intervention_id, Kind.TRAINING
    )
    edits = body.model_fields_set - {"validate_intervention"}
    if edits or not body.validate_intervention:
        ensure(Action.UPDATE, intervention.status, intervention.type)
    if body.validate_intervention:
        ensure(Action.VALIDATE_TRAINING, intervention.status, intervention.type)
    changes = ChangeSet(intervention)
    if body.rule_id is not None:
        await _require_training_rule(session, caller, body.rule_id)
    elif "rule_id" in body.model_fields_set:
        raise NotNullable("ruleId")
    if body.site_ids is not None:
        await refs.require_all(
            session, Site, caller.organization_id, body.site_ids, field="siteIds", label="site"
        )
    elif "site_ids" in body.model_fields_set:
        raise NotNullable("siteIds")
    link_sets: dict[str, list[int]] | None = None
    if body.rule_id is not None or body.site_ids is not None:
        link_sets = (await repo.links(session, [intervention.id]))[intervention.id]
        for member, label, ids in (
            ("rule_ids", "ruleIds", None if body.rule_id is None else [body.rule_id]),
            ("site_ids", "siteIds", body.site_ids),
        ):
            if ids is not None:
                changes.links(label, link_sets[member], ids)
                await repo.replace_links(session, intervention, member, ids)
                link_sets[member] = sorted(set(ids))
    known_users: dict[int, int] = {}
    if edits:
        _, current = await _apply_common(session, caller, intervention, body, changes)
        known_users = current.known_users()
    action = Action.UPDATE
    if body.validate_intervention:
        action = Action.VALIDATE_TRAINING
        now = utcnow()
        # From the status the update above may have moved it to (1, 2 or 4: all allowed).
        changes.set("status", apply(action, intervention.status, intervention.type))
        changes.set("verified_by_user_id", caller.user_id)
        changes.set("verified_at", now)
        if intervention.actual_start is None:
            changes.set("actual_start", intervention.scheduled_start)
            changes.set("actual_end", intervention.scheduled_end)
    return await _finish_update(
        session, caller, intervention, changes, action, link_sets, known_users
    )


async def verify(
    session: AsyncSession, caller: Caller, intervention_id: int, body: VerifyRequest
) -> InterventionRead:
    """Seed 004: accept or reject an executed intervention; exactly one concurrent call wins."""
    intervention = await repo.get_for_update(session, caller.organization_id, intervention_id)
    before = intervention.status
    new_status = apply(Action.VERIFY, before, intervention.type, decision=body.decision)
    if body.notification_id is not None:
        await notifications.mark_read(
            session,
            organization_id=caller.organization_id,
            user_id=caller.user_id,
            notification_id=body.notification_id,
            field="notificationId",
        )
    now = utcnow()
    values = {
        "status": new_status,
        "verified_by_user_id": caller.user_id,
        "verified_at": now,
        "decision_comment": body.decision_comment,
        "updated_at": now,
    }
    # Conditional on the status we read: on databases where the row lock above is a no-op
    # (SQLite, serialised by BEGIN IMMEDIATE instead) this is what makes the winner unique.
    interventions = table_of(Intervention).c
    result = await execute_core(
        session,
        update(table_of(Intervention))
        .where(interventions.id == intervention.id, interventions.status == before)
        .values(values),
    )
    if result.rowcount != 1:
        raise VerifiedMeanwhile()
    for key, value in values.items():  # what the row now holds, without reading it back
        set_committed_value(intervention, key, value)
    await _move_anomalies(
        session,
        caller,
        intervention,
        anomaly_move(Action.VERIFY, intervention.type, decision=body.decision),
        now,
    )
    messaging.queue_decision_email(
        session, intervention, accepted=body.decision == int(Decision.ACCEPT)
    )
    await repo.record_history(
        session,
        intervention,
        user_id=caller.user_id,
        action=Action.VERIFY,
        changes={
            "status": (before, new_status),
            "decision": body.decision,
            "decisionComment": body.decision_comment,
        },
    )
    return await repo.read_one(session, intervention)


async def _move_anomalies(
    session: AsyncSession,
    caller: Caller,
    intervention: Intervention,
    move: tuple[AnomalyStatus, AnomalyStatus] | None,
    now: dt.datetime,
) -> None:
    """Move the intervention's anomalies as the lifecycle says (``anomaly_move``)."""
    if move is None:
        return
    source, target = move
    linked = select(InterventionAnomaly.anomaly_id).where(
        InterventionAnomaly.intervention_id == intervention.id
    )
    values: dict[str, Any] = {"status": target}
    if target == AnomalyStatus.RESOLVED:
        values.update(resolved_at=now, resolved_by_user_id=caller.user_id)
    anomalies = table_of(Anomaly)
    await execute_core(
        session,
        update(anomalies)
        .where(anomalies.c.id.in_(linked), anomalies.c.status == source)
        .values(updated_at=now, **values),
    )


async def cancel(
    session: AsyncSession, caller: Caller, intervention_id: int, body: CancelRequest | None
) -> None:
    """Cancel: status 7 with ``deletedAt``, never a physical delete; anomalies reopen."""
    intervention = await repo.get_for_update(session, caller.organization_id, intervention_id)
    status = apply(Action.CANCEL, intervention.status, intervention.type)
    now = utcnow()
    reason = body.cancellation_reason if body is not None else None
    changes = ChangeSet(intervention)
    changes.set("status", status)
    changes.set("deleted_at", now)
    changes.set("cancellation_reason", reason)
    intervention.updated_at = now
    await _move_anomalies(
        session, caller, intervention, anomaly_move(Action.CANCEL, intervention.type), now
    )
    await repo.record_history(
        session, intervention, user_id=caller.user_id, action=Action.CANCEL, changes=changes.changes
    )
    await session.flush()


async def send_information(
    session: AsyncSession,
    settings: Settings,
    caller: Caller,
    intervention_id: int,
    body: InformationEmailRequest,
) -> None:
    """Queue an e-mail describing the intervention (dates, sites, PIN, assignee).

    It goes to any address the caller names: at most ``information_emails_per_hour`` per
    organisation, charged with the e-mail in the request's transaction (429 queues nothing).
    """
    intervention = await repo.get(session, caller.organization_id, intervention_id)
    ensure(Action.SEND_INFORMATION, intervention.status, intervention.type)
    quota = rate_limit.Limit(
        f"information-email:organization:{caller.organization_id}",
        settings.information_emails_per_hour,
        3600,
        "information e-mails from this organisation",
    )
    await rate_limit.charge(session, [quota])
    await messaging.queue_information_email(session, intervention, str(body.email))
    await repo.record_history(
        session,
        intervention,
        user_id=caller.user_id,
        action=Action.SEND_INFORMATION,
        changes={"recipient": str(body.email)},
    )
