"""The ASGI application as uvicorn imports it: ``interventions.asgi:app``."""

import gc

from interventions.app import create_app

app = create_app()

# Everything built so far (modules, the app, its routes and schemas, SQLAlchemy's mappers)
# lives as long as the process: moved out of the collector's sight, it is no longer walked
# by every full collection, which otherwise shows up as a few percent of each request.
gc.collect()
gc.freeze()
