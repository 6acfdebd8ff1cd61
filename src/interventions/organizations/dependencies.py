"""Who may change the organisation's membership: its admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from interventions.auth.dependencies import Caller, CurrentCaller
from interventions.auth.roles import Role
from interventions.errors import Forbidden


async def current_admin(caller: CurrentCaller) -> Caller:
    """Profiles are the organisation's membership: only its admins change them."""
    if caller.role != Role.ADMIN:
        raise Forbidden(f"The role '{caller.role}' may not change profiles.")
    return caller


CurrentAdmin = Annotated[Caller, Depends(current_admin)]
