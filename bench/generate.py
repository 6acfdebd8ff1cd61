"""Fill a fresh PostgreSQL database with a realistic multi-tenant register, fast.

``python -m bench.generate --scale small|large`` drops and recreates the scale's database,
migrates it with the service's own migrations, then loads every table with binary ``COPY``
(asyncpg ``copy_records_to_table``). Foreign keys and secondary indexes are dropped for the
load and recreated afterwards, which validates every foreign key set-based instead of row by
row; primary keys, unique and check constraints stay in force throughout. Finally the id
sequences are advanced past the generated ids and the tables are vacuumed and analysed.

The data is deterministic (seeded) and consistent with the lifecycle of SPEC §4: statuses
match their dates, provider fields, verifier and signature; a curative intervention's
anomalies are in repair while it is active, resolved once it is validated, open again after a
rejection or a cancellation; every executed intervention notified its organisation's admins
and managers; every change is an entry of its organisation's hash-chained journal, in the
order the changes happened.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import heapq
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import rfc8785
from argon2 import PasswordHasher
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import config
from bench.config import Scale

console = Console(stderr=True)

CHUNK = 20_000  # interventions generated and copied per batch: bounded memory at any scale
YEARS = 3  # the register's history spans this many years up to now
GENESIS = "0" * 64  # what an organisation's first journal entry chains from
PLANNER = {"type": "system", "name": "planner"}
STORAGE = {"type": "system", "name": "storage"}

CHECK_RULE_NAMES = (
    "Vérification du système de sécurité incendie",
    "Vérification des extincteurs",
    "Vérification de l'éclairage de sécurité",
    "Contrôle des installations électriques",
    "Contrôle des ascenseurs",
    "Vérification du désenfumage",
    "Contrôle des installations de gaz",
    "Vérification des portes automatiques",
    "Contrôle des appareils de cuisson",
    "Vérification des colonnes sèches",
)
TRAINING_RULE_NAMES = ("Exercice d'évacuation", "Formation aux premiers secours")
ANOMALY_TITLES = (
    "Extincteur absent",
    "Porte coupe-feu bloquée",
    "Éclairage de secours défaillant",
    "Issue de secours encombrée",
    "Détecteur de fumée hors service",
    "Plan d'évacuation manquant",
    "Colonne sèche non signalée",
    "Registre de sécurité incomplet",
)
DESCRIPTIONS = (
    "Vérification périodique réglementaire",
    "Contrôle annuel par organisme agréé",
    "Reprise des observations du dernier contrôle",
    "Intervention demandée par le chef d'établissement",
    None,
)


def org_weights(organizations: int) -> list[float]:
    """Organisations differ in size (1× to 3×), as tenants of a real register do."""
    return [1 + ((org * 7) % 5) * 0.5 for org in range(1, organizations + 1)]


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` by ``weights`` into integers that add up exactly (largest remainder)."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass
class Org:
    """One organisation's reference data, as the intervention generator needs it."""

    id: int
    sites: list[int] = field(default_factory=list)
    # Per site: its site rules as (site rule id, rule id); the first BASE_RULES are shared.
    site_rules: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    routine_of_site: dict[int, int] = field(default_factory=dict)
    anomalies: list[int] = field(default_factory=list)
    anomaly_site: dict[int, int] = field(default_factory=dict)
    next_anomaly: int = 0  # anomalies are linked to curatives in order, each at most once

    @property
    def writers(self) -> list[int]:
        return [config.user_id(self.id, i) for i, r in enumerate(config.ROLES) if r != "viewer"]

    def rule(self, index: int) -> int:
        return (self.id - 1) * config.RULES_PER_ORG + index + 1

    def company(self, index: int) -> int:
        return (self.id - 1) * len(config.COMPANY_TYPES) + index + 1

    def contact(self, company_index: int, index: int = 0) -> int:
        return (self.company(company_index) - 1) * config.CONTACTS_PER_COMPANY + index + 1


