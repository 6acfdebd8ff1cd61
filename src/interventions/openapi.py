"""What the OpenAPI document says about errors: every endpoint lists its problem responses."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON, wrong types, missing or unknown fields, out-of-range values.",
    401: "Missing, malformed, expired or revoked tokens, or tokens that do not belong together.",
    403: "The caller's role may not perform this action.",
    404: "The resource does not exist, is deleted, or belongs to another organisation.",
    409: "The current state does not allow the action, or a concurrent change won.",
    412: "If-Match names another version than the current one (see ETag): nothing changed.",
    413: "The body is larger than the configured limit.",
    415: "The body is not declared as application/json.",
    422: "Well-formed but meaningless: inconsistent dates, unknown referenced ids.",
    429: "Too many attempts; see Retry-After.",
    503: "The database cannot be reached or has no connection to spare; see Retry-After.",
}


class FieldError(BaseModel):
    field: str = Field(description="JSON path of the offending field, e.g. `provider.email`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


def errors_for(*statuses: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of an endpoint: its problem statuses, plus 401 when authenticated,
    plus 503 (every endpoint needs the database)."""
    wanted = {*statuses, 503}
    if auth:
        wanted.add(401)
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for status in sorted(wanted)
    }


def default_operation_id(route: APIRoute) -> str:
    """The ``operationId`` of a route that names none: its endpoint's name in camelCase
    (``list_invitations`` → ``listInvitations``). Routes name theirs explicitly; this keeps a
    new one from getting FastAPI's default (``list_invitations_invitations_v1_rs_get``)."""
    first, *rest = route.name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def document_limits(schema: dict[str, Any], *, signature_max_bytes: int) -> None:
    """Limits that are settings, not constants, as this process enforces them."""
    components = schema.get("components", {}).get("schemas", {})
    size = components.get("SignatureMeta", {}).get("properties", {}).get("size")
    if size is not None:
        size["maximum"] = signature_max_bytes
        size["description"] = (
            f"In bytes: 1 to {signature_max_bytes} "
            "(INTERVENTIONS_SIGNATURE_MAX_BYTES, 10 MiB by default)."
        )


def finish_document(schema: dict[str, Any]) -> dict[str, Any]:
    """Validation errors are 400 problems here, never FastAPI's default 422 shape."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(
        Problem.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {})
    )
    components["Problem"].pop("$defs", None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            default = responses.get("422", {}).get("content", {}).get("application/json", {})
            if "HTTPValidationError" in str(default.get("schema", {})):
                del responses["422"]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema
