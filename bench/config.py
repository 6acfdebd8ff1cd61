"""What every part of the harness agrees on: scales, database names, accounts, paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# Logs, wrk output, Lua data files, profiles: kept out of git (.gitignore has this folder).
RAW_DIR = RESULTS_DIR / "raw"
LUA_DIR = BENCH_DIR / "lua"

# A large run also runs each scenario on the service on the small register (REFERENCE) and at
# once on the service on the large one (PAIRED): the p50 comparison then uses figures made
# seconds apart, not hours, on a host whose speed drifts.
REFERENCE = "service@small"
PAIRED = "service@large"

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HOST = "127.0.0.1"

# Every generated account has this password; its Argon2 hash is computed once and reused.
PASSWORD = "bench-password-0001"
# A fixed signing secret, so that tokens obtained once serve every server start of a run.
SECRET = "bench-secret-" + "b" * 40

# Per organisation: one admin, two managers, three viewers (profile id = user id).
ROLES = ("admin", "manager", "manager", "viewer", "viewer", "viewer")
RULES_PER_ORG = 12  # ten checks (type 1) and two training rules (type 2)
CHECK_RULES = 10
BASE_RULES = 3  # every site carries the first three check rules (alarm, extinguishers, lights)
RULES_PER_SITE = 6
COMPANY_TYPES = (1, 2, 2, 3)  # verification body, two maintainers, a training body
CONTACTS_PER_COMPANY = 2


@dataclass(frozen=True)
class Scale:
    """The size of a generated register. Per-organisation sizes vary (see ``org_weights``)."""

    name: str
    organizations: int
    sites: int
    anomalies: int
    interventions: int
    # How many organisations' admins the load logs in as (their data is what the load uses).
    load_organizations: int

    @property
    def database(self) -> str:
        return f"interventions_bench_{self.name}"


SCALES = {
    # The issue fixes organisations and interventions; sites and anomalies are ours: enough
    # anomalies that curative writes find open ones for a whole run.
    "small": Scale("small", 10, 200, 15_000, 10_000, load_organizations=10),
    "large": Scale("large", 200, 20_000, 200_000, 1_000_000, load_organizations=50),
}


def database_url(scale: Scale) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{scale.database}"


def user_id(org: int, index: int) -> int:
    """The id of the ``index``-th account (see ``ROLES``) of organisation ``org`` (1-based)."""
    return (org - 1) * len(ROLES) + index + 1


def email(org: int, index: int) -> str:
    return f"{ROLES[index]}{index}.org{org}@bench.example"


def notification_id(intervention_id: int, user: int) -> str:
    """Deterministic ids for generated notifications, so the load can name them."""
    return f"ntf_{intervention_id:016x}{user:016x}"
