"""The ASGI application as uvicorn imports it: ``interventions.asgi:app``."""

from interventions.app import create_app

app = create_app()
