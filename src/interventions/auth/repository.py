"""Statements of the auth domain run by the executor (``db.Sql``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from interventions.auth.models import User
from interventions.db import Executor, Sql

_USER = Sql(
    select(User.id, User.email, User.first_name, User.last_name).where(User.id == bindparam("id"))
)


async def user(db: Executor, user_id: int) -> Any:
    """The user's id, e-mail and names (a record), or ``None``."""
    return await db.first(_USER, id=user_id)
