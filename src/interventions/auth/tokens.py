"""Signed tokens: the access token (short-lived), the session token and the refresh token.

All three are HS256 JWTs signed with the service secret and all three name the server-side
session, which is what makes logout effective immediately. The session token carries exactly
the claims of the seed pages' example: ``userId``, ``sessionId``, ``iat``, ``exp``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    session_token: str


def _encode(payload: dict[str, Any], secret: str) -> str:
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def issue_access(secret: str, *, user_id: int, session_id: str, now: dt.datetime, ttl: int) -> str:
    return _encode(
        {
            "sub": str(user_id),
            "sid": session_id,
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl,
        },
        secret,
    )


def issue_all(
    secret: str,
    *,
    user_id: int,
    session_id: str,
    now: dt.datetime,
    access_ttl: int,
    session_expires: dt.datetime,
) -> IssuedTokens:
    iat = int(now.timestamp())
    exp = int(session_expires.timestamp())
    return IssuedTokens(
        access_token=issue_access(
            secret, user_id=user_id, session_id=session_id, now=now, ttl=access_ttl
        ),
        refresh_token=_encode(
            {"sub": str(user_id), "sid": session_id, "typ": "refresh", "iat": iat, "exp": exp},
            secret,
        ),
        session_token=_encode(
            {"userId": user_id, "sessionId": session_id, "typ": "session", "iat": iat, "exp": exp},
            secret,
        ),
    )


class InvalidToken(Exception):
    """The token is missing a claim, badly signed, of the wrong kind or expired."""


@functools.lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> Mapping[str, Any]:
    """Signature, structure and ``iat`` checked once per distinct token (a token that passed
    passes again); the expiry, which changes with time, is checked at every use below.
    Tokens that fail are never cached."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["exp", "iat"], "verify_exp": False},
    )
    return MappingProxyType(claims)


def decode(token: str, secret: str, kind: str) -> Mapping[str, Any]:
    try:
        claims = _verified(token, secret)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"The {kind} token is invalid.") from exc
    exp = claims["exp"]
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidToken(f"The {kind} token is invalid.")
    if exp <= time.time():  # PyJWT's rule: expired at the second named by ``exp``
        raise InvalidToken(f"The {kind} token has expired.")
    if claims.get("typ") != kind:
        raise InvalidToken(f"The {kind} token is invalid.")
    return claims


def access_identity(claims: Mapping[str, Any]) -> tuple[int, str]:
    try:
        return int(claims["sub"]), str(claims["sid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("The access token is invalid.") from exc


def session_identity(claims: Mapping[str, Any]) -> tuple[int, str]:
    user_id, session_id = claims.get("userId"), claims.get("sessionId")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(session_id, str):
        raise InvalidToken("The session token is invalid.")
    return user_id, session_id
