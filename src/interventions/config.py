"""Settings: one object, read from environment variables prefixed ``INTERVENTIONS_``."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
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

    # Routine planning by the worker.
    planner_interval_seconds: float = Field(default=60, gt=0)

    # PIN check-in attempts per intervention and per caller in the window.
    pin_max_failures: int = Field(default=5, gt=0)
    pin_window_seconds: int = Field(default=15 * 60, gt=0)

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