class Tables:
    """Rows waiting to be copied, per table, with their column lists."""

    COLUMNS: dict[str, tuple[str, ...]] = {
        "organizations": ("id", "name", "created_at"),
        "users": (
            "id",
            "email",
            "password_hash",
            "first_name",
            "last_name",
            "disabled_at",
            "created_at",
        ),
        "profiles": ("id", "user_id", "organization_id", "role", "archived_at", "created_at"),
        "sites": ("id", "organization_id", "name", "archived_at", "created_at"),
        "rules": ("id", "organization_id", "name", "type", "archived_at", "created_at"),
        "site_rules": ("id", "organization_id", "site_id", "rule_id", "archived_at", "created_at"),
        "companies": (
            "id",
            "organization_id",
            "name",
            "type",
            "email",
            "archived_at",
            "created_at",
        ),
        "company_contacts": (
            "id",
            "organization_id",
            "company_id",
            "name",
            "email",
            "archived_at",
            "created_at",
        ),
        "routines": (
            "id",
            "organization_id",
            "name",
            "rrule",
            "assigned_profile_id",
            "assigned_company_contact_id",
            "auto_create_enabled",
            "archived_at",
            "created_at",
            "dtstart",
            "duration_minutes",
            "horizon_days",
        ),
        "routine_site_rules": ("routine_id", "site_rule_id", "organization_id"),
        "anomalies": (
            "id",
            "organization_id",
            "site_id",
            "title",
            "description",
            "risk",
            "status",
            "resolved_at",
            "resolved_by_user_id",
            "created_at",
            "updated_at",
        ),
        "stored_files": (
            "id",
            "organization_id",
            "name",
            "mime_type",
            "size",
            "storage_key",
            "created_by_user_id",
            "uploaded_at",
            "created_at",
        ),
        "interventions": (
            "id",
            "organization_id",
            "type",
            "status",
            "creation_status",
            "check_type",
            "description",
            "code_pin",
            "auto_created",
            "scheduled_start",
            "scheduled_end",
            "actual_start",
            "actual_end",
            "provider_name",
            "provider_email",
            "provider_action_comment",
            "provider_general_comment",
            "assigned_company_contact_id",
            "assigned_profile_id",
            "company_id",
            "signature_file_id",
            "verified_by_user_id",
            "verified_at",
            "decision_comment",
            "attendee_count",
            "routine_id",
            "occurrence_start",
            "created_by_user_id",
            "negotiation_end_date",
            "cancellation_reason",
            "archived_at",
            "deleted_at",
            "created_at",
            "updated_at",
            "version",
        ),
        "intervention_sites": ("intervention_id", "site_id", "organization_id"),
        "intervention_site_rules": ("intervention_id", "site_rule_id", "organization_id"),
        "intervention_rules": ("intervention_id", "rule_id", "organization_id"),
        "intervention_anomalies": ("intervention_id", "anomaly_id", "organization_id"),
        "journal_entries": (
            "organization_id",
            "seq",
            "recorded_at",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "changes",
            "prev_hash",
            "hash",
        ),
        "journal_heads": ("organization_id", "seq", "hash"),
        "notifications": (
            "id",
            "organization_id",
            "user_id",
            "type",
            "intervention_id",
            "message",
            "read_at",
            "created_at",
        ),
    }

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in self.COLUMNS}
        self.copied: dict[str, int] = dict.fromkeys(self.COLUMNS, 0)

    async def flush(self, conn: asyncpg.Connection) -> int:
        """Copy every pending row; returns how many were copied."""
        total = 0
        for name, rows in self.rows.items():
            if rows:
                await conn.copy_records_to_table(name, records=rows, columns=self.COLUMNS[name])
                self.copied[name] += len(rows)
                total += len(rows)
                self.rows[name] = []
        return total


# Lifecycle ------------------------------------------------------------------------------------

# A verification backlog: about a fifth of the register awaits the client's decision, which
# is also what the verify scenario consumes (each intervention can be verified once per run).
OLD_STATUSES = ((5, 0.70), (6, 0.05), (7, 0.09), (4, 0.16))  # the first 80 % of the history
NEW_STATUSES = ((1, 0.20), (2, 0.35), (3, 0.03), (4, 0.37), (7, 0.05))  # the latest 20 %
EXECUTED = frozenset({4, 5, 6})


def pick(rng: random.Random, table: Sequence[tuple[int, float]]) -> int:
    x = rng.random()
    for value, share in table:
        x -= share
        if x < 0:
            return value
    return table[-1][0]


def iso(value: dt.datetime | None) -> str | None:
    """``interventions.wire.format_datetime``: milliseconds, ``Z``."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def change(before: Any, after: Any) -> dict[str, Any]:
    """A member's change as the journal records it."""
    return {"from": before, "to": after}


def canonical(document: Any) -> str:
    """RFC 8785 (JCS) for the values the journal's documents hold here: objects, arrays,
    strings, integers, booleans and null, with keys in the Basic Multilingual Plane. Sorted
    keys (by code point, which is by UTF-16 unit in the BMP), no whitespace, UTF-8, and only
    the escapes JSON requires, spelt as JCS spells them (Python's short escapes, else
    lower-case ``\\u00xx``). No floats: JCS writes numbers as ECMAScript does. Faster than
    ``rfc8785.dumps``; ``Journal`` compares the two on a sample of its entries."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Journal:
    """Each organisation's journal, chained as ``interventions.register.journal`` chains it,
    in the order the entries happened.

    Interventions are generated in id order, which is creation order; their later entries
    (check-in, execution, verification…) wait in a heap until no intervention still to be
    generated can be created before them (``release``), then take the organisation's next
    seq. Entries at the same time keep the order they were made in.
    """

    # Entries whose canonical form is compared with ``rfc8785.dumps``: the first ones, then
    # one in CHECK_EVERY (every kind of entry comes up).
    CHECKED, CHECK_EVERY = 500, 997

    def __init__(self) -> None:
        self.pending: list[tuple[dt.datetime, int, int, str, str, str, Any, Any]] = []
        self.made = 0
        self.heads: dict[int, tuple[int, str]] = {}
        self.chained = 0
        self.checked = 0
        self.actors: dict[int, str] = {}  # id() of a shared actor dict → its canonical text

    def add(
        self,
        at: dt.datetime,
        org: int,
        actor: Any,
        action: str,
        subject_type: str,
        subject_id: str | int,
        changes: dict[str, Any],
    ) -> None:
        self.made += 1
        entry = (at, self.made, org, action, subject_type, str(subject_id), actor, changes)
        heapq.heappush(self.pending, entry)

    def release(self, rows: list[tuple[Any, ...]], before: dt.datetime | None) -> None:
        """Chain every pending entry that happened before ``before`` (all if ``None``).

        The document the hash covers (``journal.document``) is written out member by member
        in JCS order (action, actor, changes, organizationId, prevHash, recordedAt, seq,
        subject); the actor and the changes are stored as their canonical text."""
        pending, heads, actors = self.pending, self.heads, self.actors
        while pending and (before is None or pending[0][0] < before):
            at, _, org, action, subject_type, subject_id, actor, changes = heapq.heappop(pending)
            seq, previous = heads.get(org, (0, GENESIS))
            seq += 1
            at = at.replace(microsecond=at.microsecond // 1000 * 1000)
            actor_text = actors.get(id(actor))
            if actor_text is None:
                actor_text = canonical(actor)
                if actor.get("type") != "provider":  # shared: the generator caches these
                    actors[id(actor)] = actor_text
            changes_text = canonical(changes)
            recorded = iso(at)
            encoded = (
                f'{{"action":"{action}","actor":{actor_text},"changes":{changes_text},'
                f'"organizationId":{org},"prevHash":"{previous}","recordedAt":"{recorded}",'
                f'"seq":{seq},"subject":{{"id":"{subject_id}","type":"{subject_type}"}}}}'
            ).encode()
            self.chained += 1
            if self.chained <= self.CHECKED or self.chained % self.CHECK_EVERY == 0:
                self.check(encoded, org, seq, at, actor, action, subject_type, subject_id, changes)
            digest = hashlib.sha256(encoded).hexdigest()
            rows.append(
                (
                    org,
                    seq,
                    at,
                    actor_text,
                    action,
                    subject_type,
                    subject_id,
                    changes_text,
                    previous,
                    digest,
                )
            )
            heads[org] = (seq, digest)

    def check(self, encoded: bytes, *values: Any) -> None:
        """``encoded`` is RFC 8785 of the document the service hashes for these values."""
        from interventions.register.journal import document

        names = "organization_id seq recorded_at actor action subject_type subject_id changes"
        row = dict(zip(names.split(), values, strict=True))
        row["prev_hash"] = json.loads(encoded)["prevHash"]
        expected = rfc8785.dumps(document(argparse.Namespace(**row)))
        assert encoded == expected, (encoded, expected)
        self.checked += 1


class Generator:
    """Builds the rows of one scale, deterministically (seeded)."""

    def __init__(self, scale: Scale, seed: int = 4) -> None:
        self.scale = scale
        self.rng = random.Random(seed)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.start = self.now - dt.timedelta(days=365 * YEARS)
        weights = org_weights(scale.organizations)
        self.site_counts = allocate(scale.sites, weights)
        self.anomaly_counts = allocate(scale.anomalies, weights)
        self.intervention_counts = allocate(scale.interventions, weights)
        self.orgs: list[Org] = []
        self.password_hash = PasswordHasher().hash(config.PASSWORD)  # once, reused by all
        self.journal = Journal()
        self.actors: dict[int, dict[str, Any]] = {}
        self.notifications: list[tuple[Any, ...]] = []
        # Anomaly states decided by the curative interventions that link them.
        self.anomaly_state: dict[int, tuple[int, dt.datetime | None, int | None]] = {}

    # Reference data --------------------------------------------------------------------------

    def reference(self, tables: Tables) -> None:
        rows = tables.rows
        t0 = self.start - dt.timedelta(days=30)
        site_id = site_rule_id = routine_id = anomaly_id = 0
        for index in range(self.scale.organizations):
            org = Org(index + 1)
            self.orgs.append(org)
            rows["organizations"].append((org.id, f"Organisation {org.id}", t0))
            for i, role in enumerate(config.ROLES):
                uid = config.user_id(org.id, i)
                rows["users"].append(
                    (
                        uid,
                        config.email(org.id, i),
                        self.password_hash,
                        "Prénom",
                        f"Nom {uid}",
                        None,
                        t0,
                    )
                )
                rows["profiles"].append((uid, uid, org.id, role, None, t0))
            for r in range(config.RULES_PER_ORG):
                check = r < config.CHECK_RULES
                name = CHECK_RULE_NAMES[r] if check else TRAINING_RULE_NAMES[r - config.CHECK_RULES]
                rows["rules"].append((org.rule(r), org.id, name, 1 if check else 2, None, t0))
            for c, kind in enumerate(config.COMPANY_TYPES):
                cid = org.company(c)
                rows["companies"].append(
                    (
                        cid,
                        org.id,
                        f"Prestataire {cid}",
                        kind,
                        f"contact{cid}@provider.example",
                        None,
                        t0,
                    )
                )
                for k in range(config.CONTACTS_PER_COMPANY):
                    contact = org.contact(c, k)
                    rows["company_contacts"].append(
                        (
                            contact,
                            org.id,
                            cid,
                            f"Contact {contact}",
                            f"contact{contact}@provider.example",
                            None,
                            t0,
                        )
                    )
            for k in range(self.site_counts[index]):
                site_id += 1
                org.sites.append(site_id)
                rows["sites"].append((site_id, org.id, f"Bâtiment {site_id}", None, t0))
                extra = config.CHECK_RULES - config.BASE_RULES
                locals_ = list(range(config.BASE_RULES)) + [
                    config.BASE_RULES + (k + t) % extra
                    for t in range(config.RULES_PER_SITE - config.BASE_RULES)
                ]
                carried = []
                for r in locals_:
                    site_rule_id += 1
                    carried.append((site_rule_id, org.rule(r)))
                    rows["site_rules"].append(
                        (site_rule_id, org.id, site_id, org.rule(r), None, t0)
                    )
                org.site_rules[site_id] = carried
                routine_id += 1
                org.routine_of_site[site_id] = routine_id
                rows["routines"].append(
                    (
                        routine_id,
                        org.id,
                        f"Vérifications annuelles, bâtiment {site_id}",
                        "FREQ=YEARLY",
                        None,
                        org.contact(0),
                        False,
                        None,
                        t0,
                        t0,
                        120,
                        30,
                    )
                )
                for sr, _ in carried[: config.BASE_RULES]:
                    rows["routine_site_rules"].append((routine_id, sr, org.id))
            for _ in range(self.anomaly_counts[index]):
                anomaly_id += 1
                org.anomalies.append(anomaly_id)
                org.anomaly_site[anomaly_id] = self.rng.choice(org.sites)
            self.rng.shuffle(org.anomalies)

    def anomalies(self, tables: Tables) -> None:
        """Anomaly rows, once the curative interventions have decided their states."""
        rows = tables.rows["anomalies"]
        rng = self.rng
        for org in self.orgs:
            admin = config.user_id(org.id, 0)
            for aid in sorted(org.anomalies):
                created = self.start + dt.timedelta(seconds=rng.uniform(0, 86400 * 365 * YEARS))
                state = self.anomaly_state.get(aid)
                if state is None:
                    # Never linked: mostly open (the backlog), some fixed in-house.
                    resolved = rng.random() < 0.1
                    state = (
                        (2, created + dt.timedelta(days=10), admin) if resolved else (0, None, None)
                    )
                status, resolved_at, resolver = state
                rows.append(
                    (
                        aid,
                        org.id,
                        org.anomaly_site[aid],
                        ANOMALY_TITLES[aid % len(ANOMALY_TITLES)],
                        None,
                        aid % 4,
                        status,
                        resolved_at,
                        resolver,
                        created,
                        resolved_at or created,
                    )
                )

    # Interventions ---------------------------------------------------------------------------

    def org_sequence(self) -> list[int]:
        """Which organisation owns each intervention id: interleaved, as created over time."""
        sequence = [
            org.id
            for org, n in zip(self.orgs, self.intervention_counts, strict=True)
            for _ in range(n)
        ]
        random.Random(7).shuffle(sequence)
        return sequence

    def interventions(self, tables: Tables, first: int, owners: Sequence[int]) -> None:
        """Rows of interventions ``first`` … ``first + len(owners) - 1`` and everything theirs."""
        rng = self.rng
        rows = tables.rows
        total = self.scale.interventions
        span = (self.now - self.start).total_seconds()
        for offset, org_id in enumerate(owners):
            iid = first + offset
            org = self.orgs[org_id - 1]
            position = (iid - 1) / total
            created = self.start + dt.timedelta(seconds=span * position + rng.uniform(0, 3600))
            status = pick(rng, OLD_STATUSES if position < 0.8 else NEW_STATUSES)
            x = rng.random()
            kind = 1 if x < 0.75 else (2 if x < 0.85 else 3)
            unplanned = kind == 1 and status in EXECUTED and rng.random() < 0.1
            writers = org.writers
            creator = rng.choice(writers)
            company_index = {1: 0, 2: 1 + (iid % 2), 3: 3}[kind]
            contact = org.contact(company_index, iid % config.CONTACTS_PER_COMPANY)
            profile = rng.choice(writers) if rng.random() < 0.7 else None
            start = created + dt.timedelta(days=rng.uniform(1, 60))
            start = start.replace(minute=0, second=0)
            end = start + dt.timedelta(hours=rng.choice((2, 3, 4)))
            actual_start: dt.datetime | None = None
            actual_end: dt.datetime | None = None
            verified_at: dt.datetime | None = None
            deleted_at: dt.datetime | None = None
            provider: tuple[str | None, ...] = (None, None, None, None)
            signature: str | None = None
            verifier: int | None = None
            decision: str | None = None
            attendees: int | None = None
            reason: str | None = None
            if status == 1:
                creation_status = 0
            elif unplanned:
                creation_status = 2
            else:
                creation_status = 1 if status != 7 else rng.choice((0, 1))
            if status >= 3 and status != 7:
                actual_start = start + dt.timedelta(minutes=rng.randint(0, 90))
            if status in EXECUTED:
                assert actual_start is not None  # executed implies checked in
                actual_end = actual_start + dt.timedelta(hours=rng.choice((1, 2, 3)))
                provider = (
                    f"Technicien {contact}",
                    f"tech{contact}@provider.example",
                    "Contrôle réalisé, observations consignées",
                    "RAS",
                )
                signature = f"{iid:032x}"
                rows["stored_files"].append(
                    (
                        signature,
                        org.id,
                        "signature.jpg",
                        "image/jpeg",
                        20_000 + iid % 180_000,
                        f"{org.id}/{signature}",
                        creator,
                        actual_end,
                        actual_end,
                    )
                )
                if kind == 3:
                    attendees = 10 + iid % 90
            if status in (5, 6):
                assert actual_end is not None  # verified implies executed
                verified_at = actual_end + dt.timedelta(days=rng.uniform(1, 10))
                verifier = rng.choice(writers)
                decision = "Conforme" if status == 5 else "Rapport incomplet, à reprendre"
            if status == 7:
                deleted_at = created + dt.timedelta(days=rng.uniform(1, 30))
                reason = "Doublon"
            routine = None
            auto_created = False
            linked: list[int] = []
            # Links, by kind.
            if kind == 1:
                site = rng.choice(org.sites)
                carried = org.site_rules[site]
                if not unplanned and rng.random() < 0.7:
                    routine = org.routine_of_site[site]
                    chosen = carried[: config.BASE_RULES]
                    auto_created = rng.random() < 0.5
                else:
                    chosen = rng.sample(carried[: config.BASE_RULES], rng.randint(1, 3))
                for sr, rule in chosen:
                    rows["intervention_site_rules"].append((iid, sr, org.id))
                    rows["intervention_rules"].append((iid, rule, org.id))
                rows["intervention_sites"].append((iid, site, org.id))
            elif kind == 2:
                wanted = 1 if rng.random() < 0.9 else 2
                linked = org.anomalies[org.next_anomaly : org.next_anomaly + wanted]
                org.next_anomaly += len(linked)
                if not linked:  # every anomaly of this organisation is taken: a preventive
                    kind = 1
                    site = rng.choice(org.sites)
                    sr, rule = org.site_rules[site][0]
                    rows["intervention_site_rules"].append((iid, sr, org.id))
                    rows["intervention_rules"].append((iid, rule, org.id))
                    rows["intervention_sites"].append((iid, site, org.id))
                for aid in linked:
                    rows["intervention_anomalies"].append((iid, aid, org.id))
                    if status == 5:
                        self.anomaly_state[aid] = (2, verified_at, verifier)
                    elif status in (6, 7):
                        self.anomaly_state[aid] = (0, None, None)
                    else:
                        self.anomaly_state[aid] = (1, None, None)
                for site in sorted({org.anomaly_site[a] for a in linked}):
                    rows["intervention_sites"].append((iid, site, org.id))
            else:
                rows["intervention_rules"].append(
                    (iid, org.rule(config.CHECK_RULES + iid % 2), org.id)
                )
                for site in rng.sample(org.sites, min(len(org.sites), rng.randint(1, 3))):
                    rows["intervention_sites"].append((iid, site, org.id))
            updated = deleted_at or verified_at or actual_end or actual_start or created
            past = {
                "created": created,
                "creator": creator,
                "unplanned": unplanned,
                "auto_created": auto_created,
                "routine": routine,
                "linked": linked,
                "signature": signature,
                "size": 20_000 + iid % 180_000,
                "actual_start": actual_start,
                "actual_end": actual_end,
                "provider": provider,
                "attendees": attendees,
                "verifier": verifier,
                "verified_at": verified_at,
                "decision": decision,
                "deleted_at": deleted_at,
                "reason": reason,
            }
            self.notifications = rows["notifications"]
            version = self.history(org, iid, kind, status, past)
            rows["interventions"].append(
                (
                    iid,
                    org.id,
                    kind,
                    status,
                    creation_status,
                    2 if unplanned else 1,
                    DESCRIPTIONS[iid % len(DESCRIPTIONS)],
                    rng.randint(100_000, 999_999),
                    auto_created,
                    actual_start if unplanned else start,
                    actual_end if unplanned else end,
                    actual_start,
                    actual_end,
                    *provider,
                    None if unplanned else contact,
                    None if unplanned else profile,
                    org.company(company_index),
                    signature,
                    verifier,
                    verified_at,
                    decision,
                    attendees,
                    routine,
                    None,
                    creator,
                    None,
                    reason,
                    None,
                    deleted_at,
                    created,
                    updated,
                    version,
                )
            )
        # Every entry made before the next intervention's creation can now be chained.
        upcoming = self.start + dt.timedelta(seconds=span * (first + len(owners) - 1) / total)
        self.journal.release(rows["journal_entries"], upcoming)

    def journal_ends(self, tables: Tables) -> None:
        """The remaining entries, then each organisation's head."""
        self.journal.release(tables.rows["journal_entries"], None)
        for org, (seq, digest) in sorted(self.journal.heads.items()):
            tables.rows["journal_heads"].append((org, seq, digest))

    def actor(self, user: int) -> dict[str, Any]:
        """A member of the organisation acting through the API (profile id = user id)."""
        found = self.actors.get(user)
        if found is None:
            found = self.actors[user] = {"type": "user", "userId": user, "profileId": user}
        return found

    def history(self, org: Org, iid: int, kind: int, status: int, p: dict[str, Any]) -> int:
        """The journal entries of one intervention's past, and of the anomalies and the
        signature file it moved, as the service records them; the intervention's version
        (one per entry about it)."""
        add, o = self.journal.add, org.id
        created, creator, user = p["created"], p["creator"], self.actor(p["creator"])
        first = 1 if status in (1, 7) else 2
        linked: list[int] = p["linked"]
        signature, actual_start, actual_end = p["signature"], p["actual_start"], p["actual_end"]
        announced = {"name": "signature.jpg", "mimeType": "image/jpeg", "size": p["size"]}
        count = 1
        if p["unplanned"]:  # a check on the spot: its signature file, then the intervention
            add(created, o, user, "announce", "file", signature, announced)
            add(created, o, user, "create", "intervention", iid, {"status": 4, "type": 1})
        elif p["auto_created"]:
            planned = {"routineId": p["routine"]}
            add(created, o, PLANNER, "auto-create", "intervention", iid, planned)
        else:
            add(created, o, user, "create", "intervention", iid, {"status": first, "type": kind})
        for aid in linked:
            moved = {"status": change(0, 1), "interventionId": iid}
            add(created, o, user, "create", "anomaly", aid, moved)
        if not p["unplanned"] and actual_start is not None:
            checked = {"status": change(first, 3), "actualStart": change(None, iso(actual_start))}
            add(actual_start, o, user, "check-in", "intervention", iid, checked)
            count += 1
        if actual_end is not None:
            name, email, action_comment, comment = p["provider"]
            if not p["unplanned"]:
                add(actual_end, o, user, "announce", "file", signature, announced)
                executed = {
                    "status": change(3, 4),
                    "actualEnd": change(None, iso(actual_end)),
                    "providerName": change(None, name),
                    "providerEmail": change(None, email),
                    "providerActionComment": change(None, action_comment),
                    "providerGeneralComment": change(None, comment),
                    "attendeeCount": change(None, p["attendees"]),
                }
                provider = {"type": "provider", "name": name, "userId": creator}
                provider["profileId"] = creator
                add(actual_end, o, provider, "execute", "intervention", iid, executed)
                count += 1
            uploaded = {
                "sha256": hashlib.sha256(signature.encode()).hexdigest(),
                "size": p["size"],
                "uploadedAt": iso(actual_end),
            }
            add(actual_end, o, STORAGE, "upload", "file", signature, uploaded)
            message = f"Intervention {iid} was executed and awaits verification."
            for writer in org.writers:
                self.notifications.append(
                    (
                        config.notification_id(iid, writer),
                        org.id,
                        writer,
                        "intervention.executed",
                        iid,
                        message,
                        p["verified_at"],
                        actual_end,
                    )
                )
        verified_at = p["verified_at"]
        if verified_at is not None:
            verifier = self.actor(p["verifier"])
            for aid in linked:
                moved = {"status": change(1, 2 if status == 5 else 0), "interventionId": iid}
                add(verified_at, o, verifier, "verify", "anomaly", aid, moved)
            verdict = {
                "status": change(4, status),
                "decision": status - 4,
                "decisionComment": p["decision"],
            }
            add(verified_at, o, verifier, "verify", "intervention", iid, verdict)
            count += 1
        deleted_at = p["deleted_at"]
        if deleted_at is not None:
            for aid in linked:
                moved = {"status": change(1, 0), "interventionId": iid}
                add(deleted_at, o, user, "cancel", "anomaly", aid, moved)
            cancelled = {
                "status": change(first, 7),
                "deletedAt": change(None, iso(deleted_at)),
                "cancellationReason": change(None, p["reason"]),
            }
            add(deleted_at, o, user, "cancel", "intervention", iid, cancelled)
            count += 1
        return count


