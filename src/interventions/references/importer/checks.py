"""What an import checks before it writes anything: every reference exists (in the file or
the database) in the right organisation, and no id, unique pair or e-mail appears twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interventions.auth.models import Profile, User
from interventions.db import Executor
from interventions.references.importer import repository as repo
from interventions.references.importer.file import (
    SECTIONS,
    Entry,
    ImportError_,
    OwnedEntry,
    ReferenceFile,
)
from interventions.references.models import (
    Company,
    CompanyContact,
    Organization,
    Rule,
    Site,
    SiteRule,
)


async def check(db: Executor, d: ReferenceFile) -> None:
    """Every reference must exist (in the file or the database), in the right organisation,
    and no id or unique pair may appear twice. Every problem is collected before raising."""
    problems: list[tuple[int, int, str]] = []

    def need(ok: bool, section: str, n: int, attr: str, message: str) -> bool:
        if not ok:
            problems.append((SECTIONS.index(section), n, f"{section}[{n}].{attr}: {message}"))
        return ok

    sections: tuple[tuple[str, Sequence[Entry]], ...] = (
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

    orgs = {o.id for o in d.organizations} | await repo.known_ids(
        db,
        Organization,
        {
            e.organization_id
            for e in [*d.profiles, *d.sites, *d.rules, *d.companies, *d.anomalies, *d.routines]
        },
    )
    users = {u.id for u in d.users} | await repo.known_ids(
        db, User, {p.user_id for p in d.profiles}
    )
    site_org = {s.id: s.organization_id for s in d.sites}
    site_org |= await repo.owners(
        db,
        Site,
        ({e.site_id for e in d.site_rules} | {a.site_id for a in d.anomalies}) - site_org.keys(),
    )
    rule_org = {r.id: r.organization_id for r in d.rules}
    rule_org |= await repo.owners(db, Rule, {e.rule_id for e in d.site_rules} - rule_org.keys())
    company_org = {c.id: c.organization_id for c in d.companies}
    company_org |= await repo.owners(
        db, Company, {c.company_id for c in d.company_contacts} - company_org.keys()
    )
    sr_org = {sr.id: site_org.get(sr.site_id) for sr in d.site_rules}
    wanted_sr = {i for r in d.routines for i in r.site_rule_ids} - sr_org.keys()
    sr_org |= await repo.owners(db, SiteRule, wanted_sr)
    profile_org = {p.id: p.organization_id for p in d.profiles}
    profile_org |= await repo.owners(
        db,
        Profile,
        {r.assigned_profile_id for r in d.routines if r.assigned_profile_id} - profile_org.keys(),
    )
    contact_company = {c.id: c.company_id for c in d.company_contacts}
    contact_company |= await repo.owners(
        db,
        CompanyContact,
        {r.assigned_company_contact_id for r in d.routines if r.assigned_company_contact_id}
        - contact_company.keys(),
        "company_id",
    )
    company_org |= await repo.owners(
        db, Company, set(contact_company.values()) - company_org.keys()
    )

    def clash(a: int | None, b: int | None) -> bool:
        """Two known organisations that differ (an unknown one is reported on its own)."""
        return a in orgs and b in orgs and a != b

    owned: tuple[tuple[str, Sequence[OwnedEntry]], ...] = (
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
    await _check_unique_pairs(db, d, need)
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
    for email, (n, wanted) in emails.items():
        # One look-up per e-mail: a file names few users (and ids are what lists bind).
        uid = await repo.user_of_email(db, email)
        if uid is not None:
            need(wanted == uid, "users", n, "email", f"e-mail {email} belongs to user {uid}")
    if problems:
        problems.sort(key=lambda p: (p[0], p[1]))
        raise ImportError_([text for _, _, text in problems])


async def _check_unique_pairs(
    db: Executor, d: ReferenceFile, need: Callable[[bool, str, int, str, str], bool]
) -> None:
    """One profile per (user, organisation), one site rule per (site, rule): in the file,
    and against rows of the database that the file does not rewrite."""
    checks: tuple[tuple[str, Sequence[Any], str, str], ...] = (
        (
            "profiles",
            d.profiles,
            "userId",
            "user {} already has a profile in organization {} ({})",
        ),
        ("siteRules", d.site_rules, "ruleId", "site {} already carries rule {} ({})"),
    )
    for section, entries, attr, message in checks:
        if not entries:
            continue
        left, right, _ = repo.PAIRS[section]
        in_file = {e.id for e in entries}
        stored: dict[tuple[int, int], int] = {}
        rows = await repo.stored_pairs(db, section, (getattr(e, left) for e in entries))
        for row_id, a, b in rows:
            if row_id not in in_file:
                stored[(a, b)] = row_id
        first: dict[tuple[int, int], int] = {}
        for n, e in enumerate(entries):
            pair = (getattr(e, left), getattr(e, right))
            if pair in first:
                need(False, section, n, attr, message.format(*pair, f"{section}[{first[pair]}]"))
            elif pair in stored:
                noun = "profile" if section == "profiles" else "site rule"
                need(False, section, n, attr, message.format(*pair, f"{noun} {stored[pair]}"))
            else:
                first[pair] = n
