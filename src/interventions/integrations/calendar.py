"""The iCalendar document of a feed (RFC 5545), written by ``icalendar``: one VEVENT per
intervention, identified by a UID that never changes, its SEQUENCE the intervention's version
(so that calendar apps take each change as a revision of the same event)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interventions.interventions.lifecycle import NAMES, STATUS_NAMES, Kind, Status

if TYPE_CHECKING:
    from icalendar import Event

# ``icalendar`` is imported where a feed is written, not with the application: a worker that
# serves no feed does not carry it (3 MiB; issue 10's resident size per worker).

PRODID = "-//Interventions service//Calendar feeds//EN"
# How often calendar apps are asked to read the feed again (RFC 7986 REFRESH-INTERVAL, and
# its older spelling that Outlook and Google read).
REFRESH = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Occurrence:
    """What an event shows of an intervention: its row (``repository.events``) and the
    names of what it links to (``repository.names``)."""

    row: Any
    sites: Sequence[str]
    rules: Sequence[str]
    anomalies: Sequence[str]


def uid(intervention_id: int, domain: str) -> str:
    """The event's UID: the intervention's, for as long as it exists (RFC 5545 §3.8.4.7)."""
    return f"intervention-{intervention_id}@{domain}"


def event_status(status: int) -> str:
    """Cancelled ones stay in the feed as cancelled events (calendar apps strike them
    through or drop them); one still to be scheduled is tentative; the others confirmed."""
    if status == Status.CANCELLED:
        return "CANCELLED"
    if status == Status.TO_SCHEDULE:
        return "TENTATIVE"
    return "CONFIRMED"


def summary(occurrence: Occurrence) -> str:
    """The kind and what the intervention is about: its rules, else its anomalies."""
    kind = NAMES[Kind][occurrence.row.type][1]
    about = ", ".join(occurrence.rules or occurrence.anomalies)
    head = kind[:1].upper() + kind[1:]
    return f"{head}: {about}" if about else head


def description(occurrence: Occurrence) -> str:
    """Status, sites, rules, anomalies and the intervention's own description. Never the
    PIN: a feed's URL is a long-lived credential kept by calendar services and easily shared,
    and the PIN is the provider's proof of presence on site (README "Calendar feeds")."""
    row = occurrence.row
    lines = [f"Status: {STATUS_NAMES[Status(row.status)]}"]
    for label, names in (
        ("Sites", occurrence.sites),
        ("Rules", occurrence.rules),
        ("Anomalies", occurrence.anomalies),
    ):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    if row.status == Status.CANCELLED and row.cancellation_reason:
        lines.append(f"Cancelled: {row.cancellation_reason}")
    if row.description:
        lines += ["", row.description]
    lines += ["", f"Intervention {row.id}"]
    return "\n".join(lines)


def event(occurrence: Occurrence, domain: str) -> Event:
    from icalendar import Event

    row = occurrence.row
    vevent = Event()
    vevent.add("uid", uid(row.id, domain))
    # No METHOD: a published calendar, where DTSTAMP is when the event was last revised.
    vevent.add("dtstamp", row.updated_at)
    vevent.add("created", row.created_at)
    vevent.add("last-modified", row.updated_at)
    vevent.add("sequence", row.version - 1)
    vevent.add("dtstart", row.scheduled_start)
    if row.scheduled_end is not None and row.scheduled_end > row.scheduled_start:
        vevent.add("dtend", row.scheduled_end)
    vevent.add("summary", summary(occurrence))
    vevent.add("description", description(occurrence))
    if occurrence.sites:
        vevent.add("location", ", ".join(occurrence.sites))
    vevent.add("status", event_status(row.status))
    # Planned work, not time the subscriber is busy with.
    vevent.add("transp", "TRANSPARENT")
    return vevent


def document(name: str, occurrences: Sequence[Occurrence], domain: str) -> bytes:
    """The whole feed: CRLF line endings, lines folded at 75 octets (``icalendar`` does both)."""
    from icalendar import Calendar, vDuration

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for occurrence in occurrences:
        calendar.add_component(event(occurrence, domain))
    ical: bytes = calendar.to_ical()
    return ical
