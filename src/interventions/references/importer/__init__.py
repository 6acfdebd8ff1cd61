"""``interventions import FILE``: reference data with explicit ids (SPEC §7).

Idempotent (an entry equal to what is stored changes nothing; a changed one is updated) and
all-or-nothing (one transaction, every entry checked before anything is written). ``file``
is the file's structure, ``checks`` what is checked first, ``repository`` the statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from interventions.db import Database, Executor
from interventions.references.importer import repository as repo
from interventions.references.importer.checks import check
from interventions.references.importer.file import (
    Entry,
    ImportError_,
    ImportReport,
    ReferenceFile,
    parse,
)
from interventions.references.models import Company, Site
from interventions.register import journal
from interventions.register.journal import Subject, system_actor

__all__ = ["ImportError_", "ImportReport", "ReferenceFile", "import_reference_data", "parse"]


_hasher = PasswordHasher()


def _same_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# The sections whose rows the journal keeps, with their subject.
JOURNALED = {"anomalies": Subject.ANOMALY, "profiles": Subject.PROFILE}


class _Importer:
    def __init__(self, db: Executor, data: ReferenceFile) -> None:
        self.db = db
        self.data = data
        self.report = ImportReport()

    async def upsert(
        self,
        label: str,
        entries: Sequence[Entry],
        values: Callable[[Any], dict[str, Any]],
        same: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        """Write the section's entries: new ones inserted, changed ones updated (every column
        the file sets, the stored values for what it leaves), equal ones left alone."""
        section = repo.BY_SECTION[label]
        existing = await repo.stored(self.db, section, [e.id for e in entries])
        inserted: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        unchanged = 0
        for entry in entries:  # ids unique: check() refused duplicates
            wanted = values(entry)
            row = existing.get(entry.id)
            if row is None:
                inserted.append({"id": entry.id, **wanted})
                continue
            if "password_hash" in wanted and same is not None and same(row, entry):
                del wanted["password_hash"]
            changes = {key: value for key, value in wanted.items() if getattr(row, key) != value}
            if changes:
                current = {key: getattr(row, key) for key in section.written}
                updated.append({**current, **changes, "id": row.id})
            else:
                unchanged += 1
        await repo.write(self.db, section, inserted, updated)
        self._record(label, inserted, updated, existing)
        self.report.created[label] = len(inserted)
        self.report.updated[label] = len(updated)
        self.report.unchanged[label] = unchanged

    def _record(
        self,
        label: str,
        inserted: Sequence[dict[str, Any]],
        updated: Sequence[dict[str, Any]],
        existing: dict[int, Any],
    ) -> None:
        """The journal's entries for the rows it keeps (anomalies, memberships)."""
        subject = JOURNALED.get(label)
        if subject is None:
            return
        actor = system_actor("import")
        for values in inserted:
            changes = {k: v for k, v in values.items() if k not in ("id", "password_hash")}
            entry = journal.Entry("import", subject, values["id"], journal.payload(changes), actor)
            journal.record(self.db, values["organization_id"], entry)
        for values in updated:
            row = existing[values["id"]]
            changes = {
                k: (getattr(row, k), v)
                for k, v in values.items()
                if k != "id" and getattr(row, k) != v
            }
            entry = journal.Entry("import", subject, values["id"], journal.payload(changes), actor)
            journal.record(self.db, values["organization_id"], entry)

    async def run(self) -> ImportReport:
        await check(self.db, self.data)
        d = self.data
        await self.upsert("organizations", d.organizations, lambda e: {"name": e.name})
        await self.upsert(
            "users",
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
            d.profiles,
            lambda e: {"user_id": e.user_id, "organization_id": e.organization_id, "role": e.role},
        )
        await self.upsert(
            "sites", d.sites, lambda e: {"organization_id": e.organization_id, "name": e.name}
        )
        await self.upsert(
            "rules",
            d.rules,
            lambda e: {"organization_id": e.organization_id, "name": e.name, "type": e.type},
        )
        # A site rule and a contact are of their site's and company's organisation.
        site_org = await repo.owners(self.db, Site, (e.site_id for e in d.site_rules))
        await self.upsert(
            "siteRules",
            d.site_rules,
            lambda e: {
                "organization_id": site_org[e.site_id],
                "site_id": e.site_id,
                "rule_id": e.rule_id,
            },
        )
        await self.upsert(
            "companies",
            d.companies,
            lambda e: {
                "organization_id": e.organization_id,
                "name": e.name,
                "type": e.type,
                "email": e.email,
            },
        )
        company_org = await repo.owners(
            self.db, Company, (e.company_id for e in d.company_contacts)
        )
        await self.upsert(
            "companyContacts",
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
        await self._link_routines()
        await repo.advance_sequences(self.db)
        return self.report

    async def _link_routines(self) -> None:
        """Each routine's site rules become the file's; a routine whose set alone changed
        counts as updated."""
        routines = self.data.routines
        current = await repo.routine_site_rules(self.db, [r.id for r in routines])
        changed = {r.id: set(r.site_rule_ids) for r in routines}
        changed = {i: ids for i, ids in changed.items() if ids != current[i]}
        for _ in changed:
            if self.report.unchanged.get("routines"):
                self.report.unchanged["routines"] -= 1
                self.report.updated["routines"] = self.report.updated.get("routines", 0) + 1
        organization_of = {r.id: r.organization_id for r in routines}
        await repo.replace_routine_site_rules(self.db, organization_of, changed)


async def import_reference_data(db: Database | Executor, document: Any) -> ImportReport:
    """Check and write ``document``; raises ``ImportError_`` naming every bad entry, having
    written nothing. Given the ``Database``, in a transaction of its own; given an executor,
    in the caller's."""
    data = parse(document)
    if isinstance(db, Database):
        async with db.transaction() as executor:
            return await _Importer(executor, data).run()
    return await _Importer(db, data).run()
