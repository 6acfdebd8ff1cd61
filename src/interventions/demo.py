"""``interventions demo``: a small organisation to try the API with, and how to log in."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from interventions.auth.dependencies import Caller
from interventions.auth.roles import Role
from interventions.db import Executor, utcnow
from interventions.demo_history import (
    COMPANIES,
    CONTACTS,
    ROUTINES,
    RULES,
    SITE_RULES,
    record_history,
)
from interventions.interventions import repository, service
from interventions.interventions.schemas import RoutineInterventionCreate, TrainingCreate
from interventions.references.importer import ImportReport, import_reference_data
from interventions.storage.service import Storage

DEMO_ORGANIZATION_ID = 1


class DemoUser(NamedTuple):
    user_id: int
    profile_id: int
    email: str
    password: str
    first_name: str
    last_name: str
    role: str


# Profile ids differ from user ids (101 is user 1's profile), so that a client sending one
# where the other is meant gets an error instead of the right answer by coincidence.
DEMO_USERS = [
    DemoUser(1, 101, "admin@demo.example", "demo-admin-pass", "Ada", "Martin", "admin"),
    DemoUser(2, 102, "manager@demo.example", "demo-manager-pass", "Marc", "Petit", "manager"),
    DemoUser(3, 103, "viewer@demo.example", "demo-viewer-pass", "Vera", "Leroy", "viewer"),
]


def demo_document() -> dict[str, Any]:
    sites = [(1, "Bâtiment A"), (2, "Bâtiment B"), (3, "Gymnase")]
    rules = [
        (1, "Vérification SSI", 1),
        (2, "Vérification des extincteurs", 1),
        (3, "Contrôle des ascenseurs", 1),
        (4, "Exercice d'évacuation", 2),
    ]
    site_rules = []
    next_id = 1
    for rule_id, _, _ in rules:  # every site carries every rule
        for site_id, _ in sites:
            site_rules.append({"id": next_id, "siteId": site_id, "ruleId": rule_id})
            next_id += 1
    rules += RULES
    site_rules += [{"id": i, "siteId": s, "ruleId": r} for i, s, r in SITE_RULES]
    return {
        "organizations": [{"id": DEMO_ORGANIZATION_ID, "name": "Lycée Jean Moulin (démo)"}],
        "users": [
            {
                "id": u.user_id,
                "email": u.email,
                "password": u.password,
                "firstName": u.first_name,
                "lastName": u.last_name,
            }
            for u in DEMO_USERS
        ],
        "profiles": [
            {
                "id": u.profile_id,
                "userId": u.user_id,
                "organizationId": DEMO_ORGANIZATION_ID,
                "role": u.role,
            }
            for u in DEMO_USERS
        ],
        "sites": [{"id": i, "organizationId": DEMO_ORGANIZATION_ID, "name": n} for i, n in sites],
        "rules": [
            {"id": i, "organizationId": DEMO_ORGANIZATION_ID, "name": n, "type": t}
            for i, n, t in rules
        ],
        "siteRules": site_rules,
        "companies": [
            {
                "id": 1,
                "organizationId": DEMO_ORGANIZATION_ID,
                "name": "Bureau Contrôle",
                "type": 1,
                "email": "contact@bc.example",
            },
            {
                "id": 2,
                "organizationId": DEMO_ORGANIZATION_ID,
                "name": "Formation Sécurité",
                "type": 3,
                "email": "contact@fs.example",
            },
            *(
                {"id": i, "organizationId": DEMO_ORGANIZATION_ID, "name": n, "type": t, "email": e}
                for i, n, t, e in COMPANIES
            ),
        ],
        "companyContacts": [
            {"id": 1, "companyId": 1, "name": "Paul Durand", "email": "paul@bc.example"},
            {"id": 2, "companyId": 2, "name": "Lina Moreau", "email": "lina@fs.example"},
            *({"id": i, "companyId": c, "name": n, "email": e} for i, c, n, e in CONTACTS),
        ],
        "anomalies": [
            {"id": i, "organizationId": DEMO_ORGANIZATION_ID, "siteId": s, "title": t, "risk": r}
            for i, s, t, r in [
                (1, 1, "Extincteur absent", 2),
                (2, 1, "Porte coupe-feu bloquée", 3),
                (3, 2, "Éclairage de secours défaillant", 1),
                (4, 3, "Issue de secours encombrée", 2),
            ]
        ],
        "routines": [
            {
                "id": 1,
                "organizationId": DEMO_ORGANIZATION_ID,
                "name": "SSI annuel",
                "siteRuleIds": [1, 2, 3],
                "rrule": "FREQ=YEARLY",
                "assignedCompanyContactId": 1,
            },
            *(
                {
                    "id": i,
                    "organizationId": DEMO_ORGANIZATION_ID,
                    "name": n,
                    "siteRuleIds": srs,
                    "rrule": rrule,
                    "assignedCompanyContactId": contact,
                }
                for i, n, srs, rrule, contact in ROUTINES
            ),
        ],
    }


async def load_demo(db: Executor, storage: Storage | None = None) -> tuple[ImportReport, list[int]]:
    """Import the demo organisation and, the first time, plan two interventions in it (ids
    1 and 2, which the README's walk-through changes) and record a year of history after
    them (``demo_history``; signatures stored in ``storage``)."""
    report = await import_reference_data(db, demo_document())
    created: list[int] = []
    if not await repository.any_in(db, DEMO_ORGANIZATION_ID):
        admin = Caller(
            user_id=DEMO_USERS[0].user_id,
            profile_id=DEMO_USERS[0].profile_id,
            organization_id=DEMO_ORGANIZATION_ID,
            role=Role.ADMIN,
            session_id="demo",
        )
        start = (utcnow() + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
        preventive = await service.create_from_routine(
            db,
            admin,
            RoutineInterventionCreate.model_validate(
                {
                    "scheduledStart": _iso(start),
                    "scheduledEnd": _iso(start + dt.timedelta(hours=3)),
                    "creationStatus": 1,
                    "routineId": 1,
                }
            ),
        )
        training = await service.create_training(
            db,
            admin,
            TrainingCreate.model_validate(
                {
                    "scheduledStart": _iso(start + dt.timedelta(days=3)),
                    "scheduledEnd": _iso(start + dt.timedelta(days=3, hours=2)),
                    "ruleId": 4,
                    "siteIds": [1, 2, 3],
                    "creationStatus": 1,
                    "description": "Exercice d'évacuation du trimestre",
                    "assignedCompanyContactId": 2,
                }
            ),
        )
        created = [preventive.id, training.id]
        await record_history(db, admin, storage, utcnow())
    return report, created


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
