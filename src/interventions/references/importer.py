"""``interventions import FILE``: reference data with explicit ids (SPEC §7).

Idempotent (an entry equal to what is stored changes nothing; a changed one is updated) and
all-or-nothing (one transaction, every entry checked before anything is written).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.models import Profile, User
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
from interventions.wire import Id, Name


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, strict=True)

    id: Id = Field(gt=0)


class _OwnedEntry(_Entry):
    organization_id: Id


class OrganizationIn(_Entry):
    name: Name


class UserIn(_Entry):
    email: Name
    password: str = Field(min_length=8, max_length=1000)
    first_name: Name | None = None
    last_name: Name | None = None


class ProfileIn(_OwnedEntry):
    user_id: Id
    organization_id: Id
    role: Literal["admin", "manager", "viewer"]


class SiteIn(_OwnedEntry):
    organization_id: Id
    name: Name


class RuleIn(_OwnedEntry):
    organization_id: Id
    name: Name
    type: Literal[1, 2]


class SiteRuleIn(_Entry):
    site_id: Id
    rule_id: Id


class CompanyIn(_OwnedEntry):
    organization_id: Id
    name: Name
    type: Literal[1, 2, 3]
    email: Name | None = None


class CompanyContactIn(_Entry):
    company_id: Id
    name: Name
    email: Name | None = None


class AnomalyIn(_OwnedEntry):
    organization_id: Id
    site_id: Id
    title: Name
    description: str | None = Field(default=None, max_length=2500)
    risk: int = Field(default=0, ge=0, le=3)
    status: Literal[0, 1, 2] = 0


class RoutineIn(_OwnedEntry):
    organization_id: Id
    name: Name
    site_rule_ids: list[Id] = Field(default_factory=list)
    rrule: str | None = Field(default=None, max_length=500)
    assigned_profile_id: Id | None = None
    assigned_company_contact_id: Id | None = None
    auto_create_enabled: bool = False


class ReferenceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, strict=True)

    organizations: list[OrganizationIn] = Field(default_factory=list)
    users: list[UserIn] = Field(default_factory=list)
    profiles: list[ProfileIn] = Field(default_factory=list)
    sites: list[SiteIn] = Field(default_factory=list)
    rules: list[RuleIn] = Field(default_factory=list)
    site_rules: list[SiteRuleIn] = Field(default_factory=list)
    companies: list[CompanyIn] = Field(default_factory=list)
    company_contacts: list[CompanyContactIn] = Field(default_factory=list)
    anomalies: list[AnomalyIn] = Field(default_factory=list)
    routines: list[RoutineIn] = Field(default_factory=list)


class ImportError_(Exception):
    """An invalid file: every problem found, each naming its entry and field, e.g.
    ``siteRules[2].siteId: site 9 does not exist``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)


