"""Routines that plan by themselves: each upcoming occurrence planned exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from interventions.interventions import planner
from interventions.interventions.models import Intervention, InterventionSiteRule
from interventions.references.models import Routine
from interventions.references.recurrence import InvalidRecurrence, occurrences, validate
from tests.factories import Org

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


async def _enable(factory: Any, org: Org, **values: Any) -> None:
    values = {
        "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "dtstart": dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
        "duration_minutes": 90,
        "horizon_days": 28,
        "auto_create_enabled": True,
        "assigned_company_contact_id": org.contact_ids[0],
        **values,
    }
    async with factory.db.writer() as s, s.begin():
        await s.execute(update(Routine).where(Routine.id == org.routine_id).values(**values))


async def _planned(factory: Any, org: Org) -> list[Intervention]:
    async with factory.db.reader() as s:
        rows = await s.execute(
            select(Intervention)
            .where(
                Intervention.organization_id == org.id, Intervention.routine_id == org.routine_id
            )
            .order_by(Intervention.scheduled_start)
        )
        return list(rows.scalars())


async def test_plans_the_horizon_once(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    await _enable(factory, org)
    await planner.plan_once(factory.db, NOW)
    first = await _planned(factory, org)
    # Mondays from 2026-03-02 to 2026-03-29: four of them.
    assert [i.scheduled_start.date().isoformat() for i in first] == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
    ]
    i = first[0]
    assert i.auto_created is True
    assert (i.type, i.status, i.creation_status, i.check_type) == (1, 2, 1, 1)
    assert i.scheduled_end - i.scheduled_start == dt.timedelta(minutes=90)
    assert i.assigned_company_contact_id == org.contact_ids[0]
    assert i.company_id == org.company_ids[0]
    assert 100000 <= i.code_pin <= 999999
    # A second round, and a later one, add only what the horizon newly reaches.
    assert await planner.plan_once(factory.db, NOW) >= 0
    assert len(await _planned(factory, org)) == 4
    await planner.plan_once(factory.db, NOW + dt.timedelta(days=7))
    assert len(await _planned(factory, org)) == 5
    # Each has the routine's site rules, and is readable through the API.
    async with factory.db.reader() as s:
        links = (
            await s.execute(
                select(func.count()).where(InterventionSiteRule.intervention_id == i.id)
            )
        ).scalar_one()
    assert links == 3
    r = await client.get(f"/interventions/v2/rs/{i.id}", headers=org.admin.headers)
    assert r.status_code == 200
    assert r.json()["data"]["autoCreated"] is True
    assert r.json()["data"]["routineId"] == org.routine_id
    assert [h["action"] for h in r.json()["data"]["history"]] == ["auto-create"]


async def test_concurrent_workers_plan_each_occurrence_once(factory: Any) -> None:
    org: Org = await factory.org()
    await _enable(factory, org, rrule="FREQ=DAILY", horizon_days=10)
    await asyncio.gather(*(planner.plan_once(factory.db, NOW) for _ in range(4)))
    planned = await _planned(factory, org)
    starts = [i.occurrence_start for i in planned]
    assert len(starts) == len(set(starts)) == 10


async def test_a_failure_in_the_middle_plans_nothing_then_everything(
    factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    org: Org = await factory.org()
    await _enable(factory, org)
    real = planner.repo.record_history

    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed")

    # The last write of a routine's planning fails: its interventions and links are written.
    monkeypatch.setattr(planner.repo, "record_history", boom)
    await planner.plan_once(factory.db, NOW)  # logs the failure, does not raise
    assert await _planned(factory, org) == []  # the routine's transaction rolled back
    monkeypatch.setattr(planner.repo, "record_history", real)
    await planner.plan_once(factory.db, NOW)
    assert len(await _planned(factory, org)) == 4


async def test_disabled_archived_or_cancelled_occurrences(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    await _enable(factory, org, auto_create_enabled=False)
    await planner.plan_once(factory.db, NOW)
    assert await _planned(factory, org) == []
    await _enable(factory, org)
    await planner.plan_once(factory.db, NOW)
    first = (await _planned(factory, org))[0]
    # A cancelled occurrence is not planned again.
    r = await client.request(
        "DELETE", f"/interventions/v2/rs/{first.id}", headers=org.admin.headers
    )
    assert r.status_code == 204
    await planner.plan_once(factory.db, NOW)
    assert len(await _planned(factory, org)) == 4
    await _enable(factory, org, archived_at=NOW)
    await planner.plan_once(factory.db, NOW + dt.timedelta(days=30))
    assert len(await _planned(factory, org)) == 4


async def test_plan_forever_stops(factory: Any) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(planner.plan_forever(factory.db, 3600, stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, timeout=5)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "FOO=BAR",
        "FREQ=SECONDLY",
        "FREQ=MINUTELY",
        "FREQ=YEARLY;BYMONTH=13",
        "FREQ=DAILY;COUNT=0",
        "FREQ=YEARLY\nDTSTART:20200101T000000Z",
        "FREQ=WEEKLY;BYDAY=XX",
        "RRULE:FREQ=WEEKLY;INTERVAL=-1",
    ],
)
def test_invalid_rrules(text: str) -> None:
    with pytest.raises(InvalidRecurrence):
        validate(text)


def test_rrule_expansion() -> None:
    assert validate("RRULE:FREQ=MONTHLY;BYMONTHDAY=1") == "FREQ=MONTHLY;BYMONTHDAY=1"
    start = dt.datetime(2026, 1, 31, 8, tzinfo=dt.UTC)
    got = occurrences("FREQ=MONTHLY;BYMONTHDAY=-1", start, start, start + dt.timedelta(days=70))
    assert [d.date().isoformat() for d in got] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert all(d.tzinfo is not None for d in got)
