"""A year of the demo organisation's history, so that its register is worth reading: checks
with French periodicities (extinguishers and SSI yearly, SSI three-yearly by an approved body,
electrical installations yearly, lifts every six weeks), evacuation drills twice a school year,
observations raised by checks, some lifted by curative works and some still open, and two
checks overdue.

Everything goes through the services (``interventions.service``, the anomalies resource), so
the history (and the journal) records every intervention, anomaly and decision. Those entries
are dated when they are written, today: that is when the demo recorded them. The facts they
record happened earlier, so each check is recorded "after the fact" (``creationStatus`` 2,
whose actual dates are its planned dates, in the past) and then one statement per
intervention writes what no service sets on such a record (the provider who signed, the
signature, the attendees) and dates the decision and the observations when they were made;
each of those writes is a journal entry of its own (action ``demo-backdate``, actor the
system "demo"), so the journal says what the demo set by hand.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import bindparam, update

from interventions.auth.dependencies import Caller
from interventions.db import Executor, Sql, table_of
from interventions.interventions import service
from interventions.interventions.models import Intervention
from interventions.interventions.schemas import (
    CurativeCreate,
    RoutineInterventionCreate,
    TrainingCreate,
    VerifyRequest,
)
from interventions.references.anomalies.schemas import AnomalyCreate
from interventions.references.anomalies.service import anomalies
from interventions.references.models import Anomaly
from interventions.register import journal
from interventions.storage import service as storage_service
from interventions.storage.service import LocalStorage, Storage

BACKDATE = "demo-backdate"  # the journal's action for what the demo wrote by hand
DEMO_ACTOR = journal.system_actor("demo")
_I = table_of(Intervention)
_A = table_of(Anomaly)
_ORG: Any = bindparam("organization_id")

# What no service writes on a check recorded after the fact, and the real dates.
_AS_SIGNED = Sql(
    update(_I)
    .where(_I.c.organization_id == _ORG, _I.c.id == bindparam("intervention_id"))
    .values(
        provider_name=bindparam("provider_name"),
        provider_email=bindparam("provider_email"),
        provider_action_comment=bindparam("report"),
        provider_general_comment=bindparam("comment"),
        signature_file_id=bindparam("signature_file_id"),
        attendee_count=bindparam("attendee_count"),
        verified_at=bindparam("verified_at"),
        updated_at=bindparam("verified_at"),
    )
)
_FOUND_AT = Sql(
    update(_A)
    .where(_A.c.organization_id == _ORG, _A.c.id == bindparam("anomaly_id"))
    .values(
        created_at=bindparam("created_at"),
        updated_at=bindparam("created_at"),
        resolved_at=bindparam("resolved_at"),
    )
)

# Rules, site rules, companies, contacts and routines the history needs (imported with the
# rest of the demo's reference data; ids continue the demo's own).
RULES = [
    (5, "Vérification triennale du SSI (organisme agréé)", 1),
    (6, "Vérification des installations électriques", 1),
]
COMPANIES = [
    (3, "Ascenseurs Lefèvre & Fils", 2, "contact@lefevre.example"),
    (4, "Élec Contrôle Bourgogne", 1, "contact@ecb.example"),
    (5, "Sécurité Incendie Méridionale", 2, "contact@sim.example"),
]
CONTACTS = [
    (3, 3, "Hélène Lefèvre", "helene@lefevre.example"),
    (4, 4, "François Garçon", "francois@ecb.example"),
    (5, 5, "Joël Bérard", "joel@sim.example"),
]
# (id, name, site rule ids, rrule, contact); site rules: rule r on site s is 3 (r - 1) + s
# for the demo's rules 1-4, and 13-18 for rules 5-6.
ROUTINES = [
    (2, "Extincteurs — vérification annuelle", [4, 5, 6], "FREQ=YEARLY", 5),
    (3, "Ascenseurs — visite toutes les six semaines", [7, 8], "FREQ=WEEKLY;INTERVAL=6", 3),
    (4, "SSI — vérification triennale", [13, 14, 15], "FREQ=YEARLY;INTERVAL=3", 1),
    (5, "Électricité Bâtiment A — vérification annuelle", [16], "FREQ=YEARLY", 4),
    (6, "Électricité Bâtiment B et gymnase — vérification annuelle", [17, 18], "FREQ=YEARLY", 4),
]
SITE_RULES = [(13 + 3 * (r - 5) + (s - 1), s, r) for r in (5, 6) for s in (1, 2, 3)]


@dataclass(frozen=True)
class Provider:
    name: str
    email: str


PAUL = Provider("Paul Durand", "paul@bc.example")
HELENE = Provider("Hélène Lefèvre", "helene@lefevre.example")
FRANCOIS = Provider("François Garçon", "francois@ecb.example")
JOEL = Provider("Joël Bérard", "joel@sim.example")
LINA = Provider("Lina Moreau", "lina@fs.example")


def signature_png(name: str) -> bytes:
    """A pen stroke drawn from the name (the same name, the same bytes)."""
    image = Image.new("RGB", (360, 120), "white")
    pen = ImageDraw.Draw(image)
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(name))
    points = []
    for x in range(20, 340, 4):
        phase = (seed % 17) / 5
        y = 60 + 28 * math.sin(x / (11 + seed % 7) + phase) * math.cos(x / (37 + seed % 5))
        points.append((x, y))
    pen.line(points, fill=(20, 30, 90), width=3)
    pen.line([(40, 95), (300, 92 - seed % 9)], fill=(20, 30, 90), width=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


class History:
    """Records the demo's past, as the admin, through the services."""

    def __init__(self, db: Executor, admin: Caller, storage: Storage | None, now: dt.datetime):
        self.db = db
        self.admin = admin
        self.storage = storage
        self.now = now

    def ago(self, days: float, hour: int = 9) -> dt.datetime:
        return (self.now - dt.timedelta(days=days)).replace(
            hour=hour, minute=0, second=0, microsecond=0
        )

    async def signature(self, provider: Provider) -> str | None:
        """A stored, uploaded signature image of the provider (local storage only: with S3
        the register prints "signature not uploaded")."""
        if not isinstance(self.storage, LocalStorage):
            return None
        data = signature_png(provider.name)
        stored = await storage_service.create_file(
            self.db,
            organization_id=self.admin.organization_id,
            user_id=self.admin.user_id,
            name=f"signature-{provider.name}.png",
            mime_type="image/png",
            size=len(data),
            actor=journal.user_actor(self.admin.user_id, self.admin.profile_id),
        )
        digest = await self.storage.store(stored, _chunks(data), max_bytes=len(data))
        # As the upload route marks it: uploaded, with the journal's entry of its SHA-256.
        await storage_service._mark_uploaded(self.db, stored, self.now, digest)
        return str(stored.id)

    async def signed(
        self,
        intervention_id: int,
        provider: Provider,
        verified_at: dt.datetime,
        *,
        report: str,
        comment: str | None = None,
        attendees: int | None = None,
        accept: bool = True,
    ) -> None:
        """The client's decision (through the service), then the provider's signature and
        the decision's real date."""
        await service.verify(
            self.db,
            self.admin,
            intervention_id,
            VerifyRequest.model_validate(
                {
                    "decision": 1 if accept else 2,
                    "decisionComment": "Rapport reçu et conforme." if accept else "À reprendre.",
                }
            ),
        )
        values = {
            "provider_name": provider.name,
            "provider_email": provider.email,
            "report": report,
            "comment": comment,
            "signature_file_id": await self.signature(provider),
            "attendee_count": attendees,
            "verified_at": verified_at,
        }
        await self.db.execute(
            _AS_SIGNED,
            organization_id=self.admin.organization_id,
            intervention_id=intervention_id,
            **values,
        )
        self.journal(journal.Subject.INTERVENTION, intervention_id, values)

    def journal(self, subject_type: str, subject_id: int, values: dict[str, Any]) -> None:
        """What the demo wrote by hand, in the journal."""
        journal.record(
            self.db,
            self.admin.organization_id,
            # Positional: the lifecycle's test reads every ``action=`` literal as a status move.
            journal.Entry(BACKDATE, subject_type, subject_id, journal.payload(values), DEMO_ACTOR),
        )

    async def check(
        self,
        routine_id: int,
        when: dt.datetime,
        provider: Provider,
        *,
        report: str,
        comment: str | None = None,
        done: bool = True,
    ) -> int:
        """A check of a routine: done (and accepted a few days later), or only planned."""
        created = await service.create_from_routine(
            self.db,
            self.admin,
            RoutineInterventionCreate.model_validate(
                {
                    "scheduledStart": _iso(when),
                    "scheduledEnd": _iso(when + dt.timedelta(hours=2)),
                    "creationStatus": 2 if done else 1,
                    "routineId": routine_id,
                }
            ),
        )
        if done:
            await self.signed(
                created.id, provider, when + dt.timedelta(days=3), report=report, comment=comment
            )
        return created.id

    async def observation(
        self, site_id: int, title: str, risk: int, raised_by: int, found_at: dt.datetime
    ) -> int:
        made = await anomalies.create(
            self.db,
            self.admin,
            AnomalyCreate.model_validate(
                {
                    "siteId": site_id,
                    "title": title,
                    "risk": risk,
                    "raisedByInterventionId": raised_by,
                }
            ),
        )
        await self.found_at(made.id, found_at, None)
        return made.id

    async def found_at(
        self, anomaly_id: int, created_at: dt.datetime, resolved_at: dt.datetime | None
    ) -> None:
        values = {"created_at": created_at, "resolved_at": resolved_at}
        await self.db.execute(
            _FOUND_AT, organization_id=self.admin.organization_id, anomaly_id=anomaly_id, **values
        )
        self.journal(journal.Subject.ANOMALY, anomaly_id, values)

    async def work(
        self,
        anomaly_ids: list[int],
        when: dt.datetime,
        description: str,
        contact_id: int,
        provider: Provider,
        found_at: dt.datetime,
        *,
        done: bool = True,
    ) -> int:
        """A curative work on observations: done and accepted (they are lifted), or planned."""
        created = await service.create_curative(
            self.db,
            self.admin,
            CurativeCreate.model_validate(
                {
                    "scheduledStart": _iso(when),
                    "scheduledEnd": _iso(when + dt.timedelta(hours=3)),
                    "anomalyIds": anomaly_ids,
                    "creationStatus": 2 if done else 1,
                    "description": description,
                    "assignedCompanyContactId": contact_id,
                }
            ),
        )
        if done:
            verified = when + dt.timedelta(days=2)
            await self.signed(created.id, provider, verified, report=description)
            for anomaly_id in anomaly_ids:
                await self.found_at(anomaly_id, found_at, verified)
        return created.id

    async def drill(self, when: dt.datetime, attendees: int, comment: str) -> int:
        created = await service.create_training(
            self.db,
            self.admin,
            TrainingCreate.model_validate(
                {
                    "scheduledStart": _iso(when),
                    "scheduledEnd": _iso(when + dt.timedelta(minutes=45)),
                    "ruleId": 4,
                    "siteIds": [1, 2, 3],
                    "creationStatus": 2,
                    "description": "Exercice d'évacuation — alarme générale",
                    "assignedCompanyContactId": 2,
                }
            ),
        )
        await self.signed(
            created.id,
            LINA,
            when + dt.timedelta(days=1),
            report="Évacuation complète, comptage aux points de rassemblement.",
            comment=comment,
            attendees=attendees,
        )
        return created.id


def drill_days(now: dt.datetime) -> list[dt.datetime]:
    """Two drills a school year: early October and mid-March, those of the last twelve months."""
    found = []
    for year in (now.year - 1, now.year):
        for month, day in ((10, 2), (3, 19)):
            when = dt.datetime(year, month, day, 10, tzinfo=dt.UTC)
            if now - dt.timedelta(days=365) < when < now - dt.timedelta(days=1):
                found.append(when)
    return sorted(found)


async def record_history(
    db: Executor, admin: Caller, storage: Storage | None, now: dt.datetime
) -> int:
    """The demo's year of history; the number of interventions it recorded."""
    h = History(db, admin, storage, now)
    ids: list[int] = []

    # Lifts, Bâtiment A and B, every six weeks; the last visit is planned and missed.
    for n in range(8, 0, -1):
        when = h.ago(14 + 42 * n - 42, hour=8)
        ids.append(
            await h.check(
                3,
                when,
                HELENE,
                report="Visite d'entretien : câbles, freins, parachute, portes palières.",
                comment="RAS" if n % 3 else "Réglage de la porte palière du 2e étage.",
                done=n != 1,
            )
        )
    lift_noise = await h.observation(
        1, "Bruit anormal de la cabine à la descente", 2, ids[-3], h.ago(98)
    )

    # Extinguishers, yearly, on the three sites.
    ext_a = await h.check(
        2,
        h.ago(300),
        JOEL,
        report="Vérification de 42 extincteurs, pesée des CO₂, contrôle des pressions.",
        comment="Deux observations, voir ci-contre.",
    )
    ids.append(ext_a)
    co2 = await h.observation(1, "Extincteur CO₂ périmé au 2e étage", 2, ext_a, h.ago(300))
    await h.observation(
        1, "Signalétique d'extincteur manquante — hall d'entrée", 1, ext_a, h.ago(300)
    )
    ids.append(
        await h.work(
            [co2],
            h.ago(280),
            "Remplacement de l'extincteur CO₂ du 2e étage",
            5,
            JOEL,
            h.ago(300),
        )
    )

    # SSI: yearly maintenance and the three-yearly check by an approved body.
    ssi = await h.check(
        1,
        h.ago(150),
        PAUL,
        report="Essais de la centrale, des déclencheurs manuels et des détecteurs.",
        comment="Un détecteur encrassé.",
    )
    ids.append(ssi)
    detector = await h.observation(
        1, "Détecteur de fumée encrassé — local poubelles", 1, ssi, h.ago(150)
    )
    ids.append(
        await h.work(
            [detector], h.ago(135), "Nettoyage et remplacement du détecteur", 1, PAUL, h.ago(150)
        )
    )
    ids.append(
        await h.check(
            4,
            h.ago(240),
            PAUL,
            report="Vérification triennale de l'ensemble du système de sécurité incendie.",
            comment="Conforme à l'article MS 73.",
        )
    )

    # Electrical installations, yearly: Bâtiment A's last check is thirteen months old.
    ids.append(
        await h.check(
            5,
            h.ago(395),
            FRANCOIS,
            report="Vérification périodique des installations électriques (Q18).",
            comment="Rapport de vérification remis.",
        )
    )
    ids.append(
        await h.check(
            6,
            h.ago(60),
            FRANCOIS,
            report="Vérification périodique des installations électriques (Q18).",
            comment="Prise de terre à reprendre dans la chaufferie.",
        )
    )
    earth = await h.observation(
        2, "Mise à la terre défaillante — chaufferie", 3, ids[-1], h.ago(60)
    )
    # Lifted later: planned, so it is in repair for now.
    ids.append(
        await h.work(
            [earth, lift_noise],
            h.ago(-10),
            "Reprise de la mise à la terre et réglage de la cabine",
            4,
            FRANCOIS,
            h.ago(60),
            done=False,
        )
    )

    for n, when in enumerate(drill_days(now)):
        ids.append(
            await h.drill(
                when,
                412 - 17 * n,
                "Évacuation en 3 min 40 s."
                if n % 2
                else "Évacuation en 4 min 10 s ; une porte "
                "coupe-feu retenue par une cale (retirée).",
            )
        )
    return len(ids)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