def parse(document: Any) -> ReferenceFile:
    """The file's structure; every entry that does not fit is reported, not only the first."""
    if not isinstance(document, dict):
        raise ImportError_(["the file must hold one JSON object"])
    try:
        return ReferenceFile.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _loc(error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise ImportError_(problems) from exc


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


# The file's sections in file order (the order problems are reported in).
SECTIONS = [ReferenceFile.model_fields[name].alias or name for name in ReferenceFile.model_fields]


_hasher = PasswordHasher()


def _same_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class _Importer:
    def __init__(self, session: AsyncSession, data: ReferenceFile) -> None:
        self.session = session
        self.data = data
        self.report = ImportReport()

    async def _owners(
        self, model: Any, ids: set[int], column: str = "organization_id"
    ) -> dict[int, int]:
        """id → owning id (organisation, company…) for rows already in the database."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(model.id, getattr(model, column)).where(model.id.in_(ids))
        )
        return {i: o for i, o in rows.all()}

    async def _ids(self, model: Any, ids: set[int]) -> set[int]:
        if not ids:
            return set()
        return set(
            (await self.session.execute(select(model.id).where(model.id.in_(ids)))).scalars()
        )

    async def check(self) -> None:
        """Every reference must exist (in the file or the database), in the right organisation,
        and no id or unique pair may appear twice. Every problem is collected before raising."""
        d = self.data
        problems: list[tuple[int, int, str]] = []

        def need(ok: bool, section: str, n: int, attr: str, message: str) -> bool:
            if not ok:
                problems.append((SECTIONS.index(section), n, f"{section}[{n}].{attr}: {message}"))
            return ok

        sections: tuple[tuple[str, Sequence[_Entry]], ...] = (
            ("organizations", d.organizations),
            ("users", d.users),
            ("profiles", d.profiles),
            ("sites", d.sites),
            ("rules", d.rules),
            ("siteRules", d.site_rules),
            ("companies", d.companies),
            ("companyContacts", d.company_contacts),
            ("anomalies", d.anomalies),
            ("routines", d.routines),
        )
        for name, entries in sections:
            first: dict[int, int] = {}
            for n, e in enumerate(entries):
                if need(
                    e.id not in first,
                    name,
                    n,
                    "id",
                    f"id {e.id} appears twice (first at {name}[{first.get(e.id)}])",
                ):
                    first[e.id] = n

        orgs = {o.id for o in d.organizations} | await self._ids(
            Organization,
            {
                e.organization_id
                for e in [*d.profiles, *d.sites, *d.rules, *d.companies, *d.anomalies, *d.routines]
            },
        )
        users = {u.id for u in d.users} | await self._ids(User, {p.user_id for p in d.profiles})
        site_org = {s.id: s.organization_id for s in d.sites}
        site_org |= await self._owners(
            Site,
            ({e.site_id for e in d.site_rules} | {a.site_id for a in d.anomalies})
            - site_org.keys(),
        )
        rule_org = {r.id: r.organization_id for r in d.rules}
        rule_org |= await self._owners(Rule, {e.rule_id for e in d.site_rules} - rule_org.keys())
        company_org = {c.id: c.organization_id for c in d.companies}
        company_org |= await self._owners(
            Company, {c.company_id for c in d.company_contacts} - company_org.keys()
        )
        sr_org = {sr.id: site_org.get(sr.site_id) for sr in d.site_rules}
        wanted_sr = {i for r in d.routines for i in r.site_rule_ids} - sr_org.keys()
        sr_org |= await self._owners(SiteRule, wanted_sr)
        profile_org = {p.id: p.organization_id for p in d.profiles}
        profile_org |= await self._owners(
            Profile,
            {r.assigned_profile_id for r in d.routines if r.assigned_profile_id}
            - profile_org.keys(),
        )
        contact_company = {c.id: c.company_id for c in d.company_contacts}
        contact_company |= await self._owners(
            CompanyContact,
            {r.assigned_company_contact_id for r in d.routines if r.assigned_company_contact_id}
            - contact_company.keys(),
            "company_id",
        )
        company_org |= await self._owners(
            Company, set(contact_company.values()) - company_org.keys()
        )

        def clash(a: int | None, b: int | None) -> bool:
            """Two known organisations that differ (an unknown one is reported on its own)."""
            return a in orgs and b in orgs and a != b

        owned: tuple[tuple[str, Sequence[_OwnedEntry]], ...] = (
            ("profiles", d.profiles),
            ("sites", d.sites),
            ("rules", d.rules),
            ("companies", d.companies),
            ("anomalies", d.anomalies),
            ("routines", d.routines),
        )
        for name, entries in owned:
            for n, e in enumerate(entries):
                need(
                    e.organization_id in orgs,
                    name,
                    n,
                    "organizationId",
                    f"organization {e.organization_id} does not exist",
                )
        for n, p in enumerate(d.profiles):
            need(p.user_id in users, "profiles", n, "userId", f"user {p.user_id} does not exist")
        for n, sr in enumerate(d.site_rules):
            site_ok = need(
                sr.site_id in site_org,
                "siteRules",
                n,
                "siteId",
                f"site {sr.site_id} does not exist",
            )
            rule_ok = need(
                sr.rule_id in rule_org,
                "siteRules",
                n,
                "ruleId",
                f"rule {sr.rule_id} does not exist",
            )
            if site_ok and rule_ok:
                need(
                    not clash(site_org[sr.site_id], rule_org[sr.rule_id]),
                    "siteRules",
                    n,
                    "ruleId",
                    f"site {sr.site_id} and rule {sr.rule_id} belong to different organisations",
                )
        for n, c in enumerate(d.company_contacts):
            need(
                c.company_id in company_org,
                "companyContacts",
                n,
                "companyId",
                f"company {c.company_id} does not exist",
            )
        for n, a in enumerate(d.anomalies):
            if need(
                a.site_id in site_org, "anomalies", n, "siteId", f"site {a.site_id} does not exist"
            ):
                need(
                    not clash(site_org[a.site_id], a.organization_id),
                    "anomalies",
                    n,
                    "siteId",
                    f"site {a.site_id} is in another organisation",
                )
        for n, r in enumerate(d.routines):
            for k, sr_id in enumerate(r.site_rule_ids):
                attr = f"siteRuleIds[{k}]"
                if need(sr_id in sr_org, "routines", n, attr, f"site rule {sr_id} does not exist"):
                    need(
                        not clash(sr_org[sr_id], r.organization_id),
                        "routines",
                        n,
                        attr,
                        f"site rule {sr_id} is in another organisation",
                    )
            if r.assigned_profile_id is not None:
                owner = profile_org.get(r.assigned_profile_id)
                need(
                    owner is not None and not clash(owner, r.organization_id),
                    "routines",
                    n,
                    "assignedProfileId",
                    f"profile {r.assigned_profile_id} is not in organization {r.organization_id}",
                )
            if r.assigned_company_contact_id is not None:
                company = contact_company.get(r.assigned_company_contact_id)
                need(
                    company in company_org and not clash(company_org[company], r.organization_id),
                    "routines",
                    n,
                    "assignedCompanyContactId",
                    f"company contact {r.assigned_company_contact_id} is not in "
                    f"organization {r.organization_id}",
                )
        await self._check_unique_pairs(need)
        emails: dict[str, tuple[int, int]] = {}  # e-mail → (index in the file, user id)
        for n, u in enumerate(d.users):
            key = u.email.strip().lower()
            if need(
                key not in emails,
                "users",
                n,
                "email",
                f"e-mail {u.email} appears twice (first at users[{emails.get(key, (0,))[0]}])",
            ):
                emails[key] = (n, u.id)
        if emails:
            taken = await self.session.execute(
                select(User.id, User.email).where(User.email.in_(emails))
            )
            for uid, email in taken.all():
                n, wanted = emails[email]
                need(wanted == uid, "users", n, "email", f"e-mail {email} belongs to user {uid}")
        if problems:
            problems.sort(key=lambda p: (p[0], p[1]))
            raise ImportError_([text for _, _, text in problems])

    async def _check_unique_pairs(self, need: Callable[[bool, str, int, str, str], bool]) -> None:
        """One profile per (user, organisation), one site rule per (site, rule): in the file,
        and against rows of the database that the file does not rewrite."""
        d = self.data
        checks: tuple[tuple[str, Sequence[Any], Any, str, str, str, str], ...] = (
            (
                "profiles",
                d.profiles,
                Profile,
                "user_id",
                "organization_id",
                "userId",
                "user {} already has a profile in organization {} ({})",
            ),
            (
                "siteRules",
                d.site_rules,
                SiteRule,
                "site_id",
                "rule_id",
                "ruleId",
                "site {} already carries rule {} ({})",
            ),
        )
        for section, entries, model, left, right, attr, message in checks:
            if not entries:
                continue
            in_file = {e.id for e in entries}
            stored: dict[tuple[int, int], int] = {}
            rows = await self.session.execute(
                select(model.id, getattr(model, left), getattr(model, right)).where(
                    getattr(model, left).in_({getattr(e, left) for e in entries})
                )
            )
            for row_id, a, b in rows.all():
                if row_id not in in_file:
                    stored[(a, b)] = row_id
            first: dict[tuple[int, int], int] = {}
            for n, e in enumerate(entries):
                pair = (getattr(e, left), getattr(e, right))
                if pair in first:
                    need(
                        False, section, n, attr, message.format(*pair, f"{section}[{first[pair]}]")
                    )
                elif pair in stored:
                    noun = "profile" if section == "profiles" else "site rule"
                    need(False, section, n, attr, message.format(*pair, f"{noun} {stored[pair]}"))
                else:
                    first[pair] = n

    async def upsert(
        self,
        label: str,
        model: Any,
        entries: Sequence[_Entry],
        values: Callable[[Any], dict[str, Any]],
        same: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        ids = [e.id for e in entries]  # unique: check() refused duplicates
        existing = {}
        if ids:
            existing = {
                r.id: r
                for r in (
                    await self.session.execute(select(model).where(model.id.in_(ids)))
                ).scalars()
            }
        created = updated = unchanged = 0
        for entry in entries:
            wanted = values(entry)
            row = existing.get(entry.id)
            if row is None:
                self.session.add(model(id=entry.id, **wanted))
                created += 1
                continue
            changed = False
            for key, value in wanted.items():
                if key == "password_hash" and same is not None and same(row, entry):
                    continue
                if getattr(row, key) != value:
                    setattr(row, key, value)
                    changed = True
            updated += changed
            unchanged += not changed
        self.report.created[label] = created
        self.report.updated[label] = updated
        self.report.unchanged[label] = unchanged
        await self.session.flush()

    async def run(self) -> ImportReport:
        await self.check()
        d = self.data
        await self.upsert(
            "organizations", Organization, d.organizations, lambda e: {"name": e.name}
        )
        await self.upsert(
            "users",
            User,
            d.users,
            lambda e: {
                "email": e.email.strip().lower(),
                "password_hash": _hasher.hash(e.password),
                "first_name": e.first_name,
                "last_name": e.last_name,
            },
            same=lambda row, e: _same_password(row.password_hash, e.password),
        )
        await self.upsert(
            "profiles",
            Profile,
            d.profiles,
            lambda e: {"user_id": e.user_id, "organization_id": e.organization_id, "role": e.role},
        )
        await self.upsert(
            "sites", Site, d.sites, lambda e: {"organization_id": e.organization_id, "name": e.name}
        )
        await self.upsert(
            "rules",
            Rule,
            d.rules,
            lambda e: {"organization_id": e.organization_id, "name": e.name, "type": e.type},
        )
        site_org = (
            dict((await self.session.execute(select(Site.id, Site.organization_id))).all())
            if d.site_rules
            else {}
        )
        await self.upsert(
            "siteRules",
            SiteRule,
            d.site_rules,
            lambda e: {
                "organization_id": site_org[e.site_id],
                "site_id": e.site_id,
                "rule_id": e.rule_id,
            },
        )
        await self.upsert(
            "companies",
            Company,
            d.companies,
            lambda e: {
                "organization_id": e.organization_id,
                "name": e.name,
                "type": e.type,
                "email": e.email,
            },
        )
        company_org = (
            dict((await self.session.execute(select(Company.id, Company.organization_id))).all())
            if d.company_contacts
            else {}
        )
        await self.upsert(
            "companyContacts",
            CompanyContact,
            d.company_contacts,
            lambda e: {
                "organization_id": company_org[e.company_id],
                "company_id": e.company_id,
                "name": e.name,
                "email": e.email,
            },
        )
        await self.upsert(
            "anomalies",
            Anomaly,
            d.anomalies,
            lambda e: {
                "organization_id": e.organization_id,
                "site_id": e.site_id,
                "title": e.title,
                "description": e.description,
                "risk": e.risk,
                # The service moves anomalies (in repair, resolved): a file that does not
                # name a status must not undo that on re-import.
                **({"status": e.status} if "status" in e.model_fields_set else {}),
            },
        )
        await self.upsert(
            "routines",
            Routine,
            d.routines,
            lambda e: {
                "organization_id": e.organization_id,
                "name": e.name,
                "rrule": e.rrule,
                "assigned_profile_id": e.assigned_profile_id,
                "assigned_company_contact_id": e.assigned_company_contact_id,
                "auto_create_enabled": e.auto_create_enabled,
            },
        )
        for r in d.routines:
            current = set(
                (
                    await self.session.execute(
                        select(RoutineSiteRule.site_rule_id).where(
                            RoutineSiteRule.routine_id == r.id
                        )
                    )
                ).scalars()
            )
            wanted = set(r.site_rule_ids)
            if current != wanted:
                await self.session.execute(
                    delete(RoutineSiteRule).where(RoutineSiteRule.routine_id == r.id)
                )
                for sr_id in sorted(wanted):
                    self.session.add(
                        RoutineSiteRule(
                            routine_id=r.id, site_rule_id=sr_id, organization_id=r.organization_id
                        )
                    )
                if self.report.unchanged.get("routines"):
                    self.report.unchanged["routines"] -= 1
                    self.report.updated["routines"] = self.report.updated.get("routines", 0) + 1
        await self.session.flush()
        await self._advance_sequences()
        return self.report

    async def _advance_sequences(self) -> None:
        """Explicit ids bypass PostgreSQL sequences: move them past the largest id."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for table in (
            "organizations",
            "users",
            "profiles",
            "sites",
            "rules",
            "site_rules",
            "companies",
            "company_contacts",
            "anomalies",
            "routines",
        ):
            await self.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                    f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
                )
            )


async def import_reference_data(session: AsyncSession, document: Any) -> ImportReport:
    """Check and write ``document``; raises ``ImportError_`` naming every bad entry, having
    written nothing."""
    data = parse(document)
    return await _Importer(session, data).run()
