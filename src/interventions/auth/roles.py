"""What a member of an organisation may do (SPEC §3), as the ``role`` of their profile."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Stored as its value in ``profiles.role`` and ``invitations.role``."""

    ADMIN = "admin"  # everything, profiles included
    MANAGER = "manager"  # every write but profiles
    VIEWER = "viewer"  # reads only


# Who creates, updates, executes and verifies interventions.
WRITERS = frozenset({Role.ADMIN, Role.MANAGER})
