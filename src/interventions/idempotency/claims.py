"""A key in flight: the claim a request under an ``Idempotency-Key`` takes before its work,
so that the same key sent again while the first request runs is a 409 (draft-ietf-httpapi-
idempotency-key-header, section 2.6) instead of waiting for it or doing the work twice.

- **PostgreSQL:** the caller's session look-up, the first statement of every authenticated
  request, takes ``pg_try_advisory_xact_lock`` on a 64-bit hash of (organisation, user, key)
  when the header is present (``auth.dependencies``): no statement more, released by the
  transaction's COMMIT or ROLLBACK, and seen by every worker process.
- **SQLite:** a write holds the database's lock from ``BEGIN IMMEDIATE`` to COMMIT, so a
  second request would only queue behind the first there. The claim is taken before the
  transaction, on (user, key) — the access token names the user before any statement — in
  this process (a set) and across the processes serving the same file (a POSIX byte-range
  lock, at the key's hash, on ``<database>.keys.lock`` beside it). A user's two organisations
  share their claims: a key sent to both at the same instant gets one 409, where a UUID key
  never meets another.

A claim is released when the request is over, after its transaction has ended.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass, field

from interventions.errors import Conflict

# Where the IdempotencyKeys middleware leaves the request's key, for the caller's look-up;
# and where that look-up leaves an SQLite claim, for the middleware to release.
KEY_SCOPE = "interventions.idempotency_key"
CLAIM_SCOPE = "interventions.idempotency_claim"


class KeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; send it again "
            "in a moment to get its answer."
        )


def _hash64(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2  # an offset (+1) within a 64-bit off_t


@dataclass
class _Claims:
    """The claims of one SQLite database in this process."""

    path: str | None  # the lock file; None for an in-memory database
    held: set[tuple[int, str]] = field(default_factory=set)
    fd: int | None = None
    guard: threading.Lock = field(default_factory=threading.Lock)

    def take(self, user_id: int, key: str) -> bool:
        ident = (user_id, key)
        with self.guard:
            if ident in self.held:
                return False
            if self.path is not None:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _hash64(*ident))
                except OSError as error:
                    if error.errno in (errno.EACCES, errno.EAGAIN):
                        return False  # another process holds it
                    raise
            self.held.add(ident)
            return True

    def release(self, user_id: int, key: str) -> None:
        ident = (user_id, key)
        with self.guard:
            if ident not in self.held:
                return
            self.held.discard(ident)
            if self.fd is not None:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, _hash64(*ident))


# One per database file and process, never closed: POSIX locks belong to the process, and
# closing any descriptor of the file would drop all of them.
_BY_DATABASE: dict[str | None, _Claims] = {}
_REGISTRY = threading.Lock()


def sqlite_claims(database_file: str | None) -> _Claims:
    """The claims of the SQLite database at ``database_file`` (``None``: in memory)."""
    if database_file in (None, "", ":memory:"):
        database_file = None
    path = None if database_file is None else os.path.abspath(database_file)
    with _REGISTRY:
        found = _BY_DATABASE.get(path)
        if found is None:
            found = _BY_DATABASE[path] = _Claims(None if path is None else f"{path}.keys.lock")
        return found


@dataclass(frozen=True)
class Claim:
    """An SQLite claim taken for a request: released by ``IdempotencyKeys`` at its end."""

    claims: _Claims
    user_id: int
    key: str

    def release(self) -> None:
        self.claims.release(self.user_id, self.key)


def claim_sqlite(database_file: str | None, user_id: int, key: str) -> Claim:
    """Claim (user, key) for this request, or ``KeyInFlight``."""
    claims = sqlite_claims(database_file)
    if not claims.take(user_id, key):
        raise KeyInFlight()
    return Claim(claims, user_id, key)
