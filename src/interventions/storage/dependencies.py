"""What the storage routes are given: the database and the storage backend the application
was made with (the settings: ``config.AppSettings``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from interventions.db import Database
from interventions.storage.service import Storage


async def _database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


# The database itself, for what runs in transactions of its own (an upload holds none while
# its body arrives; the first download links a file in its own write).
AppDatabase = Annotated[Database, Depends(_database)]
CurrentStorage = Annotated[Storage, Depends(_storage)]
