"""What only the organisation's admins may do: change its membership and its settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from interventions.auth.dependencies import Caller, CurrentCaller
from interventions.auth.roles import Role
from interventions.errors import Forbidden


async def current_admin(caller: CurrentCaller) -> Caller:
    """Only the organisation's admins change its membership (profiles, invitations) and its
    settings."""
    if caller.role != Role.ADMIN:
        raise Forbidden(f"Only admins may do this; the role '{caller.role}' may not.")
    return caller


CurrentAdmin = Annotated[Caller, Depends(current_admin)]
