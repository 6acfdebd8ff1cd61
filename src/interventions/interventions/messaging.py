"""E-mails about interventions, composed here and written to the outbox with the change."""

from __future__ import annotations

from typing import Any

from interventions.auth.models import display_name
from interventions.db import Executor
from interventions.interventions import assignment
from interventions.interventions import repository as repo
from interventions.notifications import service as notifications
from interventions.wire import format_datetime


def describe(row: Any) -> str:
    start = format_datetime(row.scheduled_start) if row.scheduled_start else "not set"
    end = format_datetime(row.scheduled_end) if row.scheduled_end else "not set"
    return (
        f"Intervention {row.id}\n"
        f"Scheduled from {start} to {end}\n"
        f"PIN code for check-in: {row.code_pin}\n"
        f"Description: {row.description or '-'}\n"
    )


async def _queue(
    db: Executor, row: Any, recipient: str, subject: str, body: str, kind: str
) -> None:
    await notifications.enqueue_email(
        db,
        organization_id=row.organization_id,
        intervention_id=row.id,
        recipient=recipient,
        subject=subject,
        body=body,
        kind=kind,
    )


async def queue_assignee_emails(
    db: Executor,
    row: Any,
    previous: assignment.Assignment,
    current: assignment.Assignment,
    *,
    to_current: bool,
    to_previous: bool,
    reason: str | None,
) -> None:
    """Seed 002's e-mails, written to the outbox with the change: to the current assignees
    (``to_current``), and to those no longer assigned (``to_previous``, with ``reason``)."""
    if not (to_current or to_previous):
        return
    before, after = await assignment.addresses(db, row.organization_id, previous, current)
    if to_current:
        for address, name in after:
            await _queue(
                db,
                row,
                address,
                f"Intervention {row.id} has been updated",
                f"Hello {name},\n\nAn intervention assigned to you has been updated.\n\n"
                + describe(row),
                "intervention.updated",
            )
    if to_previous:
        still_assigned = {address for address, _ in after}
        why = reason or "No reason was given."
        for address, name in dict(before).items():
            if address in still_assigned:
                continue  # still assigned: not a previous assignee
            await _queue(
                db,
                row,
                address,
                f"Intervention {row.id} is no longer assigned to you",
                f"Hello {name},\n\nIntervention {row.id} has been reassigned.\nReason: {why}\n",
                "intervention.unassigned",
            )


async def _assignee_label(db: Executor, row: Any) -> str:
    current = await assignment.current_assignment(db, row)
    names: list[str] = []
    if current.profile_id is not None:
        found = await repo.profile_addresses(db, row.organization_id, [current.profile_id])
        names.extend(display_name(user) for user in found)
    if current.contact is not None:
        names.append(current.contact.name)
    return ", ".join(names) or "nobody yet"


async def queue_information_email(
    db: Executor, row: Any, recipient: str, link_url: str | None = None
) -> None:
    """Everything a provider needs to come and do the job: dates, sites, PIN, assignee; and
    the provider link to do it with, when one was made for the e-mail."""
    sites = ", ".join(await repo.site_names(db, row)) or "-"
    body = (
        "Hello,\n\nHere is the information about an intervention.\n\n"
        + describe(row)
        + f"Sites: {sites}\n"
        + f"Assigned to: {await _assignee_label(db, row)}\n"
    )
    if link_url is not None:
        body += (
            "\nRead the intervention, check in with the PIN and record its execution here "
            f"(this link is yours, do not share it):\n{link_url}\n"
        )
    await _queue(
        db, row, recipient, f"Intervention {row.id}: information", body, "intervention.information"
    )


async def queue_decision_email(db: Executor, row: Any, accepted: bool) -> None:
    """Tell the provider who executed it whether the client accepted the work."""
    if not row.provider_email:
        return
    verdict = "accepted" if accepted else "rejected"
    await _queue(
        db,
        row,
        row.provider_email,
        f"Intervention {row.id} was {verdict}",
        f"Hello {row.provider_name or ''},\n\n"
        f"The client {verdict} intervention {row.id}.\n"
        f"Comment: {row.decision_comment or '-'}\n",
        f"intervention.{verdict}",
    )


async def queue_overdue_emails(db: Executor, row: Any, recipients: list[tuple[str, str]]) -> int:
    """The overdue e-mail of one intervention (``overdue.py``), one message to each
    (address, name) once: its assignee and the organisation's admins and managers. No PIN:
    it is not the provider's e-mail. How many were queued."""
    end = format_datetime(row.scheduled_end) if row.scheduled_end else "not set"
    start = format_datetime(row.scheduled_start) if row.scheduled_start else "not set"
    seen: set[str] = set()
    for address, name in recipients:
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        await _queue(
            db,
            row,
            address,
            f"Intervention {row.id} is overdue",
            f"Hello {name},\n\nIntervention {row.id} should have ended at {end} and has not "
            "been executed.\n\n"
            f"Scheduled from {start} to {end}\n"
            f"Description: {row.description or '-'}\n",
            "intervention.overdue",
        )
    return len(seen)
