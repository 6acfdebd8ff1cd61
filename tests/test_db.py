"""The executor (db.Sql, db.Executor): statements compiled once per dialect and run by the
driver inside the request's transaction, with SQLAlchemy's own type conversions, on both
databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from interventions.db import Database, Executor, Sql, any_of, table_of
from interventions.interventions.models import Intervention
from interventions.references.models import Site
from interventions.register.models import JournalEntry
from tests.factories import Factory

INTERVENTIONS = table_of(Intervention)
HISTORY = table_of(JournalEntry)
SITES = table_of(Site)

SITES_AMONG = Sql(
    select(SITES.c.id, SITES.c.name, literal("site").label("kind"))
    .where(SITES.c.organization_id == bindparam("organization_id"), any_of(SITES.c.id, "ids"))
    .order_by(SITES.c.id)
)
INSERT_HISTORY = Sql(
    insert(HISTORY).values(
        organization_id=bindparam("organization_id"),
        seq=bindparam("seq"),
        subject_type="intervention",
        subject_id=bindparam("intervention_id"),
        actor=bindparam("actor"),
        action=bindparam("action"),
        changes=bindparam("changes"),
        recorded_at=bindparam("created_at"),
        prev_hash="0" * 64,
        hash="1" * 64,
    )
)
HISTORY_OF = Sql(
    select(HISTORY.c.seq, HISTORY.c.action, HISTORY.c.changes, HISTORY.c.recorded_at)
    .where(
        HISTORY.c.subject_type == "intervention",
        HISTORY.c.subject_id == bindparam("intervention_id"),
    )
    .order_by(HISTORY.c.seq)
)
INTERVENTION = Sql(
    select(
        INTERVENTIONS.c.id,
        INTERVENTIONS.c.auto_created,
        INTERVENTIONS.c.scheduled_start,
        INTERVENTIONS.c.deleted_at,
    ).where(INTERVENTIONS.c.id == bindparam("id"))
)
RENAME_SITE = Sql(
    update(SITES).where(SITES.c.id == bindparam("site_id")).values(name=bindparam("new_name"))
)
COUNT_SITES = Sql(
    select(func.count()).select_from(SITES).where(SITES.c.organization_id == bindparam("org"))
)
DUPLICATE_SITE = Sql(
    insert(SITES).values(id=bindparam("id"), organization_id=bindparam("org"), name="again")
)


async def _intervention(database: Database, org_id: int) -> int:
    async with database.writer() as s, s.begin():
        row = Intervention(
            organization_id=org_id,
            type=3,
            status=2,
            creation_status=1,
            code_pin=123456,
            auto_created=True,
            check_type=1,
            scheduled_start=dt.datetime(2025, 1, 10, 8, 0, 0, 123000, tzinfo=dt.UTC),
            scheduled_end=dt.datetime(2025, 1, 10, 9, tzinfo=dt.UTC),
        )
        s.add(row)
        await s.flush()
        return int(row.id)


async def _record(
    db: Executor, org: Any, iid: int, changes: dict[str, Any], at: dt.datetime
) -> int:
    """One history entry about the intervention, by the organisation's admin."""
    return await db.execute(
        INSERT_HISTORY,
        organization_id=org.id,
        seq=1,
        intervention_id=str(iid),
        actor={"type": "user", "userId": org.admin.user_id},
        action="update",
        changes=changes,
        created_at=at,
    )


