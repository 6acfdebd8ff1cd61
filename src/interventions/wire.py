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
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

MAX_SAFE_INTEGER = 9007199254740991

# The seed pages' pattern: a real calendar date (leap years included), UTC with a trailing Z.
DATETIME_PATTERN = (
    r"^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29"
    r"|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:Z))$"
)
_FRACTION = re.compile(r"\.(\d+)Z$")


def parse_datetime(value: str) -> dt.datetime:
    """Turn a string that matched ``DATETIME_PATTERN`` into an aware UTC datetime.

    Fractions beyond microseconds are truncated; year 0000 (which the pattern admits but no
    calendar has) is refused.
    """
    match = _FRACTION.search(value)
    text = value
    if match:
        text = value[: match.start()] + "." + match.group(1)[:6].ljust(6, "0") + "Z"
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("not a valid date-time") from exc
    return parsed.astimezone(dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ``, always UTC."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DATETIME_RE = re.compile(DATETIME_PATTERN)


def _datetime_in(value: object) -> dt.datetime:
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        raise PydanticCustomError(
            "datetime_format",
            "Must be a UTC date-time in ISO 8601 with a trailing Z on a real calendar date, "
            "e.g. 2024-12-01T12:34:56.000Z",
        )
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_format", "Not a real date-time") from exc


DateTimeIn = Annotated[
    dt.datetime,
    PlainValidator(_datetime_in),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATETIME_PATTERN,
            "examples": ["2024-12-01T12:34:56.000Z"],
        }
    ),
]
DateTimeOut = Annotated[
    dt.datetime,
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
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


Storable = AfterValidator(_storable)
Id = Annotated[int, Field(strict=True, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
# Ids in a query string arrive as text: parsed, then range-checked like body ids.
QueryId = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
Text = Annotated[str, Field(strict=True, max_length=2500), Storable]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=250), Storable]
# Opaque strings a client sends back to us (tokens, notification ids).
Opaque = Annotated[str, Field(strict=True, min_length=1), Storable]
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
