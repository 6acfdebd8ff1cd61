"""What the register and the commission pack say, as a stream of blocks that both renderers
(PDF through typst, HTML) consume in order: rows are read from the database batch by batch
and turned into blocks as they come, so no whole register is ever held in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from interventions.db import Executor
from interventions.references.recurrence import InvalidRecurrence, parse_rrule
from interventions.register.printing import repository
from interventions.register.printing.coverage import Coverage
from interventions.register.printing.signatures import Signature, SignatureReader

CHECK, TRAINING = 1, 2  # rule types
RISKS = {0: "0 (low)", 1: "1 (moderate)", 2: "2 (high)", 3: "3 (critical)"}
OUTCOMES = {4: "Executed, awaiting verification", 5: "Accepted", 6: "Rejected"}
OPEN_STATES = {0: "open", 1: "in repair"}
# The commission pack is one page per site: its lists stop there ("… and N more").
PACK_ROWS = 8


@dataclass(frozen=True)
class Cover:
    """The document's title block, repeated facts of every page's footer."""

    title: str
    organization: str
    site: str
    site_archived: bool
    period: tuple[dt.date, dt.date] | None
    as_of: dt.datetime
    coverage: Coverage
    verification_url: str | None


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Column:
    title: str
    width: str  # a typst track size ("auto", "1fr", "2.8cm"); HTML gets a proportion of it


@dataclass(frozen=True)
class TableStart:
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Lines:
    """A cell of several lines; the first one in bold when ``strong``."""

    lines: tuple[str, ...]
    strong: bool = False


Cell = str | Lines | Signature


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class TableEnd:
    pass


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Cover | Heading | Note | TableStart | Row | TableEnd | PageBreak


NOT_COVERED = "not yet covered by a checkpoint"


def period_text(cover: Cover) -> str:
    if cover.period is None:
        return f"as of {cover.as_of:%d/%m/%Y %H:%M} UTC"
    start, end = cover.period
    return f"from {start:%d/%m/%Y} to {end:%d/%m/%Y}"


def checkpoint_text(cover: Cover) -> str:
    c = cover.coverage
    if c.checkpoint_id is None:
        return NOT_COVERED
    signed = (
        f", signed {c.checkpoint_signed_at:%d/%m/%Y %H:%M} UTC" if c.checkpoint_signed_at else ""
    )
    # Entries after the checkpoint's (written since it was signed) are not covered by it.
    upto = (
        f" (up to entry {c.checkpoint_seq})"
        if c.checkpoint_seq is not None and c.checkpoint_seq != c.seq
        else ""
    )
    return f"checkpoint {c.checkpoint_id}{upto}{signed}"


def day(value: dt.datetime | None) -> str:
    return value.strftime("%d/%m/%Y") if value else "—"


def moment(value: dt.datetime | None) -> str:
    return value.strftime("%d/%m/%Y %H:%M") if value else "—"


def _text(*parts: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in parts if p and p.strip())


CHECK_COLUMNS = (
    Column("Date (UTC)", "2.3cm"),
    Column("Provider", "1fr"),
    Column("Outcome", "1.2fr"),
    Column("Observations raised", "1.2fr"),
    Column("Signature", "2.9cm"),
)


def _lines_or_dash(lines: tuple[str, ...]) -> Lines | str:
    return Lines(lines) if lines else "—"


def _provider(row: Any) -> Lines:
    return Lines(
        _text(row.company_name or "(no company)", row.provider_name, row.provider_email),
        strong=True,
    )


def _outcome(row: Any) -> Lines:
    verdict = OUTCOMES.get(row.status, str(row.status))
    if row.status in (5, 6) and row.verified_at:
        verdict = f"{verdict} on {day(row.verified_at)}"
    return Lines(
        _text(
            verdict,
            row.provider_action_comment and f"Action: {row.provider_action_comment}",
            row.provider_general_comment and f"Comment: {row.provider_general_comment}",
            row.decision_comment and f"Decision: {row.decision_comment}",
        ),
        strong=True,
    )


def _observation(anomaly: Any) -> str:
    state = (
        f"lifted {day(anomaly.resolved_at)}"
        if anomaly.status == 2
        else OPEN_STATES.get(anomaly.status, "")
    )
    return f"{anomaly.title} (risk {anomaly.risk}, {state})"


def _observations(anomalies: Sequence[Any]) -> Lines | str:
    return Lines(tuple(_observation(a) for a in anomalies)) if anomalies else "none"


def _check_date(row: Any) -> Lines:
    kind = "unplanned" if row.check_type == 2 else "planned"
    return Lines((moment(row.actual_start), kind), strong=True)


@dataclass
class Source:
    """What one document is printed from."""

    db: Executor
    signatures: SignatureReader
    organization_id: int
    site: Any
    start: dt.datetime  # first instant of the period
    end: dt.datetime  # first instant after it
    as_of: dt.datetime  # the instant "overdue" and "age" are measured at


async def register(source: Source, cover: Cover) -> AsyncIterator[Block]:
    """The register of one site over a period, in the order of CCH R*143-44."""
    db, org = source.db, source.organization_id
    site_id = source.site.id
    yield cover
    rules = await repository.rules(db, org, site_id)

    yield Heading("1. Checks, by rule")
    check_rules = [r for r in rules if r.type == CHECK]
    if not check_rules:
        yield Note("No check rule applies to this site.")
    for rule in check_rules:
        archived = " (no longer applied)" if rule.archived_at else ""
        yield Heading(f"{rule.name}{archived}", 2)
        started = False
        async for batch in repository.checks(db, org, rule.site_rule_id, source.start, source.end):
            if not started:
                yield TableStart(CHECK_COLUMNS)
                started = True
            raised = await repository.raised_by(db, org, [row.id for row in batch])
            signatures = await source.signatures.read(batch)
            for row in batch:
                yield Row(
                    (
                        _check_date(row),
                        _provider(row),
                        _outcome(row),
                        _observations(raised.get(row.id, ())),
                        signatures[row.id],
                    )
                )
        if started:
            yield TableEnd()
        else:
            yield Note("No check recorded in the period.")

    yield Heading("2. Curative works")
    started = False
    async for batch in repository.works(db, org, site_id, source.start, source.end):
        if not started:
            yield TableStart(
                (
                    Column("Dates (UTC)", "2.6cm"),
                    Column("Nature", "1.3fr"),
                    Column("Contractor", "1fr"),
                    Column("Anomalies lifted", "1.3fr"),
                    Column("Signature", "2.9cm"),
                )
            )
            started = True
        lifted = await repository.lifted_by(db, org, [row.id for row in batch])
        signatures = await source.signatures.read(batch)
        for row in batch:
            yield Row(
                (
                    Lines((moment(row.actual_start), f"to {moment(row.actual_end)}")),
                    Lines(_text(row.description or "(no description)", _outcome(row).lines[0])),
                    _provider(row),
                    _observations(lifted.get(row.id, ())),
                    signatures[row.id],
                )
            )
    if started:
        yield TableEnd()
    else:
        yield Note("No curative work recorded in the period.")

    yield Heading("3. Drills")
    async for block in _drills(source, source.start, source.end, limit=None):
        yield block

    yield Heading("4. Observations still open")
    async for block in _open_observations(source, limit=None):
        yield block

    yield Heading("5. Checks overdue against their routine")
    async for block in _overdue(source, limit=None):
        yield block


async def _drills(
    source: Source, start: dt.datetime, end: dt.datetime, *, limit: int | None
) -> AsyncIterator[Block]:
    shown = 0
    more = 0
    async for batch in repository.drills(
        source.db, source.organization_id, source.site.id, start, end
    ):
        for row in batch:
            if limit is not None and shown >= limit:
                more += 1
                continue
            if shown == 0:
                yield TableStart(
                    (
                        Column("Date (UTC)", "2.3cm"),
                        Column("Drill", "1.3fr"),
                        Column("Attendees", "1.8cm"),
                        Column("Comments", "1.5fr"),
                    )
                )
            shown += 1
            yield Row(
                (
                    Lines((moment(row.held_at), OUTCOMES.get(row.status, ""))),
                    Lines(_text(row.description or "Drill", row.company_name, row.provider_name)),
                    "—" if row.attendee_count is None else str(row.attendee_count),
                    _lines_or_dash(_text(row.provider_general_comment, row.decision_comment)),
                )
            )
    if shown:
        yield TableEnd()
        if more:
            yield Note(f"… and {more} more.")
    else:
        yield Note("No drill recorded in the period.")


async def _open_observations(source: Source, *, limit: int | None) -> AsyncIterator[Block]:
    # Open observations are few by nature (each is a defect being dealt with); the pack
    # shows the first ones, the register all (bounded by a large limit).
    wanted = 100_000 if limit is None else limit + 1
    rows = await repository.open_observations(
        source.db, source.organization_id, source.site.id, wanted
    )
    if not rows:
        yield Note("No open observation.")
        return
    yield TableStart(
        (
            Column("Observation", "2fr"),
            Column("Risk", "2.2cm"),
            Column("State", "2cm"),
            Column("Raised on", "2.2cm"),
            Column("Age (days)", "1.8cm"),
        )
    )
    for row in rows[:limit] if limit is not None else rows:
        age = max(0, (source.as_of - row.created_at).days)
        yield Row(
            (
                row.title,
                RISKS.get(row.risk, str(row.risk)),
                OPEN_STATES.get(row.status, ""),
                day(row.created_at),
                str(age),
            )
        )
    yield TableEnd()
    if limit is not None and len(rows) > limit:
        yield Note("… and more: see the register.")


def _period(rrule_text: str | None, dtstart: dt.datetime) -> dt.timedelta | None:
    """The gap between a routine's first two occurrences (its routine period)."""
    if not rrule_text:
        return None
    try:
        rule = parse_rrule(rrule_text, dtstart)
    except InvalidRecurrence:
        return None
    first_two: list[dt.datetime] = []
    for occurrence in rule:
        first_two.append(occurrence)
        if len(first_two) == 2:
            return first_two[1] - first_two[0]
    return None


async def overdue_rows(source: Source) -> AsyncIterator[Row]:
    """Two kinds, per routine and site rule of the site: each planned occurrence whose
    scheduled end passed (at ``as_of``) without execution; and the routine itself when its
    last executed check on the site rule is older than its period (or there is none and a
    period passed since the routine started)."""
    db, org = source.db, source.organization_id
    for routine in await repository.routines(db, org, source.site.id):
        for missed in await repository.missed(
            db, org, routine.id, routine.site_rule_id, source.as_of
        ):
            late = (source.as_of - missed.scheduled_end).days
            yield Row(
                (
                    routine.rule_name,
                    routine.name,
                    Lines((f"planned {moment(missed.scheduled_start)}", "not executed")),
                    str(late),
                )
            )
        started = routine.dtstart or routine.created_at
        period = _period(routine.rrule, started)
        if period is None:
            continue
        last = await repository.last_check(db, org, routine.site_rule_id, source.as_of)
        due = (last.actual_start if last else started) + period
        if due < source.as_of:
            what = f"last check {day(last.actual_start)}" if last else "never checked"
            yield Row(
                (
                    routine.rule_name,
                    routine.name,
                    Lines((what, f"due {day(due)}")),
                    str((source.as_of - due).days),
                )
            )


OVERDUE_COLUMNS = (
    Column("Rule", "1.3fr"),
    Column("Routine", "1fr"),
    Column("What is missing", "1.3fr"),
    Column("Days late", "1.8cm"),
)


