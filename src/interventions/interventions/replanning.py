"""Seeds 002 and 003: re-planning a preventive intervention or a drill (dates, assignees,
site rules, creation status), and validating a drill. Each change is remembered for the
history and written in one statement."""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel

from interventions.auth.dependencies import Caller
from interventions.db import Executor, utcnow
from interventions.errors import ChangedMeanwhile, NotNullable
from interventions.interventions import messaging, presenter
from interventions.interventions import repository as repo
from interventions.interventions.assignment import (
    Assignment,
    current_assignment,
    resolve_assignment,
)
from interventions.interventions.conditions import EntityTags, require
from interventions.interventions.lifecycle import Action, Kind, Status, apply, ensure, is_overdue
from interventions.interventions.schemas import (
    InterventionRead,
    PreventiveUpdate,
    TrainingUpdate,
)
from interventions.interventions.service import (
    assignee_choice,
    check_schedule,
    require_training_rule,
    site_rule_links,
)
from interventions.references import repository as refs
from interventions.references.models import Site, SiteRule


class ChangeSet:
    """Member changes to an intervention row, remembered for the history; ``values`` are
    the columns to write (``repo.write``)."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.values: dict[str, Any] = {}
        self.changes: dict[str, tuple[Any, Any]] = {}

    def get(self, attr: str) -> Any:
        return self.values[attr] if attr in self.values else getattr(self.row, attr)

    def set(self, attr: str, value: Any) -> None:
        before = self.get(attr)
        if before != value:
            self.changes[attr] = (before, value)
            self.values[attr] = value

    def links(self, member: str, before: list[int], after: list[int]) -> None:
        if sorted(set(before)) != sorted(set(after)):
            self.changes[member] = (sorted(set(before)), sorted(set(after)))


async def _apply_common(
    db: Executor,
    caller: Caller,
    body: PreventiveUpdate | TrainingUpdate,
    changes: ChangeSet,
) -> tuple[Assignment, Assignment]:
    """Description, dates, assignees and creation status, shared by both PATCH endpoints."""
    row = changes.row
    fields = body.model_fields_set
    for name in ("scheduled_start", "scheduled_end", "creation_status"):
        if name in fields and getattr(body, name) is None:
            raise NotNullable(to_camel(name))
    start = body.scheduled_start if "scheduled_start" in fields else row.scheduled_start
    end = body.scheduled_end if "scheduled_end" in fields else row.scheduled_end
    check_schedule(start, end)

    previous = await current_assignment(db, row)
    current = await resolve_assignment(db, caller.organization_id, assignee_choice(body), previous)

    if "description" in fields:
        changes.set("description", body.description)
    changes.set("scheduled_start", start)
    changes.set("scheduled_end", end)
    changes.set("assigned_profile_id", current.profile_id)
    changes.values["assigned_user_id"] = current.user_id  # read with the row, not a column
    changes.set("assigned_company_contact_id", current.contact.id if current.contact else None)
    if body.contact_given():
        changes.set("company_id", current.contact.company_id if current.contact else None)

    creation_status = (
        body.creation_status if body.creation_status is not None else row.creation_status
    )
    new_status = apply(
        Action.UPDATE,
        row.status,
        row.type,
        creation_status=creation_status,
        previous_creation_status=row.creation_status,
    )
    if new_status != row.status or creation_status != row.creation_status:
        # Re-planned as at creation (a change of creation status, or a rejected intervention
        # planned again): the earlier decision goes, and stays in the history.
        changes.set("creation_status", creation_status)
        changes.set("status", new_status)
        changes.set("verified_by_user_id", None)
        changes.set("verified_at", None)
        changes.set("decision_comment", None)
        if new_status == Status.TO_VERIFY:
            changes.set("actual_start", row.scheduled_start)
            changes.set("actual_end", row.scheduled_end)
    if row.overdue_notified_at is not None and not is_overdue(
        changes.get("status"), changes.get("scheduled_end"), utcnow()
    ):
        # Re-planned out of overdue: it may be overdue again later, and said so again then
        # (``overdue.py``). Not a member of the wire form: not in the history.
        changes.values["overdue_notified_at"] = None
    return previous, current


async def _finish_update(
    db: Executor,
    caller: Caller,
    changes: ChangeSet,
    action: Action,
    link_sets: dict[str, list[int]] | None,
) -> tuple[Any, InterventionRead]:
    row = changes.row
    if changes.changes:
        row, written = await repo.write(db, row, {**changes.values, "updated_at": utcnow()})
        if not written:
            raise ChangedMeanwhile()
        await repo.record_history(
            db, row, actor=caller.actor, action=action, changes=changes.changes
        )
    else:
        row = row._replace(**changes.values)
    return row, await presenter.read_one(db, row, link_sets)


async def update_preventive(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    body: PreventiveUpdate,
    *,
    if_match: EntityTags | None = None,
) -> InterventionRead:
    """Seed 002: re-plan, change site rules or assignee, with optional e-mails."""
    org = caller.organization_id
    row = await repo.get_for_update(db, org, intervention_id, Kind.PREVENTIVE)
    require(row, if_match)
    ensure(Action.UPDATE, row.status, row.type)
    changes = ChangeSet(row)
    link_sets: dict[str, list[int]] | None = None
    if body.site_rule_ids is not None:
        found = await refs.require_all(
            db, SiteRule, org, body.site_rule_ids, field="siteRuleIds", label="site rule"
        )
        before = (await repo.links(db, org, [row.id]))[row.id]
        changes.links("siteRuleIds", before["site_rule_ids"], body.site_rule_ids)
        new_links = site_rule_links(found[i] for i in body.site_rule_ids)
        for member, ids in new_links.items():
            await repo.replace_links(db, row, member, ids)
        link_sets = {**before, **new_links}
    previous, current = await _apply_common(db, caller, body, changes)
    row, read = await _finish_update(db, caller, changes, Action.UPDATE, link_sets)
    notice = body.previous_assignee_notification
    await messaging.queue_assignee_emails(
        db,
        row,
        previous,
        current,
        to_current=body.send_update_email_to_current_assignee,
        to_previous=notice is not None and notice.send_email,
        reason=notice.reason if notice is not None else None,
    )
    return read


async def update_training(
    db: Executor,
    caller: Caller,
    intervention_id: int,
    body: TrainingUpdate,
    *,
    if_match: EntityTags | None = None,
) -> InterventionRead:
    """Seed 003: re-plan a drill, or validate it (``validateIntervention``)."""
    org = caller.organization_id
    row = await repo.get_for_update(db, org, intervention_id, Kind.TRAINING)
    require(row, if_match)
    edits = body.model_fields_set - {"validate_intervention"}
    if edits or not body.validate_intervention:
        ensure(Action.UPDATE, row.status, row.type)
    if body.validate_intervention:
        ensure(Action.VALIDATE_TRAINING, row.status, row.type)
    changes = ChangeSet(row)
    if body.rule_id is not None:
        await require_training_rule(db, caller, body.rule_id)
    elif "rule_id" in body.model_fields_set:
        raise NotNullable("ruleId")
    if body.site_ids is not None:
        await refs.require_all(db, Site, org, body.site_ids, field="siteIds", label="site")
    elif "site_ids" in body.model_fields_set:
        raise NotNullable("siteIds")
    link_sets: dict[str, list[int]] | None = None
    if body.rule_id is not None or body.site_ids is not None:
        link_sets = (await repo.links(db, org, [row.id]))[row.id]
        for member, label, ids in (
            ("rule_ids", "ruleIds", None if body.rule_id is None else [body.rule_id]),
            ("site_ids", "siteIds", body.site_ids),
        ):
            if ids is not None:
                changes.links(label, link_sets[member], ids)
                await repo.replace_links(db, row, member, ids)
                link_sets[member] = sorted(set(ids))
    if edits:
        await _apply_common(db, caller, body, changes)
    action = Action.UPDATE
    if body.validate_intervention:
        action = Action.VALIDATE_TRAINING
        # From the status the update above may have moved it to (1, 2 or 4: all allowed).
        changes.set("status", apply(action, changes.get("status"), row.type))
        changes.set("verified_by_user_id", caller.user_id)
        changes.set("verified_at", utcnow())
        if changes.get("actual_start") is None:
            changes.set("actual_start", changes.get("scheduled_start"))
            changes.set("actual_end", changes.get("scheduled_end"))
    _, read = await _finish_update(db, caller, changes, action, link_sets)
    return read