async def test_rows_come_back_with_the_columns_types(database: Database, factory: Factory) -> None:
    org = await factory.org()
    iid = await _intervention(database, org.id)
    at = dt.datetime(2025, 2, 1, 12, 30, 15, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    changes = {"scheduledStart": {"from": None, "to": "x"}, "siteIds": [1, 2]}
    async with database.transaction() as db:
        assert await _record(db, org, iid, changes, at) == 1
    async with database.transaction(write=False) as db:
        row = await db.first(INTERVENTION, id=iid)
        (entry,) = await db.all(HISTORY_OF, intervention_id=str(iid))
    assert row.id == iid
    assert row.auto_created is True
    assert row.scheduled_start == dt.datetime(2025, 1, 10, 8, 0, 0, 123000, tzinfo=dt.UTC)
    assert row.scheduled_start.tzinfo is not None
    assert row.deleted_at is None
    assert entry.action == "update"
    assert entry.changes == {"scheduledStart": {"from": None, "to": "x"}, "siteIds": [1, 2]}
    assert entry.recorded_at == at  # the same instant, read back in UTC
    assert entry.recorded_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("count", [0, 1, 3, 1500])
async def test_a_list_parameter_keeps_one_sql_text(
    database: Database, factory: Factory, count: int
) -> None:
    org = await factory.org()
    wanted = org.site_ids[:count] + list(range(10**12, 10**12 + max(0, count - 3)))
    async with database.transaction(write=False) as db:
        rows = await db.all(SITES_AMONG, organization_id=org.id, ids=wanted)
        sql = SITES_AMONG.compiled(db.dialect).sql
    assert [(r.id, r.kind) for r in rows] == [(i, "site") for i in org.site_ids[:count]]
    assert "POSTCOMPILE" not in sql
    assert SITES_AMONG.compiled(db.dialect).sql is sql  # compiled once per dialect


async def test_a_transaction_sees_what_the_orm_committed_and_rolls_back_its_own(
    database: Database, factory: Factory
) -> None:
    """Rows written through the ORM (the test factories) are there for the executor, and what
    an aborted transaction wrote is not there for anyone."""
    org = await factory.org()
    site = org.site_ids[0]

    class Abort(Exception):
        pass

    async def rename_then_abort() -> None:
        async with database.transaction() as db:
            assert await db.execute(RENAME_SITE, site_id=site, new_name="rolled back") == 1
            raise Abort

    with pytest.raises(Abort):
        await rename_then_abort()
    async with database.transaction() as db:
        assert await db.execute(RENAME_SITE, site_id=site, new_name="committed") == 1
    async with database.reader() as s, s.begin():
        names = set(
            (await s.execute(select(Site.name).where(Site.organization_id == org.id))).scalars()
        )
    assert "rolled back" not in names
    assert "committed" in names


async def test_driver_errors_are_sqlalchemys(database: Database, factory: Factory) -> None:
    org = await factory.org()

    async def duplicate() -> None:
        async with database.transaction() as db:
            await db.execute(DUPLICATE_SITE, id=org.site_ids[0], org=org.id)

    with pytest.raises(IntegrityError):
        await duplicate()
    async with database.transaction(write=False) as db:
        assert await db.scalar(COUNT_SITES, org=org.id) == 3


async def test_a_naive_datetime_is_refused_before_anything_is_written(
    database: Database, factory: Factory
) -> None:
    """A UTC column takes aware datetimes only (``UTCDateTime``), on both databases: a naive
    one is a programming error, not a time silently read in the server's zone."""
    org = await factory.org()
    iid = await _intervention(database, org.id)
    naive = dt.datetime(2025, 2, 1, 12, 30)
    with pytest.raises(ValueError, match="naive datetime"):
        async with database.transaction() as db:
            await _record(db, org, iid, {}, naive)
    async with database.transaction(write=False) as db:
        assert await db.all(HISTORY_OF, intervention_id=str(iid)) == []


def test_arguments_follow_the_placeholders() -> None:
    """Given values, literals the statement carries, generated defaults and bind processors,
    in placeholder order, in every dialect; a ``KeyError`` for a missing parameter."""
    from sqlalchemy.dialects import postgresql, sqlite

    for dialect in (postgresql.asyncpg.dialect(), sqlite.aiosqlite.dialect()):
        c = INSERT_HISTORY.compiled(dialect)
        at = dt.datetime(2025, 2, 1, 12, 30, tzinfo=dt.UTC)
        given = {
            "organization_id": 7,
            "seq": 1,
            "intervention_id": "9",
            "actor": {"type": "system"},
            "action": "update",
            "changes": None,
            "created_at": at,
        }
        values = dict(zip(c.names, c.arguments(given), strict=True))
        assert values["organization_id"] == 7
        assert values["intervention_id"] == "9"
        assert values["subject_type"] == "intervention"  # a literal of the statement
        assert values["prev_hash"] == "0" * 64
        assert values["changes"] is None  # None is never given to a processor
        if dialect.name == "postgresql":
            assert values["created_at"] is at
        else:
            assert values["created_at"] == "2025-02-01 12:30:00.000000"  # naive UTC text
        with pytest.raises(KeyError):
            c.arguments({k: v for k, v in given.items() if k != "seq"})
    made = Sql(insert(SITES).values(organization_id=bindparam("org"), name=bindparam("name")))
    c = made.compiled(postgresql.asyncpg.dialect())
    values = dict(zip(c.names, c.arguments({"org": 1, "name": "x"}), strict=True))
    assert set(values) == {"org", "name", "created_at"}
    assert values["created_at"].tzinfo is not None  # made now (the column's default)


async def test_missing_parameter_is_a_programming_error(database: Database) -> None:
    async with database.transaction(write=False) as db:
        with pytest.raises(KeyError):
            await db.all(SITES_AMONG, organization_id=1)


ADD_SITE = Sql(insert(SITES).values(organization_id=bindparam("org"), name=bindparam("name")))
NEW_SITE = Sql(
    insert(SITES)
    .values(organization_id=bindparam("org"), name=bindparam("name"))
    .returning(SITES.c.id, SITES.c.created_at)
)


async def test_a_transaction_of_its_own_commits_or_rolls_back(
    database: Database, factory: Factory
) -> None:
    org = await factory.org()

    class Abort(Exception):
        pass

    async def add_then_abort() -> None:
        async with database.transaction() as db:
            await db.many(ADD_SITE, [{"org": org.id, "name": "gone"}] * 3)
            assert await db.scalar(COUNT_SITES, org=org.id) == 6  # its own writes, seen
            raise Abort

    with pytest.raises(Abort):
        await add_then_abort()
    async with database.transaction() as db:
        await db.many(ADD_SITE, [{"org": org.id, "name": n} for n in ("a", "b")])
        made = await db.first(NEW_SITE, org=org.id, name="c")
    # The column's Python-side default (``created_at = utcnow``) is made as SQLAlchemy would.
    assert made.created_at.tzinfo is not None
    assert abs((made.created_at - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    async with database.transaction(write=False) as db:
        assert await db.scalar(COUNT_SITES, org=org.id) == 6

    async def duplicate() -> None:
        async with database.transaction() as db:
            await db.execute(DUPLICATE_SITE, id=org.site_ids[0], org=org.id)

    with pytest.raises(IntegrityError):
        await duplicate()
    # The connection went back to the pool with nothing open: the next transaction works.
    async with database.transaction() as db:
        assert await db.scalar(COUNT_SITES, org=org.id) == 6
