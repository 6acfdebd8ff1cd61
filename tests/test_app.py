"""The application as ``create_app`` builds it: what the operator's settings switch."""

from __future__ import annotations

import pytest
from fastapi.telemetry import _asgi
from opentelemetry import trace

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database


class ConfiguredTracerProvider(trace.NoOpTracerProvider):
    """What an OpenTelemetry SDK installs globally: a provider FastAPI counts as configured."""


@pytest.fixture
def configured_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_asgi.trace, "get_tracer_provider", ConfiguredTracerProvider)


@pytest.mark.usefixtures("configured_tracing")
def test_fastapi_telemetry_is_off_unless_asked_for(settings: Settings, database: Database) -> None:
    # Off by default, even with a provider configured: FastAPI would otherwise ask the global
    # providers about themselves on every request.
    assert not create_app(settings, database)._native_telemetry.enabled()
    opted_in = settings.model_copy(update={"opentelemetry": True})
    assert create_app(opted_in, database)._native_telemetry.enabled()


def test_without_a_provider_opting_in_records_nothing(
    settings: Settings, database: Database
) -> None:
    opted_in = settings.model_copy(update={"opentelemetry": True})
    assert not create_app(opted_in, database)._native_telemetry.enabled()
