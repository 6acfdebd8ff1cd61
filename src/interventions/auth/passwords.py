"""Password hashing with Argon2id (argon2-cffi), off the event loop and bounded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anyio import CapacityLimiter, to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from interventions.errors import TooManyRequests

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that both failures take the same time.
_DUMMY_HASH = _hasher.hash("an unknown user never matches this")
# What a login turned away by a full queue should wait: about one batch of verifications.
BUSY_RETRY_AFTER_SECONDS = 1


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class PasswordGate:
    """At most ``concurrency`` verifications at once in this process, and ``queue`` more
    logins waiting for one; beyond that a login is refused at once.

    Each verification costs tens of milliseconds of CPU and 64 MiB: unbounded, a flood of
    logins (unknown e-mails cost the same) would take every core and every worker thread
    from the other requests. Verifications run in threads of their own limiter, not anyio's
    default one, which everything else run in a thread shares.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self._limiter = CapacityLimiter(concurrency)
        self._capacity = concurrency + queue
        self._admitted = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        """A place among the running and waiting verifications, or 429 at once."""
        if self._admitted >= self._capacity:
            raise TooManyRequests(
                "Too many logins are being checked; try again in a moment.",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            )
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches (``None``: no such user, the same work is done)."""
        return await to_thread.run_sync(_verify, stored_hash, password, limiter=self._limiter)
