"""The import file's structure (SPEC §7): its sections, their entries, and what an invalid
file reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from interventions.wire import Id, Name


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, strict=True)

    id: Id = Field(gt=0)


class OwnedEntry(Entry):
    organization_id: Id


class OrganizationIn(Entry):
    name: Name


class UserIn(Entry):
    email: Name
    password: str = Field(min_length=8, max_length=1000)
    first_name: Name | None = None
    last_name: Name | None = None


class ProfileIn(OwnedEntry):
    user_id: Id
    organization_id: Id
    role: Literal["admin", "manager", "viewer"]


class SiteIn(OwnedEntry):
    organization_id: Id
    name: Name


class RuleIn(OwnedEntry):
    organization_id: Id
    name: Name
    type: Literal[1, 2]


class SiteRuleIn(Entry):
    site_id: Id
    rule_id: Id


class CompanyIn(OwnedEntry):
    organization_id: Id
    name: Name
    type: Literal[1, 2, 3]
    email: Name | None = None


class CompanyContactIn(Entry):
    company_id: Id
    name: Name
    email: Name | None = None


class AnomalyIn(OwnedEntry):
    organization_id: Id
    site_id: Id
    title: Name
    description: str | None = Field(default=None, max_length=2500)
    risk: int = Field(default=0, ge=0, le=3)
    status: Literal[0, 1, 2] = 0


class RoutineIn(OwnedEntry):
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
