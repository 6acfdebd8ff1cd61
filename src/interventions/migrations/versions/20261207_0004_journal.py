"""journal: the per-organisation hash-chained journal (issue 11, item 1); intervention versions

- ``interventions.version``: 1 at creation, one more at every write (ETags, calendar feeds).
- ``journal_entries`` and ``journal_heads`` (``register.journal``). The intervention history
  is moved into the journal, in its order (per organisation by history id), each entry
  chained as the service chains them, then ``intervention_history`` is dropped: the journal
  is the history from now on. Entries made before the wire names keep their members renamed
  as the service read them (``to_camel``); an entry without a user was the planner's.
- Triggers: UPDATE and DELETE on ``journal_entries`` are refused by the database (and
  TRUNCATE on PostgreSQL); the head's hash follows the entry inserted at its seq.

Revision ID: 20261207_0004
Revises: 20261201_0003
Create Date: 2026-12-07 00:00:00+00:00
"""

import datetime as dt
import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op
from pydantic.alias_generators import to_camel

from interventions.register.journal import GENESIS, document, entry_hash

revision: str = "20261207_0004"
down_revision: str | None = "20261201_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REFUSED = "the journal is append-only"

POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION journal_entries_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{REFUSED}: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$""",
    "CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries "
    "FOR EACH ROW EXECUTE FUNCTION journal_entries_refuse()",
    "CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries "
    "FOR EACH ROW EXECUTE FUNCTION journal_entries_refuse()",
    "CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION journal_entries_refuse()",
    """CREATE FUNCTION journal_heads_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE journal_heads SET hash = NEW.hash
  WHERE organization_id = NEW.organization_id AND seq = NEW.seq;
  RETURN NULL;
END $$""",
    "CREATE TRIGGER journal_entries_head AFTER INSERT ON journal_entries "
    "FOR EACH ROW EXECUTE FUNCTION journal_heads_follow()",
]
SQLITE_TRIGGERS = [
    "CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE refused'); END",
    "CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE refused'); END",
    "CREATE TRIGGER journal_entries_head AFTER INSERT ON journal_entries BEGIN "
    "UPDATE journal_heads SET hash = NEW.hash "
    "WHERE organization_id = NEW.organization_id AND seq = NEW.seq; END",
]


def _aware(value: Any) -> dt.datetime:
    parsed: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    parsed = parsed.astimezone(dt.UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _move_history(bind: sa.Connection, entries: sa.Table, heads: sa.Table) -> None:
    sqlite = bind.dialect.name == "sqlite"
    history = bind.execute(
        sa.text(
            "SELECT h.organization_id, h.intervention_id, h.user_id, h.action, h.changes, "
            "h.created_at, p.id AS profile_id FROM intervention_history h "
            "LEFT JOIN profiles p ON p.user_id = h.user_id "
            "AND p.organization_id = h.organization_id "
            "ORDER BY h.organization_id, h.id"
        )
    )
    last: dict[int, tuple[int, str]] = {}
    batch: list[dict[str, Any]] = []
    for r in history:
        seq, previous = last.get(r.organization_id, (0, GENESIS))
        if r.user_id is None:
            actor: dict[str, Any] = {"type": "system", "name": "planner"}
        else:
            actor = {"type": "user", "userId": r.user_id, "profileId": r.profile_id}
        changes = {to_camel(k): v for k, v in (_json(r.changes) or {}).items()}
        row = {
            "organization_id": r.organization_id,
            "seq": seq + 1,
            "recorded_at": _aware(r.created_at),
            "actor": actor,
            "action": r.action,
            "subject_type": "intervention",
            "subject_id": str(r.intervention_id),
            "changes": json.loads(json.dumps(changes)),
            "prev_hash": previous,
        }
        row["hash"] = entry_hash(document(SimpleNamespace(**row)))
        last[r.organization_id] = (seq + 1, row["hash"])
        if sqlite:
            row["recorded_at"] = row["recorded_at"].replace(tzinfo=None)
        batch.append(row)
        if len(batch) >= 1000:
            bind.execute(entries.insert(), batch)
            batch = []
    if batch:
        bind.execute(entries.insert(), batch)
    if last:
        bind.execute(
            heads.insert(),
            [{"organization_id": o, "seq": s, "hash": h} for o, (s, h) in last.items()],
        )


def upgrade() -> None:
    with op.batch_alter_table("interventions") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))

    entries = op.create_table(
        "journal_entries",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("seq", ID, autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_journal_entries_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", "seq", name=op.f("pk_journal_entries")),
    )
    op.create_index(
        "ix_journal_entries_subject",
        "journal_entries",
        ["organization_id", "subject_type", "subject_id", "seq"],
    )
    heads = op.create_table(
        "journal_heads",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("seq", ID, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_journal_heads_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_journal_heads")),
    )

    bind = op.get_bind()
    _move_history(bind, entries, heads)
    op.drop_table("intervention_history")

    for statement in SQLITE_TRIGGERS if bind.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Back to a history table, from the journal's entries about interventions."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT organization_id, subject_id, actor, action, changes, recorded_at "
            "FROM journal_entries WHERE subject_type = 'intervention' "
            "ORDER BY organization_id, seq"
        )
    ).all()
    if bind.dialect.name == "sqlite":
        for name in ("no_update", "no_delete", "head"):
            op.execute(f"DROP TRIGGER IF EXISTS journal_entries_{name}")
    else:
        op.execute("DROP FUNCTION journal_entries_refuse() CASCADE")
        op.execute("DROP FUNCTION journal_heads_follow() CASCADE")
    op.drop_table("journal_entries")
    op.drop_table("journal_heads")
    history = op.create_table(
        "intervention_history",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("intervention_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_history_intervention_id_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_intervention_history_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_intervention_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_history")),
    )
    op.create_index(
        op.f("ix_intervention_history_intervention_id"),
        "intervention_history",
        ["intervention_id"],
    )
    sqlite = bind.dialect.name == "sqlite"
    if rows:
        bind.execute(
            history.insert(),
            [
                {
                    "organization_id": r.organization_id,
                    "intervention_id": int(r.subject_id),
                    "user_id": _json(r.actor).get("userId"),
                    "action": r.action,
                    "changes": _json(r.changes),
                    "created_at": (
                        _aware(r.recorded_at).replace(tzinfo=None)
                        if sqlite
                        else _aware(r.recorded_at)
                    ),
                }
                for r in rows
            ],
        )
    with op.batch_alter_table("interventions") as batch:
        batch.drop_column("version")
