"""Field types the reference bodies share (issue 3, part 8).

Updates take every field as optional. A field that cannot be empty refuses ``null`` in the
same 400 as every other invalid field (``NotNull``), and the OpenAPI document shows it as
not nullable; the fields that may be cleared (``description``, ``email``, assignees,
``rrule``) accept ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter, WithJsonSchema
from pydantic_core import PydanticCustomError

from interventions.wire import Id, Name


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("not_null", "Cannot be null")
    return value


NotNull = BeforeValidator(_refuse_null)


def shown_as(kind: Any) -> WithJsonSchema:
    """Document an optional update field that refuses ``null`` as ``kind`` alone."""
    return WithJsonSchema(TypeAdapter(kind).json_schema())


NameField = Annotated[Name | None, NotNull, shown_as(Name)]
IdField = Annotated[Id | None, NotNull, shown_as(Id)]
