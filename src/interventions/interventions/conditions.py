"""Conditional requests on one intervention (RFC 9110 §13): its ``ETag``, ``If-Match`` on
the writes, ``If-None-Match`` on the read.

An intervention's entity tag is strong and made of its id and its version (1 at creation,
one more at every write, ``repository.write``): ``"<id>.<version>"``. Both headers are
optional: a client that sends neither is served as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from interventions.errors import PreconditionFailed
from interventions.interventions.schemas import InterventionRead
from interventions.wire import Envelope

# An entity tag (RFC 9110 §8.8.3), wherever it is in the header's value.
_TAG = re.compile(r'(W/)?("[\x21\x23-\x7E\x80-\xFF]*")')


def etag(intervention_id: int, version: int) -> str:
    return f'"{intervention_id}.{version}"'


def etag_of(intervention: Any) -> str:
    """The entity tag of a row or of its wire form (both have ``id`` and ``version``)."""
    return etag(intervention.id, intervention.version)


@dataclass(frozen=True)
class EntityTags:
    """The value of ``If-Match`` or ``If-None-Match``: ``*``, or a list of entity tags."""

    any: bool
    strong: frozenset[str]
    weak: frozenset[str]

    def strongly_matches(self, current: str) -> bool:
        """``If-Match``'s comparison: a weak tag never matches."""
        return self.any or current in self.strong

    def weakly_matches(self, current: str) -> bool:
        """``If-None-Match``'s comparison: the opaque tags alone."""
        return self.any or current in self.strong or current in self.weak


def parse(value: str | None) -> EntityTags | None:
    """The header's entity tags, ``None`` when it is absent. Read leniently: ``*``, else the
    entity tags found in it; a value with none matches nothing (If-Match: 412, If-None-Match:
    the full answer), as a tag of another version would."""
    if value is None:
        return None
    if value.strip(" \t") == "*":
        return EntityTags(any=True, strong=frozenset(), weak=frozenset())
    strong: set[str] = set()
    weak: set[str] = set()
    for weak_mark, tag in _TAG.findall(value):
        (weak if weak_mark else strong).add(tag)
    return EntityTags(any=False, strong=frozenset(strong), weak=frozenset(weak))


@dataclass(frozen=True)
class Unchanged:
    """What a read answers when ``If-None-Match`` names the current version: 304."""

    etag: str


def unchanged(row: Any, if_none_match: EntityTags | None) -> Unchanged | None:
    """``Unchanged`` when ``If-None-Match`` (when given) names the row's current version."""
    if if_none_match is not None:
        current = etag_of(row)
        if if_none_match.weakly_matches(current):
            return Unchanged(current)
    return None


class StaleVersion(PreconditionFailed):
    """``If-Match`` names another version than the intervention's current one."""

    def __init__(self, current: str) -> None:
        super().__init__(
            "The intervention has changed since this version was read (its ETag is now "
            f"{current}); read it again before writing.",
            errors=[{"field": "If-Match", "message": f"The current ETag is {current}."}],
            headers={"ETag": current},
        )


def require(row: Any, if_match: EntityTags | None) -> None:
    """412 unless ``If-Match`` (when given) names the row's current version."""
    if if_match is not None:
        current = etag_of(row)
        if not if_match.strongly_matches(current):
            raise StaleVersion(current)


# What the OpenAPI document says about them.
ETAG_HEADER = {
    "ETag": {
        "description": 'The intervention\'s version, `"<id>.<version>"`: send it back in '
        "`If-Match` to write only over this version, in `If-None-Match` to read only if it "
        "changed.",
        "schema": {"type": "string"},
    }
}


def with_etag(status: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a success that carries an intervention's ``ETag``."""
    return {status: {"headers": ETAG_HEADER}}


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: `If-None-Match` names the current version. No body.",
        "headers": ETAG_HEADER,
    }
}
IF_MATCH_DESCRIPTION = (
    "Write only if the intervention is still at this version: its `ETag`, a list of "
    'entity tags (`"12.3", "12.4"`), or `*`. Another version, or a value naming none, is a '
    "412 and changes nothing; a weak tag (`W/`) never matches. Optional."
)
IF_NONE_MATCH_DESCRIPTION = (
    "Answer 304 with no body if the intervention is still at this version: its `ETag`, a "
    "list of entity tags, or `*`. Optional."
)


# The request headers as the OpenAPI document declares them (``openapi_extra`` of the
# routes). Endpoints read them from the request: no FastAPI parameter to solve per request.
def _header(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "string"}
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }


IF_MATCH = {"parameters": [_header("If-Match", IF_MATCH_DESCRIPTION)]}
IF_NONE_MATCH = {"parameters": [_header("If-None-Match", IF_NONE_MATCH_DESCRIPTION)]}


def if_match(request: Request) -> EntityTags | None:
    return parse(request.headers.get("if-match"))


def if_none_match(request: Request) -> EntityTags | None:
    return parse(request.headers.get("if-none-match"))


def tagged(response: Response, read: InterventionRead) -> Envelope[InterventionRead]:
    """The intervention in its envelope, its version in ``ETag``."""
    response.headers["ETag"] = etag_of(read)
    return Envelope(data=read)
