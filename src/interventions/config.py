"""Settings: one object, read from environment variables prefixed ``INTERVENTIONS_``."""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with. No other module reads the environment."""

    model_config = SettingsConfigDict(env_prefix="INTERVENTIONS_", extra="ignore")

    database_url: str = "sqlite:///interventions.db"
    # PostgreSQL connections per worker process; (pool_size + max_overflow) × processes must
    # stay under the server's max_connections. Beyond pool_size, requests wait for a
    # connection: an overflow connection is closed as soon as it is returned, and opening one
    # (TLS negotiation, backend start, every statement prepared again) costs more than waiting.
    db_pool_size: int = Field(default=20, gt=0)
    db_max_overflow: int = Field(default=0, ge=0)
    # How long to wait on the database before answering 503 with Retry-After (issue 9): a
    # database out of reach or stuck must not hold requests for asyncpg's 60 s or forever.
    # Connecting (TCP, TLS, authentication) takes milliseconds on a healthy server. The
    # service's statements take milliseconds too, lock waits included, so 15 s only ends
    # stuck ones, and does so before the 30–60 s after which proxies and clients give up.
    # Waiting for a free pooled connection: 10 s of a full pool is overload, not a burst.
    # SQLite: how long a writer queues for another writer's lock (its busy timeout).
    db_connect_timeout_seconds: float = Field(default=5, gt=0)
    db_command_timeout_seconds: float = Field(default=15, gt=0)
    db_pool_timeout_seconds: float = Field(default=10, gt=0)
    db_busy_timeout_seconds: float = Field(default=30, gt=0)
    # /health gives up after this, whatever the timeouts above: a probe must not hang.
    health_timeout_seconds: float = Field(default=2, gt=0)
    # FastAPI's native OpenTelemetry (traces, metrics and logs of each request, sent through
    # the globally configured providers: ``opentelemetry-instrument`` and an SDK installed
    # beside the service). Off by default: the service ships no SDK, and FastAPI asks the
    # three global providers whether they are configured on every request (~2 % of a read's
    # CPU; bench/README.md log step 38).
    opentelemetry: bool = False
    # Signing secret for tokens and upload URLs. When empty, one is generated on first start
    # and kept in ``secret_file`` so that tokens survive a restart.
    secret_key: str = ""
    secret_file: Path = Path(".interventions-secret")

    access_token_ttl_seconds: int = Field(default=3600, gt=0)
    session_ttl_seconds: int = Field(default=24 * 3600, gt=0)

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    signature_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    upload_url_ttl_seconds: int = Field(default=15 * 60, gt=0)
    # How far in the future an ``actualStart`` may be, to absorb a phone's clock skew.
    clock_skew_seconds: int = Field(default=300, ge=0)

    login_max_failures: int = Field(default=5, gt=0)
    login_window_seconds: int = Field(default=15 * 60, gt=0)

    # Invitations to join an organisation: how long the e-mailed link works, and the page of
    # the web app that accepts it (``?token=…`` is appended). Without one, the link is
    # ``<public URL>/invitations/accept``.
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    invitation_url: str = ""

    storage_dir: Path = Path("var/storage")
    # Absolute base URL clients use to reach the service (for presigned URLs). When empty,
    # the URL of the incoming request is used.
    public_url: str = ""

    # Storage of signature files: "local" (the service's own signed URLs, files under
    # storage_dir) or "s3" (any S3-compatible endpoint, presigned by boto3).
    storage_backend: str = Field(default="local", pattern="^(local|s3)$")
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""

    # E-mail delivery. With no smtp_host, messages are written as .eml files to outbox_dir.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    smtp_from: str = "interventions@localhost"
    outbox_dir: Path = Path("var/outbox")
    relay_batch_size: int = Field(default=50, gt=0)
    relay_interval_seconds: float = Field(default=2, gt=0)
    relay_lease_seconds: int = Field(default=120, gt=0)
    relay_max_backoff_seconds: int = Field(default=3600, gt=0)
    # The embedded default relays in the serving process; with PostgreSQL run
    # `interventions worker` instead (or as well: relays never send a row twice at once).
    relay_in_process: bool | None = None

    # Webhooks (issue 12, item 4). Receivers on loopback, private, link-local… addresses are
    # refused (at creation and at every send) unless the operator allows them.
    webhooks_allow_private_networks: bool = False
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    # The Standard Webhooks retry schedule is multiplied by this (tests make it small).
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    # A receiver's Retry-After is honoured up to this many seconds.
    webhook_retry_after_max_seconds: int = Field(default=36_000, gt=0)
    # An endpoint every attempt of which has failed for this long is disabled, its admins
    # e-mailed.
    webhook_disable_after_hours: float = Field(default=120, gt=0)
    webhook_batch_size: int = Field(default=100, gt=0)
    # Journal entries read per endpoint and fan-out transaction.
    webhook_fanout_batch_size: int = Field(default=1000, gt=0)
    webhook_interval_seconds: float = Field(default=1, gt=0)
    webhook_lease_seconds: int = Field(default=120, gt=0)
    # Endpoints sent to at once by one relay, and requests in flight to one endpoint (1: one
    # after another, in journal order; more: no order, which Standard Webhooks does not
    # promise anyway, and far more throughput when each round trip waits).
    webhook_concurrency: int = Field(default=8, gt=0)
    webhook_endpoint_concurrency: int = Field(default=10, gt=0)

    # Routine planning by the worker.
    planner_interval_seconds: float = Field(default=60, gt=0)
    # How often the worker marks overdue interventions and accepts executed ones
    # automatically (``interventions/overdue.py``).
    overdue_interval_seconds: float = Field(default=300, gt=0)

    # Calendar feeds (``/integrations/v1/calendar/{token}.ics``): the interventions scheduled
    # from this many days ago to this many days ahead, at most this many (the earliest first).
    calendar_feed_past_days: int = Field(default=90, ge=0, le=36500)
    calendar_feed_future_days: int = Field(default=365, ge=0, le=36500)
    calendar_feed_max_events: int = Field(default=1000, gt=0, le=100_000)

    # PIN check-in attempts per intervention and per caller in the window.
    pin_max_failures: int = Field(default=5, gt=0)
    pin_window_seconds: int = Field(default=15 * 60, gt=0)

    # Rate limits and proxy trust (issue 9). Every limit is counted in the database, so that
    # all worker processes share it, and charged before the work it guards.
    # Failed logins per client address, whatever the e-mail (the per-e-mail limit above is
    # per e-mail and client address).
    login_client_max_failures: int = Field(default=20, gt=0)
    login_client_window_seconds: int = Field(default=60, gt=0)
    # Password verifications at once in one process (each Argon2 check takes ~50 ms of CPU
    # and 64 MiB), and how many more logins may wait for one before a quick 429.
    login_concurrency: int = Field(default=2, gt=0)
    login_queue: int = Field(default=32, ge=0)
    # Information e-mails (POST …/emails/informations) an organisation may send per hour.
    information_emails_per_hour: int = Field(default=100, gt=0)
    # Invitation e-mails (POST /profiles/v1/rs) an organisation may send per hour.
    invitation_emails_per_hour: int = Field(default=50, gt=0)
    # Addresses or networks (comma-separated, e.g. "127.0.0.1, 10.0.0.0/8") of the reverse
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed. None by default: the
    # client is the connection's peer, so a header cannot pick the address limits key on.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                ipaddress.ip_network(item.strip())  # at start-up, naming the wrong entry
        return value

    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    # The register (issue 11): checkpoints sign journal heads with Ed25519 keys kept as
    # PKCS#8 PEM files in ``register_keys_dir`` (default: ``.interventions-register-keys``
    # beside ``secret_file``), generated on first use; or, for several servers without a
    # shared disk, the current key itself in ``register_signing_key`` (PKCS#8 PEM text).
    register_keys_dir: Path | None = None
    register_signing_key: str = ""
    # How often the worker signs the head of each journal that moved since its checkpoint.
    checkpoint_interval_seconds: float = Field(default=3600, gt=0)
    # An RFC 3161 time-stamping authority (optional): each checkpoint is time-stamped there.
    tsa_url: str = ""
    tsa_timeout_seconds: float = Field(default=10, gt=0)

    def resolved_register_keys_dir(self) -> Path:
        if self.register_keys_dir is not None:
            return self.register_keys_dir
        return self.secret_file.parent / ".interventions-register-keys"

    # How long an Idempotency-Key holds its first answer (per organisation and caller).
    idempotency_ttl_hours: int = Field(default=24, gt=0)

    log_sql: bool = False

    def resolved_secret(self) -> str:
        """The signing secret: configured, or kept in ``secret_file`` (created when missing)."""
        if self.secret_key:
            return self.secret_key
        path = self.secret_file
        if path.exists():
            value = path.read_text(encoding="utf-8").strip()
            if value:
                return value
        value = secrets.token_urlsafe(48)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def app_settings(request: Request) -> Settings:
    """The running application's settings (the ones ``create_app`` was given)."""
    settings: Settings = request.app.state.settings
    return settings


# How routers reach the settings: a dependency, never ``app.state`` in an endpoint's body.
AppSettings = Annotated[Settings, Depends(app_settings)]
