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

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "interventions@localhost"

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
