"""E-mails about interventions, composed here and written to the outbox with the change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile, User
from interventions.interventions import assignment
from interventions.interventions.models import Intervention, InterventionSite
from interventions.interventions.schemas import PreventiveUpdate
from interventions.notifications import service as notifications
from interventions.references.models import CompanyContact, Site
from interventions.wire import format_datetime


def describe(intervention: Intervention) -> str:
    start = (
        format_datetime(intervention.scheduled_start) if intervention.scheduled_start else "not set"
    )
    end = format_datetime(intervention.scheduled_end) if intervention.scheduled_end else "not set"
    return (
        f"Intervention {intervention.id}\n"
        f"Scheduled from {start} to {end}\n"
        f"PIN code for check-in: {intervention.code_pin}\n"
        f"Description: {intervention.description or '-'}\n"
    )


async def queue_assignee_emails(
    session: AsyncSession,
    intervention: Intervention,
    body: PreventiveUpdate,
    previous: assignment.Assignment,
    current: assignment.Assignment,
) -> None:
    """Seed 002's e-mails, written to the outbox with the change."""
    notice = body.previous_assignee_notification
    notify_previous = notice is not None and notice.send_email
    if not (body.send_update_email_to_current_assignee or notify_previous):
        return
    before, after = await assignment.addresses(session, previous, current)
    if body.send_update_email_to_current_assignee:
        for address, name in after:
            notifications.queue_email(
                session,
                organization_id=intervention.organization_id,
                intervention_id=intervention.id,
                recipient=address,
                subject=f"Intervention {intervention.id} has been updated",
                body=(
                    f"Hello {name},\n\nAn intervention assigned to you has been updated.\n\n"
                    + describe(intervention)
                ),
                kind="intervention.updated",
            )
    if notice is not None and notify_previous:
        still_assigned = {address for address, _ in after}
        reason = notice.reason or "No reason was given."
        for address, name in dict(before).items():
            if address in still_assigned:
                continue  # still assigned: not a previous assignee
            notifications.queue_email(
                session,
                organization_id=intervention.organization_id,
                intervention_id=intervention.id,
                recipient=address,
                subject=f"Intervention {intervention.id} is no longer assigned to you",
                body=(
                    f"Hello {name},\n\nIntervention {intervention.id} has been reassigned.\n"
                    f"Reason: {reason}\n"
                ),
                kind="intervention.unassigned",
            )


async def _site_names(session: AsyncSession, intervention: Intervention) -> list[str]:
    rows = await session.execute(
        select(Site.name)
        .join(InterventionSite, InterventionSite.site_id == Site.id)
        .where(InterventionSite.intervention_id == intervention.id)
        .order_by(Site.name)
    )
    return list(rows.scalars())


async def _assignee_label(session: AsyncSession, intervention: Intervention) -> str:
    names: list[str] = []
    if intervention.assigned_profile_id is not None:
        row = (
            await session.execute(
                select(User.first_name, User.last_name, User.email)
                .join(Profile, Profile.user_id == User.id)
                .where(Profile.id == intervention.assigned_profile_id)
            )
        ).one_or_none()
        if row is not None:
            names.append(" ".join(p for p in (row.first_name, row.last_name) if p) or row.email)
    if intervention.assigned_company_contact_id is not None:
        contact = await session.get(CompanyContact, intervention.assigned_company_contact_id)
        if contact is not None:
            names.append(contact.name)
    return ", ".join(names) or "nobody yet"


async def queue_information_email(
    session: AsyncSession, intervention: Intervention, recipient: str
) -> None:
    """Everything a provider needs to come and do the job: dates, sites, PIN, assignee."""
    sites = ", ".join(await _site_names(session, intervention)) or "-"
    body = (
        "Hello,\n\nHere is the information about an intervention.\n\n"
        + describe(intervention)
        + f"Sites: {sites}\n"
        + f"Assigned to: {await _assignee_label(session, intervention)}\n"
    )
    notifications.queue_email(
        session,
        organization_id=intervention.organization_id,
        intervention_id=intervention.id,
        recipient=recipient,
        subject=f"Intervention {intervention.id}: information",
        body=body,
        kind="intervention.information",
    )


def queue_decision_email(session: AsyncSession, intervention: Intervention, accepted: bool) -> None:
    """Tell the provider who executed it whether the client accepted the work."""
    if not intervention.provider_email:
        return
    verdict = "accepted" if accepted else "rejected"
    notifications.queue_email(
        session,
        organization_id=intervention.organization_id,
        intervention_id=intervention.id,
        recipient=intervention.provider_email,
        subject=f"Intervention {intervention.id} was {verdict}",
        body=(
            f"Hello {intervention.provider_name or ''},\n\n"
            f"The client {verdict} intervention {intervention.id}.\n"
            f"Comment: {intervention.decision_comment or '-'}\n"
        ),
        kind=f"intervention.{verdict}",
    )
