"""Intervention use cases: validate, compute the change, write it through the repository; the
request commits. Records are never mutated: ``repo.write`` returns the row as it now is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from interventions.auth import rate_limit
from interventions.auth.dependencies import Caller
from interventions.config import Settings
from interventions.db import Executor, utcnow
from interventions.errors import (
    AnomaliesNotOpen,
    AnomalyTaken,
    ChangedMeanwhile,
    EndsBeforeStart,
    NotATrainingRule,
    NotSiteRules,
    RoutineWithoutSiteRules,
    StartsInTheFuture,
    VerifiedMeanwhile,
)
from interventions.integrations.provider_links import service as provider_links
from interventions.interventions import messaging, onsite, presenter
from interventions.interventions import repository as repo
from interventions.interventions.assignment import (
    AssigneeChoice,
    current_assignment,
    resolve_assignment,
)
from interventions.interventions.conditions import EntityTags, require
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
    draw_code_pin,
    ensure,
)
from interventions.interventions.schemas import (
    AssigneeFields,
    CancelRequest,
    CurativeCreate,
    InformationEmailRequest,
    InterventionRead,
    RoutineInterventionCreate,
    TrainingCreate,
    UnplannedCreate,
    VerifyRequest,
)
from interventions.notifications import service as notifications
from interventions.references import repository as refs
from interventions.references.models import Anomaly, Company, Rule, Site
from interventions.storage import service as storage


def check_schedule(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise EndsBeforeStart()


def assignee_choice(body: AssigneeFields) -> AssigneeChoice:
    """What the body says of the assignee, as plain values."""
    return AssigneeChoice(
        fields=frozenset(body.model_fields_set),
        user_id=body.assigned_user_id,
        profile_id=body.assigned_profile_id,
        contact_id=body.assigned_company_contact_id,
    )


async def _create(
    db: Executor,
    caller: Caller,
    *,
    kind: Kind,
    creation_status: int,
    links: Mapping[str, Sequence[int]],
    assigned_user_id: int | None = None,
    **fields: Any,
) -> tuple[Any, dict[str, list[int]]]:
    """Insert a new intervention, its links and its history entry; the row and its link
    sets as ``repo.links`` gives them."""
    now = utcnow()
    status = apply(Action.CREATE, None, kind, creation_status=creation_status)
    values: dict[str, Any] = {
        "organization_id": caller.organization_id,
        "type": kind,
        "status": status,
        "creation_status": creation_status,
        "code_pin": draw_code_pin(),
        "auto_created": False,
        "check_type": CheckType.PLANNED,
        "created_by_user_id": caller.user_id,
        "created_at": now,
        "updated_at": now,
        "assigned_user_id": assigned_user_id,
        **fields,
    }
    if status == Status.TO_VERIFY and values.get("actual_start") is None:
        # "Done": recorded after the fact, so it happened when it was planned.
        values["actual_start"] = values.get("scheduled_start")
        values["actual_end"] = values.get("scheduled_end")
    row = await repo.insert_intervention(db, values)
    link_sets = repo.no_links()
    for member, ids in links.items():
        await repo.add_links(db, row, member, ids)
        link_sets[member] = sorted(set(ids))
    await repo.record_history(
        db,
        row,
        actor=caller.actor,
        action=Action.CREATE,
        changes={"status": row.status, "type": row.type},
    )
    return row, link_sets


async def create_curative(db: Executor, caller: Caller, body: CurativeCreate) -> InterventionRead:
    """Seed 000: repair open anomalies; they move to 'in repair' in the same transaction."""
    check_schedule(body.scheduled_start, body.scheduled_end)
    org = caller.organization_id
    anomalies = await refs.require_all(
        db, Anomaly, org, body.anomaly_ids, field="anomalyIds", label="anomaly"
    )
    move = anomaly_move(Action.CREATE, Kind.CURATIVE)
    assert move is not None
    takes, into = move
    busy = [a.id for a in anomalies.values() if a.status != takes]
    if busy:
        raise AnomaliesNotOpen(busy)
    assignment = await resolve_assignment(db, org, assignee_choice(body))
    site_ids = sorted({a.site_id for a in anomalies.values()})
    row, link_sets = await _create(
        db,
        caller,
        kind=Kind.CURATIVE,
        creation_status=body.creation_status,
        links={"anomaly_ids": body.anomaly_ids, "site_ids": site_ids},
        description=body.description,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        assigned_user_id=assignment.user_id,
        **assignment.columns(),
    )
    # Guarded by status so that two curatives racing for one anomaly cannot both take it.
    taken = await repo.take_anomalies(db, org, list(anomalies), source=takes, target=into)
    if len(taken) != len(anomalies):
        raise AnomalyTaken()
    repo.record_anomaly_moves(
        db,
        org,
        taken,
        intervention_id=row.id,
        action=Action.CREATE,
        source=takes,
        target=into,
        actor=caller.actor,
    )
    return presenter.to_read(row, link_sets)


async def create_unplanned(
    db: Executor,
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
    await refs.require_all(db, Company, org, [body.company_id], field="companyId", label="company")
    await refs.require_all(db, Site, org, body.site_ids, field="siteIds", label="site")
    await refs.require_all(db, Rule, org, body.rule_ids, field="ruleIds", label="rule")
    pairs = await refs.site_rules_between(db, org, body.site_ids, body.rule_ids)
    missing = [(s, r) for s in body.site_ids for r in body.rule_ids if (s, r) not in pairs]
    if missing:
        raise NotSiteRules(missing)
    signature = await onsite.new_signature(db, caller, body.signature)
    provider = body.provider
    end = now if now >= actual_start else actual_start
    row, link_sets = await _create(
        db,
        caller,
        kind=Kind.PREVENTIVE,
        creation_status=CreationStatus.DONE,
        links={
            "site_ids": body.site_ids,
            "rule_ids": body.rule_ids,
            "site_rule_ids": sorted(sr.id for sr in pairs.values()),
        },
        check_type=CheckType.UNPLANNED,
        scheduled_start=actual_start,
        scheduled_end=end,
        actual_start=actual_start,
        actual_end=end,
        provider_name=f"{provider.first_name} {provider.last_name}",
        provider_email=provider.email,
        provider_action_comment=provider.action_comment,
        provider_general_comment=provider.comment,
        company_id=body.company_id,
        signature_file_id=signature.id,
    )
    await onsite.notify_executed(db, row)
    return presenter.to_read(row, link_sets), storage_backend.presign_put(signature, base_url)


def site_rule_links(site_rules: Iterable[Any]) -> dict[str, list[int]]:
    """The three link sets naming ``site_rules``, their sites and their rules."""
    chosen = list(site_rules)
    return {
        "site_rule_ids": sorted({sr.id for sr in chosen}),
        "site_ids": sorted({sr.site_id for sr in chosen}),
        "rule_ids": sorted({sr.rule_id for sr in chosen}),
    }


async def create_from_routine(
    db: Executor, caller: Caller, body: RoutineInterventionCreate
) -> InterventionRead:
    check_schedule(body.scheduled_start, body.scheduled_end)
    found = await refs.routine_with_site_rules(db, caller.organization_id, body.routine_id)
    if found is None:
        raise refs.unprocessable_ids("routineId", "routine", [body.routine_id])
    routine, site_rules = found
    if not site_rules:
        raise RoutineWithoutSiteRules(routine.id)
    assignment = await current_assignment(db, routine)
    row, link_sets = await _create(
        db,
        caller,
        kind=Kind.PREVENTIVE,
        creation_status=body.creation_status,
        links=site_rule_links(site_rules),
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        routine_id=routine.id,
        assigned_user_id=assignment.user_id,
        **assignment.columns(),
    )
    return presenter.to_read(row, link_sets)


async def require_training_rule(db: Executor, caller: Caller, rule_id: int) -> Any:
    found = await refs.require_all(
        db, Rule, caller.organization_id, [rule_id], field="ruleId", label="rule"
    )
    rule = found[rule_id]
    if rule.type != 2:
        raise NotATrainingRule(rule_id)
    return rule


async def create_training(db: Executor, caller: Caller, body: TrainingCreate) -> InterventionRead:
    check_schedule(body.scheduled_start, body.scheduled_end)
    org = caller.organization_id
    await require_training_rule(db, caller, body.rule_id)
    await refs.require_all(db, Site, org, body.site_ids, field="siteIds", label="site")
    assignment = await resolve_assignment(db, org, assignee_choice(body))
    row, link_sets = await _create(
        db,
        caller,
        kind=Kind.TRAINING,
        creation_status=body.creation_status,
        links={"rule_ids": [body.rule_id], "site_ids": body.site_ids},
        description=body.description,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        assigned_user_id=assignment.user_id,
        **assignment.columns(),
    )
    return presenter.to_read(row, link_sets)


async def verify(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    body: VerifyRequest,
    *,
    if_match: EntityTags | None = None,
) -> InterventionRead:
    """Seed 004: accept or reject an executed intervention; exactly one concurrent call wins."""
    row = await repo.get_for_update(db, caller.organization_id, intervention_id)
    require(row, if_match)
    # The lifecycle's refusal (409) before the notification's (422).
    apply(Action.VERIFY, row.status, row.type, decision=body.decision)
    if body.notification_id is not None:
        await notifications.mark_read(
            db,
            organization_id=caller.organization_id,
            user_id=caller.user_id,
            notification_id=body.notification_id,
            field="notificationId",
        )
    row = await decide(
        db,
        row,
        decision=body.decision,
        comment=body.decision_comment,
        verifier_user_id=caller.user_id,
        actor=caller.actor,
    )
    return await presenter.read_one(db, row)


async def decide(
    db: Executor,
    row: Any,
    *,
    decision: int,
    comment: str,
    verifier_user_id: int | None,
    actor: dict[str, Any],
) -> Any:
    """Accept or reject the executed intervention ``row`` (read locked): the status the
    lifecycle gives, the verifier (``None``: the service itself), the anomalies, the decision
    e-mail and the journal entry. The row as it now is; ``VerifiedMeanwhile`` when another
    decision was written first."""
    before = row.status
    new_status = apply(Action.VERIFY, before, row.type, decision=decision)
    now = utcnow()
    # Conditional on the status read: where the row lock is a no-op (SQLite, serialised by
    # BEGIN IMMEDIATE instead) this is what makes the winner unique.
    row, written = await repo.write(
        db,
        row,
        {
            "status": new_status,
            "verified_by_user_id": verifier_user_id,
            "verified_at": now,
            "decision_comment": comment,
            "updated_at": now,
        },
    )
    if not written:
        raise VerifiedMeanwhile()
    await _move_anomalies(
        db,
        row,
        Action.VERIFY,
        anomaly_move(Action.VERIFY, row.type, decision=decision),
        now,
        user_id=verifier_user_id,
        actor=actor,
    )
    await messaging.queue_decision_email(db, row, accepted=decision == int(Decision.ACCEPT))
    await repo.record_history(
        db,
        row,
        actor=actor,
        action=Action.VERIFY,
        changes={
            "status": (before, new_status),
            "decision": decision,
            "decisionComment": comment,
        },
    )
    return row


async def _move_anomalies(
    db: Executor,
    row: Any,
    action: Action,
    move: tuple[AnomalyStatus, AnomalyStatus] | None,
    now: dt.datetime,
    *,
    user_id: int | None,
    actor: dict[str, Any],
) -> None:
    """Move the intervention's anomalies as the lifecycle says (``anomaly_move``), each
    move in the journal; ``user_id`` resolves them when they are resolved."""
    if move is None:
        return
    source, target = move
    resolved = target == AnomalyStatus.RESOLVED
    moved = await repo.move_linked_anomalies(
        db,
        row,
        source=source,
        target=target,
        now=now,
        resolved_by_user_id=user_id if resolved else None,
        resolved=resolved,
    )
    repo.record_anomaly_moves(
        db,
        row.organization_id,
        moved,
        intervention_id=row.id,
        action=action,
        source=source,
        target=target,
        actor=actor,
    )


async def cancel(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    body: CancelRequest | None,
    *,
    if_match: EntityTags | None = None,
) -> None:
    """Cancel: status 7 with ``deletedAt``, never a physical delete; anomalies reopen."""
    row = await repo.get_for_update(db, caller.organization_id, intervention_id)
    require(row, if_match)
    status = apply(Action.CANCEL, row.status, row.type)
    now = utcnow()
    reason = body.cancellation_reason if body is not None else None
    values = {"status": status, "deleted_at": now, "cancellation_reason": reason}
    changes = {k: (getattr(row, k), v) for k, v in values.items() if getattr(row, k) != v}
    row, written = await repo.write(db, row, {**values, "updated_at": now})
    if not written:
        raise ChangedMeanwhile()
    await _move_anomalies(
        db,
        row,
        Action.CANCEL,
        anomaly_move(Action.CANCEL, row.type),
        now,
        user_id=caller.user_id,
        actor=caller.actor,
    )
    await repo.record_history(db, row, actor=caller.actor, action=Action.CANCEL, changes=changes)


async def send_information(
    db: Executor,
    settings: Settings,
    caller: Caller,
    intervention_id: int,
    body: InformationEmailRequest,
    base_url: str = "",
) -> None:
    """Queue an e-mail describing the intervention (dates, sites, PIN, assignee); with
    ``providerLink``, a new provider link for its assigned contact too (its URL from
    ``base_url``).

    It goes to any address the caller names: at most ``information_emails_per_hour`` per
    organisation, charged with the e-mail in the request's transaction (429 queues nothing).
    """
    row = await repo.get(db, caller.organization_id, intervention_id)
    ensure(Action.SEND_INFORMATION, row.status, row.type)
    quota = rate_limit.Limit(
        f"information-email:organization:{caller.organization_id}",
        settings.information_emails_per_hour,
        3600,
        "information e-mails from this organisation",
    )
    link = None
    if body.provider_link:
        link = await provider_links.create_for(db, caller, row, base_url, field="providerLink")
    await rate_limit.charge(db, [quota])
    await messaging.queue_information_email(
        db, row, str(body.email), link_url=link.url if link else None
    )
    changes: dict[str, Any] = {"recipient": str(body.email)}
    if link is not None:
        changes["providerLinkId"] = link.id
    await repo.record_history(
        db, row, actor=caller.actor, action=Action.SEND_INFORMATION, changes=changes
    )
