"""Test data: a whole organisation per test, written straight to the database."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, text

from interventions.auth import tokens
from interventions.auth.models import AuthSession, Profile, User
from interventions.auth.passwords import hash_password
from interventions.db import Database, utcnow
from interventions.references.models import (
    Anomaly,
    Company,
    CompanyContact,
    Organization,
    Routine,
    RoutineSiteRule,
    Rule,
    Site,
    SiteRule,
)

PASSWORD = "correct horse battery staple"
# Profiles get ids above this, far from their users' ids, so that a test confusing the two
# fails (see Factory._profile).
PROFILE_ID_OFFSET = 1_000_000_000
_PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class Member:
    user_id: int
    profile_id: int
    email: str
    role: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Org:
    """One organisation: three sites, three check rules and a training rule, every site rule,
    two companies with a contact each, four open anomalies, a routine, and three members."""

    id: int
    admin: Member
    manager: Member
    viewer: Member
    site_ids: list[int]
    rule_ids: list[int]  # type 1
    training_rule_id: int
    site_rule: dict[tuple[int, int], int]  # (site, rule) -> site rule id
    company_ids: list[int]
    contact_ids: list[int]
    anomaly_ids: list[int]
    routine_id: int

    @property
    def site_rule_ids(self) -> list[int]:
        return sorted(self.site_rule.values())


class Factory:
    def __init__(self, db: Database, secret: str) -> None:
        self.db = db
        self.secret = secret

    async def _insert(self, session: Any, model: Any, **values: Any) -> int:
        row = model(**values)
        session.add(row)
        await session.flush()
        return int(row.id)

    async def org(self) -> Org:
        tag = uuid.uuid4().hex[:10]
        async with self.db.writer() as s, s.begin():
            org_id = await self._insert(s, Organization, name=f"Org {tag}")
            members = {}
            for role in ("admin", "manager", "viewer"):
                email = f"{role}-{tag}@example.org"
                uid = await self._insert(
                    s,
                    User,
                    email=email,
                    password_hash=_PASSWORD_HASH,
                    first_name=role.title(),
                    last_name=tag,
                )
                pid = await self._profile(s, uid, org_id, role)
                members[role] = Member(user_id=uid, profile_id=pid, email=email, role=role)
            sites = [
                await self._insert(s, Site, organization_id=org_id, name=f"Site {n}")
                for n in range(3)
            ]
            rules = [
                await self._insert(s, Rule, organization_id=org_id, name=f"Rule {n}", type=1)
                for n in range(3)
            ]
            training = await self._insert(
                s, Rule, organization_id=org_id, name="Evacuation drill", type=2
            )
            site_rule = {}
            for site in sites:
                for rule in [*rules, training]:
                    site_rule[(site, rule)] = await self._insert(
                        s, SiteRule, organization_id=org_id, site_id=site, rule_id=rule
                    )
            companies = [
                await self._insert(
                    s,
                    Company,
                    organization_id=org_id,
                    name=f"Company {n}",
                    type=n + 1,
                    email=f"c{n}-{tag}@example.org",
                )
                for n in range(2)
            ]
            contacts = [
                await self._insert(
                    s,
                    CompanyContact,
                    organization_id=org_id,
                    company_id=c,
                    name=f"Contact {n}",
                    email=f"contact{n}-{tag}@example.org",
                )
                for n, c in enumerate(companies)
            ]
            anomalies = [
                await self._insert(
                    s,
                    Anomaly,
                    organization_id=org_id,
                    site_id=sites[n % 3],
                    title=f"Anomaly {n}",
                    risk=n % 4,
                    status=0,
                )
                for n in range(4)
            ]
            routine = await self._insert(
                s, Routine, organization_id=org_id, name="Routine", rrule="FREQ=YEARLY"
            )
            await s.execute(
                insert(RoutineSiteRule),
                [
                    {
                        "routine_id": routine,
                        "site_rule_id": site_rule[(sites[0], r)],
                        "organization_id": org_id,
                    }
                    for r in rules
                ],
            )
            for member in members.values():
                member.headers = await self._login(s, member, org_id)
        return Org(
            id=org_id,
            admin=members["admin"],
            manager=members["manager"],
            viewer=members["viewer"],
            site_ids=sites,
            rule_ids=rules,
            training_rule_id=training,
            site_rule=site_rule,
            company_ids=companies,
            contact_ids=contacts,
            anomaly_ids=anomalies,
            routine_id=routine,
        )

    async def member(self, org_id: int, role: str = "viewer") -> Member:
        """One more member of the organisation (as an accepted invitation leaves one), with a
        live session."""
        tag = uuid.uuid4().hex[:10]
        email = f"{role}-{tag}@example.org"
        async with self.db.writer() as s, s.begin():
            uid = await self._insert(
                s,
                User,
                email=email,
                password_hash=_PASSWORD_HASH,
                first_name=role.title(),
                last_name=tag,
            )
            pid = await self._profile(s, uid, org_id, role)
            member = Member(user_id=uid, profile_id=pid, email=email, role=role)
            member.headers = await self._login(s, member, org_id)
        return member

    async def join(self, member: Member, org_id: int, role: str = "admin") -> Member:
        """``member``'s user in another organisation too, with a live session there."""
        async with self.db.writer() as s, s.begin():
            pid = await self._profile(s, member.user_id, org_id, role)
            there = Member(user_id=member.user_id, profile_id=pid, email=member.email, role=role)
            there.headers = await self._login(s, there, org_id)
        return there

    async def _profile(self, s: Any, user_id: int, org_id: int, role: str) -> int:
        """A profile whose id is the next above the largest so far and above
        ``PROFILE_ID_OFFSET``. The profiles the service creates then come after it: SQLite
        numbers them after the largest id, and PostgreSQL's sequence is moved past it."""
        largest = (await s.execute(select(func.max(Profile.id)))).scalar() or 0
        pid = await self._insert(
            s,
            Profile,
            id=max(largest, PROFILE_ID_OFFSET, user_id) + 1,
            user_id=user_id,
            organization_id=org_id,
            role=role,
        )
        if s.bind.dialect.name == "postgresql":
            await s.execute(
                text("SELECT setval(pg_get_serial_sequence('profiles', 'id'), :id)"), {"id": pid}
            )
        return pid

    async def _login(self, s: Any, member: Member, org_id: int) -> dict[str, str]:
        """A live session for ``member``, as login opens it (minus the password hash cost)."""
        now = utcnow()
        expires = now + dt.timedelta(hours=24)
        sid = secrets.token_urlsafe(24)
        s.add(
            AuthSession(
                id=sid,
                user_id=member.user_id,
                profile_id=member.profile_id,
                organization_id=org_id,
                created_at=now,
                expires_at=expires,
            )
        )
        issued = tokens.issue_all(
            self.secret,
            user_id=member.user_id,
            session_id=sid,
            now=now,
            access_ttl=3600,
            session_expires=expires,
        )
        return {
            "Authorization": f"Bearer {issued.access_token}",
            "x-session-token": issued.session_token,
        }
