"""Routine recurrence: RFC 5545 RRULEs (python-dateutil), validated and expanded in UTC."""

from __future__ import annotations

import datetime as dt

from dateutil.rrule import rrule, rrulestr

# Rules that would fire more than this often are refused: a routine plans regulatory checks,
# not a stream of events, and the planner must stay bounded.
MIN_INTERVAL = dt.timedelta(hours=1)
MAX_LENGTH = 500


class InvalidRecurrence(ValueError):
    """The text is not an RRULE this service accepts; the message says why."""


def parse_rrule(text: str, dtstart: dt.datetime) -> rrule:
    """Parse ``text`` (``FREQ=…;…``, with or without the ``RRULE:`` prefix) from ``dtstart``."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or len(body) > MAX_LENGTH:
        raise InvalidRecurrence("must be a non-empty RRULE of at most 500 characters")
    if any(part in body.upper() for part in ("DTSTART", "\n", "\r", "EXDATE", "RDATE")):
        raise InvalidRecurrence("must be a single RRULE line (DTSTART is given separately)")
    if "FREQ=" not in body.upper():
        raise InvalidRecurrence("must name a FREQ")
    try:
        rule = rrulestr(body, dtstart=dtstart.astimezone(dt.UTC), forceset=False)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise InvalidRecurrence(f"is not a valid RFC 5545 RRULE ({exc})") from exc
    if not isinstance(rule, rrule):
        raise InvalidRecurrence("must be a single RRULE")
    first_two = []
    try:
        for occurrence in rule:
            first_two.append(occurrence)
            if len(first_two) == 2:
                break
    except (ValueError, OverflowError) as exc:
        raise InvalidRecurrence(f"cannot be expanded ({exc})") from exc
    if not first_two:
        raise InvalidRecurrence("never occurs")
    if len(first_two) == 2 and first_two[1] - first_two[0] < MIN_INTERVAL:
        raise InvalidRecurrence("must not repeat more often than hourly")
    return rule


def validate(text: str, dtstart: dt.datetime | None = None) -> str:
    """The normalised RRULE text, or ``InvalidRecurrence``."""
    parse_rrule(text, dtstart or dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    body = text.strip()
    return body[6:] if body.upper().startswith("RRULE:") else body


def occurrences(
    text: str, dtstart: dt.datetime, after: dt.datetime, until: dt.datetime, limit: int = 1000
) -> list[dt.datetime]:
    """Occurrence starts in ``[after, until]``, in UTC, at most ``limit`` of them."""
    rule = parse_rrule(text, dtstart)
    out: list[dt.datetime] = []
    for occurrence in rule.xafter(after.astimezone(dt.UTC), count=limit, inc=True):
        if occurrence > until:
            break
        out.append(occurrence.astimezone(dt.UTC))
    return out