# Bulk loading -------------------------------------------------------------------------------


async def create_database(scale: Scale) -> None:
    conn = await asyncpg.connect(config.ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{scale.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{scale.database}"')
    finally:
        await conn.close()


async def drop_constraints(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """Drop foreign keys and secondary indexes; return the statements that recreate them."""
    fks = await conn.fetch(
        """SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
           FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"""
    )
    indexes = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           WHERE c.relnamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"""
    )
    for fk in fks:
        await conn.execute(f'ALTER TABLE {fk["tbl"]} DROP CONSTRAINT "{fk["conname"]}"')
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    return (
        [index["def"] for index in indexes],
        [f'ALTER TABLE {fk["tbl"]} ADD CONSTRAINT "{fk["conname"]}" {fk["def"]}' for fk in fks],
    )


async def advance_sequences(conn: asyncpg.Connection) -> None:
    """Every serial id continues after the generated ones."""
    rows = await conn.fetch(
        """SELECT c.table_name, pg_get_serial_sequence(c.table_name, c.column_name) AS seq
           FROM information_schema.columns c
           WHERE c.table_schema = 'public' AND c.column_name = 'id'
             AND pg_get_serial_sequence(c.table_name, c.column_name) IS NOT NULL"""
    )
    for row in rows:
        await conn.execute(
            f"SELECT setval('{row['seq']}', "
            f"COALESCE((SELECT max(id) FROM {row['table_name']}), 0) + 1, false)"
        )


def chunks(sequence: Sequence[int], size: int) -> Iterator[tuple[int, Sequence[int]]]:
    for start in range(0, len(sequence), size):
        yield start + 1, sequence[start : start + size]


async def generate(scale: Scale, revision: str = "head") -> dict[str, Any]:
    """Create, migrate (to ``revision``) and fill the scale's database; returns row counts
    and timings."""
    from interventions.migrate import upgrade

    timings: dict[str, float] = {}
    began = time.perf_counter()
    await create_database(scale)
    await asyncio.to_thread(upgrade, config.database_url(scale), revision)
    timings["create_and_migrate_s"] = time.perf_counter() - began

    gen = Generator(scale)
    tables = Tables()
    conn = await asyncpg.connect(config.database_url(scale))
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
        index_sql, fk_sql = await drop_constraints(conn)
        # No row trigger during the load: the journal's (migration 0004) would move a head
        # per entry copied; the heads are copied once the chains are complete.
        await conn.execute("SET session_replication_role = replica")
        columns = TextColumn("[progress.description]{task.description}")
        with Progress(
            columns, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            t = time.perf_counter()
            ref = progress.add_task("reference data", total=1)
            gen.reference(tables)
            await tables.flush(conn)
            progress.update(ref, completed=1)
            owners = gen.org_sequence()
            task = progress.add_task("interventions + links, journal", total=len(owners))
            for first, batch in chunks(owners, CHUNK):
                gen.interventions(tables, first, batch)
                await tables.flush(conn)
                progress.advance(task, len(batch))
            gen.anomalies(tables)
            gen.journal_ends(tables)
            await tables.flush(conn)
            await conn.execute("SET session_replication_role = origin")
            timings["copy_s"] = time.perf_counter() - t

            t = time.perf_counter()
            steps = progress.add_task("indexes, foreign keys", total=len(index_sql) + len(fk_sql))
            for statement in index_sql + fk_sql:  # FKs are validated here, set-based
                await conn.execute(statement)
                progress.advance(steps)
            await advance_sequences(conn)
            timings["indexes_and_fks_s"] = time.perf_counter() - t

            t = time.perf_counter()
            vacuum = progress.add_task("vacuum analyze", total=1)
            await conn.execute("VACUUM (ANALYZE)")
            progress.update(vacuum, completed=1)
            timings["vacuum_analyze_s"] = time.perf_counter() - t
    finally:
        await conn.close()
    timings["total_s"] = time.perf_counter() - began
    return {"rows": dict(tables.copied), "timings": {k: round(v, 1) for k, v in timings.items()}}


async def is_generated(scale: Scale) -> bool:
    """Whether the scale's database exists and holds the generated register."""
    try:
        conn = await asyncpg.connect(config.database_url(scale))
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        organizations = await conn.fetchval("SELECT count(*) FROM organizations")
        interventions = await conn.fetchval("SELECT max(id) FROM interventions")
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()
    return organizations == scale.organizations and (interventions or 0) >= scale.interventions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(config.SCALES), default="small")
    args = parser.parse_args()
    scale = config.SCALES[args.scale]
    report = asyncio.run(generate(scale))
    console.print(report)


if __name__ == "__main__":
    main()
