"""The invitation e-mail: composed here, written to the outbox with the invitation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from interventions.db import Executor
from interventions.notifications import service as notifications
from interventions.wire import format_datetime

INVITATION_KIND = "organization.invitation"


def _invitation(
    *,
    organization_name: str,
    inviter: str,
    role: str,
    link: str,
    token: str,
    expires_at: dt.datetime,
) -> tuple[str, str]:
    """The subject and the body. They say nothing about whether the recipient already has
    an account: that is theirs to know."""
    body = (
        "Hello,\n\n"
        f"{inviter} invites you to join {organization_name} as {role} in the interventions "
        "register.\n\n"
        f"To accept, open this link before {format_datetime(expires_at)}:\n{link}\n\n"
        "If you already have an account, accept while logged in with it, or with its "
        "password; otherwise choose a password to create your account.\n\n"
        f"Invitation token: {token}\n\n"
        "If you were not expecting this invitation, ignore this e-mail: nothing happens "
        "unless you accept.\n"
    )
    # One line: an organisation's name may hold line breaks, a subject may not.
    subject = f"Invitation to join {' '.join(organization_name.split())}"[:500]
    return subject, body


async def enqueue_invitation_email(
    db: Executor,
    *,
    organization_id: int,
    organization_name: str,
    inviter: str,
    recipient: str,
    role: str,
    link: str,
    token: str,
    expires_at: dt.datetime,
) -> Any:
    """The link (and the bare token, for API clients) to accept an invitation, written to
    the outbox; the outbox row (a record)."""
    subject, body = _invitation(
        organization_name=organization_name,
        inviter=inviter,
        role=role,
        link=link,
        token=token,
        expires_at=expires_at,
    )
    return await notifications.enqueue_email(
        db,
        organization_id=organization_id,
        intervention_id=None,
        recipient=recipient,
        subject=subject,
        body=body,
        kind=INVITATION_KIND,
    )
