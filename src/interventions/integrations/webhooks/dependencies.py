"""Who manages webhooks: the organisation's admins (a receiver gets everything it hears)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from interventions.auth.dependencies import Caller, CurrentCaller
from interventions.auth.roles import Role
from interventions.errors import Forbidden


async def current_webhook_admin(caller: CurrentCaller) -> Caller:
    if caller.role != Role.ADMIN:
        raise Forbidden(f"The role '{caller.role}' may not manage webhooks: admins only.")
    return caller


WebhookAdmin = Annotated[Caller, Depends(current_webhook_admin)]
