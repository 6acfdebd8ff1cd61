"""What the storage routes are given: the storage backend the application was made with (the
settings: ``config.AppSettings``; the database: ``db.AppDatabase``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from interventions.storage.service import Storage


async def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


CurrentStorage = Annotated[Storage, Depends(_storage)]