async def _overdue(source: Source, *, limit: int | None) -> AsyncIterator[Block]:
    shown = more = 0
    async for row in overdue_rows(source):
        if limit is not None and shown >= limit:
            more += 1
            continue
        if shown == 0:
            yield TableStart(OVERDUE_COLUMNS)
        shown += 1
        yield row
    if shown:
        yield TableEnd()
        if more:
            yield Note(f"… and {more} more.")
    else:
        yield Note("No check overdue.")


async def commission_pack(source: Source, cover: Cover) -> AsyncIterator[Block]:
    """One page for the commission de sécurité's visit: overdue checks, open observations by
    risk, the last check per rule, the drills of the last twelve months."""
    db, org = source.db, source.organization_id
    yield cover
    yield Heading("Checks overdue")
    async for block in _overdue(source, limit=PACK_ROWS):
        yield block
    yield Heading("Open observations, by risk")
    async for block in _open_observations(source, limit=PACK_ROWS):
        yield block
    yield Heading("Last check per rule")
    rules = [r for r in await repository.rules(db, org, source.site.id) if r.type == CHECK]
    if rules:
        yield TableStart(
            (
                Column("Rule", "1.4fr"),
                Column("Last check (UTC)", "2.6cm"),
                Column("Provider", "1.2fr"),
                Column("Outcome", "1.2fr"),
            )
        )
        for rule in rules:
            last = await repository.last_check(db, org, rule.site_rule_id, source.as_of)
            yield Row(
                (
                    rule.name,
                    moment(last.actual_start) if last else "never",
                    _provider(last) if last else "—",
                    Lines((OUTCOMES.get(last.status, ""),)) if last else "—",
                )
            )
        yield TableEnd()
    else:
        yield Note("No check rule applies to this site.")
    yield Heading("Drills in the last twelve months")
    year_ago = source.as_of - dt.timedelta(days=365)
    async for block in _drills(source, year_ago, source.as_of, limit=PACK_ROWS):
        yield block
