"""Wire types shared by every endpoint: ids, date-times, texts, envelopes (SPEC §2)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

MAX_SAFE_INTEGER = 9007199254740991

# The seed pages' pattern: a real calendar date (leap years included), UTC with a trailing Z;
# decided (SPEC §2): an explicit offset (``+00:00``, ``+02:00``) too, normalised to UTC, since
# clients generated from ``format: date-time`` send one. No zone at all stays refused.
DATETIME_PATTERN = (
    r"^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29"
    r"|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d))$"
)
_FRACTION = re.compile(r"\.(\d+)(Z|[+-]\d\d:\d\d)$")


def parse_datetime(value: str) -> dt.datetime:
    """Turn a string that matched ``DATETIME_PATTERN`` into an aware UTC datetime.

    Fractions beyond microseconds are truncated; year 0000 (which the pattern admits but no
    calendar has) is refused, and so is an offset that moves the time out of years 1–9999.
    """
    match = _FRACTION.search(value)
    text = value
    if match:
        fraction = match.group(1)[:6].ljust(6, "0")
        text = value[: match.start()] + "." + fraction + match.group(2)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError("not a valid date-time") from exc


def format_datetime(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ``, always UTC."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DATETIME_RE = re.compile(DATETIME_PATTERN)


def _datetime_in(value: object) -> dt.datetime:
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        raise PydanticCustomError(
            "datetime_format",
            "Must be an ISO 8601 date-time on a real calendar date with a trailing Z or an "
            "explicit offset, e.g. 2024-12-01T12:34:56.000Z or 2024-12-01T13:34:56+01:00",
        )
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_format", "Not a real date-time") from exc


# The document states the pattern exactly, as two spellings: with seconds, an RFC 3339
# ``date-time`` (generated clients send their datetimes so); without, minute precision, which
# the seeds' pattern admits and RFC 3339 does not. Year 0000 is excluded, as parsing does.
_OPTIONAL_SECONDS = r"(?::[0-5]\d(?:\.\d+)?)?"
assert DATETIME_PATTERN.startswith("^")
assert _OPTIONAL_SECONDS in DATETIME_PATTERN
_NO_YEAR_ZERO = "^(?!0000)" + DATETIME_PATTERN[1:]
DATETIME_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "format": "date-time",
            "pattern": _NO_YEAR_ZERO.replace(_OPTIONAL_SECONDS, r":[0-5]\d(?:\.\d+)?"),
        },
        {
            "type": "string",
            "pattern": _NO_YEAR_ZERO.replace(_OPTIONAL_SECONDS, ""),
            "description": "Minute precision (no seconds), as the seed pattern admits.",
        },
    ],
    "examples": ["2024-12-01T12:34:56.000Z"],
}

DateTimeIn = Annotated[dt.datetime, PlainValidator(_datetime_in), WithJsonSchema(DATETIME_SCHEMA)]
DateTimeOut = Annotated[
    dt.datetime,
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
            "examples": ["2024-12-01T12:34:56.000Z"],
        },
        mode="serialization",
    ),
]


def _storable(value: str) -> str:
    """Refuse what no database can store faithfully: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "Must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError("string_unicode", "Must be valid Unicode text") from exc
    return value


# What ``_storable`` refuses, as the document can say it: no NUL (lone surrogates are no
# Unicode text, so JSON Schema strings cannot hold them in the first place).
NO_NUL_PATTERN = r"^[^\x00]*$"


class _StorableText(AfterValidator):
    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


Storable = _StorableText(_storable)
Id = Annotated[int, Field(strict=True, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
# Ids in a query string arrive as text: parsed, then range-checked like body ids.
QueryId = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
Text = Annotated[str, Field(strict=True, max_length=2500), Storable]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=250), Storable]
# Opaque strings a client sends back to us (tokens, notification ids).
Opaque = Annotated[str, Field(strict=True, min_length=1), Storable]
# email-validator (pydantic's EmailStr) refuses the special-use domains; the pattern says so.
_SPECIAL_USE_DOMAINS = "|".join(
    "".join(f"[{c}{c.upper()}]" for c in name)
    for name in ("arpa", "invalid", "local", "localhost", "onion", "test")
)
EMAIL_PATTERN = rf"^[^@]+@(?!(?:[^@]*\.)?(?:{_SPECIAL_USE_DOMAINS})$)[^@]+$"
Email = Annotated[EmailStr, Field(max_length=250, json_schema_extra={"pattern": EMAIL_PATTERN})]
# At most this many ids in one array: bounded work per request and per SQL statement.
MAX_IDS = 1000
Flag = StrictBool


def _exact_integer(value: object) -> object:
    """Enum members are integers: refuse ``true``, ``1.0`` and ``"1"`` before matching."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


StrictChoice = BeforeValidator(_exact_integer)


def _unique(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


IdList = Annotated[list[Id], Field(min_length=1, max_length=MAX_IDS), AfterValidator(_unique)]


class WireModel(BaseModel):
    """Request bodies: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        str_strip_whitespace=False,
    )


class ReadModel(BaseModel):
    """Response bodies: camelCase on the wire, an allow-list of members."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        from_attributes=True,
    )


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    data: T


class Pagination(BaseModel):
    page: int
    page_size: int = Field(serialization_alias="pageSize")

    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    total_count: int = Field(serialization_alias="totalCount")
    pagination: Pagination

    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)
