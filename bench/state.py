"""Put the database back as it was before a run, so that every run sees the same register.

Writes consume the pools (anomalies go into repair, interventions get verified) and add rows.
Before a run, ``snapshot`` copies the rows the run may change into the ``bench`` schema and
notes the high-water marks of the tables it may insert into; ``restore`` deletes what is newer
and copies the saved rows back, then vacuums the touched tables so that autovacuum does not
wake up in the middle of the next run. Foreign-key triggers are off during the restore
(``session_replication_role = replica``): the restore deletes children before parents itself.
So are the journal's append-only triggers: the entries a run appended are deleted, and each
organisation's head is put back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from bench.pools import Pools

LINKS = ("intervention_sites", "intervention_site_rules", "intervention_rules")
TOUCHED = (
    "interventions",
    "journal_entries",
    "journal_heads",
    "intervention_sites",
    "intervention_site_rules",
    "intervention_rules",
    "intervention_anomalies",
    "anomalies",
    "notifications",
    "email_outbox",
    "stored_files",
)


@dataclass(frozen=True)
class Marks:
    interventions: int
    outbox: int
    started: dt.datetime


async def snapshot(conn: asyncpg.Connection, pools: Pools) -> Marks:
    """Save the rows the run may change; return the marks above which rows are the run's."""
    interventions = pools.intervention_ids()
    async with conn.transaction():
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        await conn.execute(
            "DROP TABLE IF EXISTS bench.interventions, bench.anomalies, bench.notifications, "
            "bench.journal_heads, " + ", ".join(f"bench.{t}" for t in LINKS)
        )
        await conn.execute(
            "CREATE TABLE bench.interventions AS SELECT * FROM interventions "
            "WHERE id = ANY($1::bigint[])",
            interventions,
        )
        for table in LINKS:
            await conn.execute(
                f"CREATE TABLE bench.{table} AS SELECT * FROM {table} "
                "WHERE intervention_id = ANY($1::bigint[])",
                interventions,
            )
        await conn.execute(
            "CREATE TABLE bench.anomalies AS SELECT * FROM anomalies WHERE id = ANY($1::bigint[])",
            pools.anomaly_ids(),
        )
        await conn.execute(
            "CREATE TABLE bench.notifications AS SELECT * FROM notifications "
            "WHERE id = ANY($1::text[])",
            pools.notification_ids(),
        )
        # Each organisation's journal head: its entries above it are the run's.
        await conn.execute("CREATE TABLE bench.journal_heads AS SELECT * FROM journal_heads")
        row = await conn.fetchrow(
            """SELECT (SELECT COALESCE(max(id), 0) FROM interventions) AS interventions,
                      (SELECT COALESCE(max(id), 0) FROM email_outbox) AS outbox,
                      clock_timestamp() AS started"""
        )
    assert row is not None
    return Marks(row["interventions"], row["outbox"], row["started"])


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position""",
        table,
    )
    return [r["column_name"] for r in rows]


async def _restore_journal(conn: asyncpg.Connection) -> None:
    """Each organisation's journal back to its head at the snapshot: the entries above it
    deleted (a range of the primary key per organisation that moved), the head's seq and
    hash put back. Needs the append-only triggers off (``session_replication_role``)."""
    moved = await conn.fetch(
        """SELECT c.organization_id, COALESCE(h.seq, 0) AS seq
           FROM journal_heads c LEFT JOIN bench.journal_heads h USING (organization_id)
           WHERE (c.seq, c.hash) IS DISTINCT FROM (h.seq, h.hash)"""
    )
    await conn.executemany(
        "DELETE FROM journal_entries WHERE organization_id = $1 AND seq > $2",
        [(r["organization_id"], r["seq"]) for r in moved],
    )
    await conn.execute(
        """UPDATE journal_heads c SET seq = h.seq, hash = h.hash FROM bench.journal_heads h
           WHERE c.organization_id = h.organization_id
             AND (c.seq, c.hash) IS DISTINCT FROM (h.seq, h.hash)"""
    )
    await conn.execute(
        "DELETE FROM journal_heads WHERE organization_id NOT IN "
        "(SELECT organization_id FROM bench.journal_heads)"
    )


async def restore(conn: asyncpg.Connection, marks: Marks, vacuum: bool = True) -> None:
    """Undo everything done since ``snapshot``."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        new = marks.interventions
        await conn.execute("DELETE FROM notifications WHERE intervention_id > $1", new)
        await _restore_journal(conn)
        await conn.execute("DELETE FROM email_outbox WHERE id > $1", marks.outbox)
        for table in (*LINKS, "intervention_anomalies"):
            await conn.execute(f"DELETE FROM {table} WHERE intervention_id > $1", new)
        await conn.execute("DELETE FROM interventions WHERE id > $1", new)
        await conn.execute("DELETE FROM stored_files WHERE created_at >= $1", marks.started)

        # Only what the run changed is written back: at large scale the pools hold tens of
        # thousands of rows, most of them untouched by a 10 s run.
        await conn.execute(
            "CREATE TEMP TABLE changed ON COMMIT DROP AS SELECT s.id FROM bench.interventions s "
            "JOIN interventions i ON i.id = s.id WHERE ROW(i.*) IS DISTINCT FROM ROW(s.*)"
        )
        columns = [c for c in await _columns(conn, "interventions") if c != "id"]
        assignments = ", ".join(f"{c} = s.{c}" for c in columns)
        await conn.execute(
            f"UPDATE interventions i SET {assignments} FROM bench.interventions s "
            "WHERE i.id = s.id AND s.id IN (SELECT id FROM changed)"
        )
        for table in LINKS:
            await conn.execute(
                f"DELETE FROM {table} WHERE intervention_id IN (SELECT id FROM changed)"
            )
            await conn.execute(
                f"INSERT INTO {table} SELECT * FROM bench.{table} "
                "WHERE intervention_id IN (SELECT id FROM changed)"
            )
        await conn.execute(
            """UPDATE anomalies a SET status = s.status, updated_at = s.updated_at,
                      resolved_at = s.resolved_at, resolved_by_user_id = s.resolved_by_user_id
               FROM bench.anomalies s
               WHERE a.id = s.id
                 AND (a.status, a.updated_at) IS DISTINCT FROM (s.status, s.updated_at)"""
        )
        await conn.execute(
            """UPDATE notifications n SET read_at = s.read_at FROM bench.notifications s
               WHERE n.id = s.id AND n.read_at IS DISTINCT FROM s.read_at"""
        )
    if vacuum:
        await conn.execute("VACUUM (ANALYZE) " + ", ".join(TOUCHED))
