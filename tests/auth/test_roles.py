"""Roles are an enum (``Role``): the values the database accepts, and who may write."""

from __future__ import annotations

import re

from sqlalchemy import CheckConstraint

from interventions.auth.dependencies import Caller
from interventions.auth.models import ROLES, Invitation, Profile
from interventions.auth.roles import WRITERS, Role


def _checked_roles(model: type[Profile] | type[Invitation]) -> set[str]:
    (check,) = [
        c
        for c in model.__table__.constraints
        if isinstance(c, CheckConstraint) and str(c.sqltext).startswith("role IN")
    ]
    return set(re.findall(r"'([a-z]+)'", str(check.sqltext)))


def test_the_enum_is_what_the_database_accepts() -> None:
    assert {r.value for r in Role} == {"admin", "manager", "viewer"}
    assert _checked_roles(Profile) == _checked_roles(Invitation) == set(Role)
    assert tuple(Role) == ROLES


def test_admins_and_managers_write_viewers_read() -> None:
    assert {Role.ADMIN, Role.MANAGER} == WRITERS

    def caller(role: str) -> Caller:
        return Caller(user_id=1, profile_id=1, organization_id=1, role=role, session_id="s")

    # The role read from the database is a plain string: it compares equal to the member.
    assert caller("admin").can_write
    assert caller("manager").can_write
    assert not caller("viewer").can_write
    assert caller(Role.MANAGER).can_write
    assert not caller("Admin").can_write
