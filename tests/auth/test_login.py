"""Login, the two tokens every other endpoint needs, refresh, logout and roles (SPEC §3)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from interventions.auth import tokens
from interventions.auth.models import Profile
from interventions.config import Settings
from interventions.db import utcnow
from tests.factories import PASSWORD, Factory, Member, Org
from tests.helpers import (
    CURATIVE,
    LOGIN,
    LOGOUT,
    ME,
    NOTIFICATIONS,
    ROUTINE,
    TRAINING,
    UNPLANNED,
    assert_problem,
    create,
    curative_body,
    intervention_url,
    routine_body,
    training_create_body,
    unplanned_body,
)

REFRESH = "/auth/v1/rs/refresh"


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password, **extra})


def headers_of(data: dict[str, str]) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {data['accessToken']}",
        "x-session-token": data["sessionToken"],
    }


async def login_headers(client: httpx.AsyncClient, member: Member) -> dict[str, str]:
    r = await login(client, member.email)
    assert r.status_code == 201, r.text
    return {**headers_of(r.json()["data"]), "refresh": r.json()["data"]["refreshToken"]}


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def tamper(token: str, **changes: Any) -> str:
    """The same header and signature over a payload with ``changes``."""
    head, _, signature = token.split(".")
    payload = json.dumps({**claims(token), **changes}).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


# --- login --------------------------------------------------------------------------------


async def test_login_returns_three_working_tokens(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    r = await login(client, org.manager.email)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()["data"]
    assert set(data) == {"accessToken", "refreshToken", "sessionToken"}
    assert all(isinstance(v, str) and v for v in data.values())
    assert len(set(data.values())) == 3

    session = claims(data["sessionToken"])
    assert {"userId", "sessionId", "iat", "exp"} <= session.keys()
    assert session["userId"] == org.manager.user_id
    assert session["exp"] - session["iat"] == 24 * 3600
    access = claims(data["accessToken"])
    assert access["exp"] - access["iat"] == 3600

    me = await client.get(ME, headers=headers_of(data))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["userId"] == org.manager.user_id
    assert me.json()["data"]["organizationId"] == org.id


@pytest.mark.parametrize("spelling", [str.upper, str.title])
async def test_login_email_is_case_insensitive(
    client: httpx.AsyncClient, factory: Factory, spelling: Any
) -> None:
    org = await factory.org()
    r = await login(client, spelling(org.admin.email))
    assert r.status_code == 201, r.text
    me = await client.get(ME, headers=headers_of(r.json()["data"]))
    assert me.json()["data"]["userId"] == org.admin.user_id


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    wrong = assert_problem(await login(client, org.admin.email, "not the password"), 401)
    unknown = assert_problem(await login(client, "nobody-" + org.admin.email), 401)
    assert wrong["detail"] == unknown["detail"]
    assert wrong["title"] == unknown["title"]
    assert wrong["type"] == unknown["type"]
    # A wrong password with a valid organisation is still only "wrong credentials".
    r = await login(client, org.admin.email, "not the password", organizationId=org.id)
    assert assert_problem(r, 401)["detail"] == wrong["detail"]


@pytest.mark.parametrize("who", ["known", "unknown"])
async def test_repeated_failures_are_rate_limited(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, who: str
) -> None:
    org = await factory.org()
    email = org.viewer.email if who == "known" else "ghost-" + org.viewer.email
    for _ in range(3):  # the settings fixture allows 3 failures
        assert_problem(await login(client, email, "wrong password"), 401)
    r = await login(client, email, PASSWORD)  # even the right password is refused now
    assert_problem(r, 429)
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= settings.login_window_seconds
    assert_problem(await login(client, email.upper(), PASSWORD), 429)


async def test_user_in_two_organisations(client: httpx.AsyncClient, factory: Factory) -> None:
    home, other, stranger = await factory.org(), await factory.org(), await factory.org()
    async with factory.db.writer() as s, s.begin():
        profile = Profile(user_id=home.admin.user_id, organization_id=other.id, role="viewer")
        s.add(profile)
        await s.flush()
        second_profile = profile.id

    assert_problem(await login(client, home.admin.email), 422)  # which organisation?

    in_home = await login(client, home.admin.email, organizationId=home.id)
    in_other = await login(client, home.admin.email, organizationId=other.id)
    assert in_home.status_code == 201, in_home.text
    assert in_other.status_code == 201, in_other.text
    me_home = (await client.get(ME, headers=headers_of(in_home.json()["data"]))).json()["data"]
    me_other = (await client.get(ME, headers=headers_of(in_other.json()["data"]))).json()["data"]
    assert (me_home["organizationId"], me_home["role"]) == (home.id, "admin")
    assert me_home["profileId"] == home.admin.profile_id
    assert (me_other["organizationId"], me_other["role"]) == (other.id, "viewer")
    assert me_other["profileId"] == second_profile
    assert me_home["userId"] == me_other["userId"] == home.admin.user_id

    # Each session sees its own organisation only.
    iid = await create(client, ROUTINE, routine_body(home), home)
    got = await client.get(intervention_url(iid), headers=headers_of(in_home.json()["data"]))
    assert got.status_code == 200
    hidden = await client.get(intervention_url(iid), headers=headers_of(in_other.json()["data"]))
    assert_problem(hidden, 404)
    # …and the role of that organisation: a viewer there.
    write = await client.post(
        ROUTINE, json=routine_body(other), headers=headers_of(in_other.json()["data"])
    )
    assert_problem(write, 403)

    # An organisation the user is not in behaves as one that does not exist.
    not_member = assert_problem(
        await login(client, home.admin.email, organizationId=stranger.id), 422
    )
    missing = assert_problem(
        await login(client, home.admin.email, organizationId=9007199254740991), 422
    )
    assert not_member["detail"] == missing["detail"]
    # Without the right password nothing is said about memberships.
    r = await login(client, home.admin.email, "wrong password", organizationId=stranger.id)
    assert_problem(r, 401)


async def test_single_organisation_user_naming_another_organisation(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org, stranger = await factory.org(), await factory.org()
    assert_problem(await login(client, org.manager.email, organizationId=stranger.id), 422)
    ok = await login(client, org.manager.email, organizationId=org.id)
    assert ok.status_code == 201, ok.text


# --- every authenticated endpoint rejects bad credentials ----------------------------------


@dataclass
class World:
    org: Org
    requests: list[tuple[str, str, dict[str, Any] | None]]


async def world(client: httpx.AsyncClient, factory: Factory) -> World:
    org = await factory.org()
    preventive = await create(client, ROUTINE, routine_body(org), org)
    training = await create(client, TRAINING, training_create_body(org), org)
    r = await client.post(UNPLANNED, json=unplanned_body(org), headers=org.admin.headers)
    assert r.status_code == 201, r.text
    executed = r.json()["data"]
    return World(
        org,
        [
            ("GET", intervention_url(executed["id"]), None),
            ("GET", NOTIFICATIONS, None),
            ("GET", ME, None),
            ("GET", executed["imgSignature"], None),
            ("POST", CURATIVE, curative_body(org)),
            ("POST", UNPLANNED, unplanned_body(org)),
            ("PATCH", f"/interventions/v2/rs/preventive/{preventive}", {"description": "x"}),
            ("PATCH", f"{TRAINING}/{training}", {"description": "x"}),
            (
                "PATCH",
                f"{intervention_url(executed['id'])}/verify",
                {"decisionComment": "ok", "decision": 1},
            ),
            ("POST", ROUTINE, routine_body(org)),
            ("POST", TRAINING, training_create_body(org)),
            ("POST", LOGOUT, None),
        ],
    )


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> httpx.Response:
    return await client.request(method, url, json=body, headers=headers)


def session_id(member: Member) -> str:
    return str(claims(member.headers["x-session-token"])["sessionId"])


async def bad_headers(
    mode: str, client: httpx.AsyncClient, factory: Factory, org: Org
) -> dict[str, str]:
    admin, manager = org.admin, org.manager
    access, session = bearer(admin.headers), admin.headers["x-session-token"]
    sid, uid, now = session_id(admin), admin.user_id, utcnow()
    past = now - dt.timedelta(hours=30)
    if mode == "no headers":
        return {}
    if mode == "only Authorization":
        return {"Authorization": f"Bearer {access}"}
    if mode == "only x-session-token":
        return {"x-session-token": session}
    if mode == "Basic scheme":
        basic = base64.b64encode(f"{admin.email}:{PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "x-session-token": session}
    if mode == "token without scheme":
        return {"Authorization": access, "x-session-token": session}
    if mode == "empty bearer":
        return {"Authorization": "Bearer ", "x-session-token": session}
    if mode == "garbage tokens":
        return {"Authorization": "Bearer not.a.token", "x-session-token": "not-a-token"}
    if mode == "tampered access token":
        forged = tamper(access, sub=str(manager.user_id), sid=session_id(manager))
        return {
            "Authorization": f"Bearer {forged}",
            "x-session-token": manager.headers["x-session-token"],
        }
    if mode == "tampered session token":
        forged = tamper(session, exp=int(now.timestamp()) + 10 * 24 * 3600)
        return {"Authorization": f"Bearer {access}", "x-session-token": forged}
    if mode == "alg none":
        payload = {**claims(access)}
        unsigned = jwt.encode(payload, key=None, algorithm="none")
        return {"Authorization": f"Bearer {unsigned}", "x-session-token": session}
    if mode == "expired access token":
        expired = tokens.issue_access(
            factory.secret, user_id=uid, session_id=sid, now=now - dt.timedelta(hours=2), ttl=3600
        )
        return {"Authorization": f"Bearer {expired}", "x-session-token": session}
    if mode == "expired session token":
        old = tokens.issue_all(
            factory.secret,
            user_id=uid,
            session_id=sid,
            now=past,
            access_ttl=3600,
            session_expires=past + dt.timedelta(hours=24),
        )
        return {"Authorization": f"Bearer {access}", "x-session-token": old.session_token}
    if mode == "another user's session":
        return {
            "Authorization": f"Bearer {access}",
            "x-session-token": manager.headers["x-session-token"],
        }
    if mode == "another session of the same user":
        other = await login_headers(client, admin)
        return {"Authorization": f"Bearer {access}", "x-session-token": other["x-session-token"]}
    if mode == "session that does not exist":
        minted = tokens.issue_all(
            factory.secret,
            user_id=uid,
            session_id="no-such-session",
            now=now,
            access_ttl=3600,
            session_expires=now + dt.timedelta(hours=24),
        )
        return headers_of(
            {"accessToken": minted.access_token, "sessionToken": minted.session_token}
        )
    if mode == "revoked session":
        revoked = await login_headers(client, admin)
        r = await client.post(LOGOUT, headers={k: v for k, v in revoked.items() if k != "refresh"})
        assert r.status_code == 204, r.text
        return {k: v for k, v in revoked.items() if k != "refresh"}
    if mode == "another secret":
        minted = tokens.issue_access(
            "another-secret-" + "y" * 32, user_id=uid, session_id=sid, now=now, ttl=3600
        )
        return {"Authorization": f"Bearer {minted}", "x-session-token": session}
    if mode == "refresh token as access token":
        issued = await login_headers(client, admin)
        return {
            "Authorization": f"Bearer {issued['refresh']}",
            "x-session-token": issued["x-session-token"],
        }
    if mode == "session token as access token":
        return {"Authorization": f"Bearer {session}", "x-session-token": session}
    assert mode == "access token as session token"
    return {"Authorization": f"Bearer {access}", "x-session-token": access}


BAD_CREDENTIALS = [
    "no headers",
    "only Authorization",
    "only x-session-token",
    "Basic scheme",
    "token without scheme",
    "empty bearer",
    "garbage tokens",
    "tampered access token",
    "tampered session token",
    "alg none",
    "expired access token",
    "expired session token",
    "another user's session",
    "another session of the same user",
    "session that does not exist",
    "revoked session",
    "another secret",
    "refresh token as access token",
    "session token as access token",
    "access token as session token",
]


@pytest.mark.parametrize("mode", BAD_CREDENTIALS)
async def test_every_endpoint_rejects(
    client: httpx.AsyncClient, factory: Factory, mode: str
) -> None:
    w = await world(client, factory)
    headers = await bad_headers(mode, client, factory, w.org)
    failures = []
    for method, url, body in w.requests:
        r = await call(client, method, url, body, headers)
        try:
            assert_problem(r, 401)
        except AssertionError as exc:
            failures.append(f"{method} {url}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)
    # Nothing was done on the caller's behalf: the anomaly is still open, nobody was notified
    # again, the admin's own session still works.
    org = w.org
    notes = (await client.get(NOTIFICATIONS, headers=org.admin.headers)).json()
    assert notes["totalCount"] == 1
    r = await client.post(CURATIVE, json=curative_body(org), headers=org.admin.headers)
    assert r.status_code == 201, r.text


async def test_header_names_are_case_insensitive(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    h = org.admin.headers
    for headers in (
        {"AUTHORIZATION": h["Authorization"], "X-SESSION-TOKEN": h["x-session-token"]},
        {"authorization": h["Authorization"], "X-Session-Token": h["x-session-token"]},
    ):
        r = await client.get(ME, headers=headers)
        assert r.status_code == 200, r.text


# --- refresh and logout -------------------------------------------------------------------


async def test_refresh_gives_a_working_access_token(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    issued = await login_headers(client, org.manager)
    r = await client.post(REFRESH, json={"refreshToken": issued["refresh"]})
    assert r.status_code in (200, 201), r.text
    assert r.headers["content-type"] == "application/json"
    access = r.json()["data"]["accessToken"]
    assert claims(access)["exp"] > int(utcnow().timestamp())
    headers = {"Authorization": f"Bearer {access}", "x-session-token": issued["x-session-token"]}
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["data"]["userId"] == org.manager.user_id
    # The new access token belongs to its own session only.
    other = {**headers, "x-session-token": org.manager.headers["x-session-token"]}
    assert_problem(await client.get(ME, headers=other), 401)


async def test_refresh_refuses_other_tokens(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    issued = await login_headers(client, org.manager)
    for token in (
        bearer(issued),
        issued["x-session-token"],
        "garbage",
        tamper(issued["refresh"], sub="1"),
    ):
        assert_problem(await client.post(REFRESH, json={"refreshToken": token}), 401)
    expired = tokens.issue_all(
        factory.secret,
        user_id=org.manager.user_id,
        session_id=str(claims(issued["refresh"])["sid"]),
        now=utcnow() - dt.timedelta(hours=30),
        access_ttl=3600,
        session_expires=utcnow() - dt.timedelta(hours=6),
    )
    assert_problem(await client.post(REFRESH, json={"refreshToken": expired.refresh_token}), 401)
    assert_problem(await client.post(REFRESH, json={}), 400, "refreshToken")
    assert_problem(await client.post(REFRESH, json={"refreshToken": 1}), 400, "refreshToken")


async def test_logout_revokes_both_tokens(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    issued = await login_headers(client, org.admin)
    refresh = issued.pop("refresh")
    assert (await client.get(ME, headers=issued)).status_code == 200

    r = await client.post(LOGOUT, headers=issued)
    assert r.status_code == 204, r.text
    assert r.content == b""

    assert_problem(await client.get(ME, headers=issued), 401)
    assert_problem(await client.get(NOTIFICATIONS, headers=issued), 401)
    assert_problem(await client.post(ROUTINE, json=routine_body(org), headers=issued), 401)
    assert_problem(await client.post(LOGOUT, headers=issued), 401)
    assert_problem(await client.post(REFRESH, json={"refreshToken": refresh}), 401)
    # A fresh access token minted for the revoked session does not revive it.
    sid = str(claims(issued["x-session-token"])["sessionId"])
    minted = tokens.issue_access(
        factory.secret, user_id=org.admin.user_id, session_id=sid, now=utcnow(), ttl=3600
    )
    assert_problem(
        await client.get(ME, headers={**issued, "Authorization": f"Bearer {minted}"}), 401
    )
    # The user's other sessions live on.
    assert (await client.get(ME, headers=org.admin.headers)).status_code == 200


# --- roles --------------------------------------------------------------------------------


async def test_viewer_may_not_write(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await world(client, factory)
    org = w.org
    writes = [(m, u, b) for m, u, b in w.requests if m != "GET" and u != LOGOUT]
    assert len(writes) == 7
    snapshots = {
        url: (await client.get(url, headers=org.admin.headers)).json()
        for url in (intervention_url(i) for i in _ids(w))
    }
    failures = []
    for method, url, body in writes:
        r = await call(client, method, url, body, org.viewer.headers)
        try:
            assert_problem(r, 403)
        except AssertionError as exc:
            failures.append(f"{method} {url}: {exc}".splitlines()[0])
    assert not failures, "\n".join(failures)
    for url, before in snapshots.items():
        assert (await client.get(url, headers=org.admin.headers)).json() == before
    notes = (await client.get(NOTIFICATIONS, headers=org.admin.headers)).json()
    assert notes["totalCount"] == 1
    r = await client.post(CURATIVE, json=curative_body(org), headers=org.admin.headers)
    assert r.status_code == 201, r.text  # the anomaly was not taken by the viewer


def _ids(w: World) -> list[int]:
    """The intervention ids named in the world's URLs."""
    out = []
    for _, url, _ in w.requests:
        tail = url.removesuffix("/verify").rsplit("/", 1)[-1]
        if url.startswith("/interventions/") and tail.isdigit():
            out.append(int(tail))
    return sorted(set(out))


async def test_viewer_may_read(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await world(client, factory)
    viewer = w.org.viewer
    for url in [intervention_url(i) for i in _ids(w)] + [NOTIFICATIONS, ME]:
        r = await client.get(url, headers=viewer.headers)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["content-type"] == "application/json"
    notes = (await client.get(NOTIFICATIONS, headers=viewer.headers)).json()
    assert notes["data"] == []  # only admins and managers are told about executions
    assert notes["totalCount"] == 0


@pytest.mark.parametrize("role", ["admin", "manager", "viewer"])
async def test_me_returns_the_caller(
    client: httpx.AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member: Member = getattr(org, role)
    r = await client.get(ME, headers=member.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["userId"] == member.user_id
    assert data["profileId"] == member.profile_id
    assert data["organizationId"] == org.id
    assert data["role"] == role
    assert data["email"] == member.email


async def test_a_verified_token_still_expires() -> None:
    """Signatures are verified once per token and cached; the expiry is checked at each use."""
    secret = "s" * 32
    now = utcnow()
    token = tokens.issue_access(secret, user_id=7, session_id="sid", now=now, ttl=2)
    assert tokens.access_identity(tokens.decode(token, secret, "access")) == (7, "sid")
    # The cached verification of this very token must not outlive its expiry.
    await asyncio.sleep(int(now.timestamp()) + 2 - time.time() + 0.05)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.decode(token, secret, "access")
    # Neither may it serve another secret, or another kind of token.
    with pytest.raises(tokens.InvalidToken):
        tokens.decode(token, "t" * 32, "access")
    fresh = tokens.issue_access(secret, user_id=7, session_id="sid", now=utcnow(), ttl=60)
    tokens.decode(fresh, secret, "access")
    with pytest.raises(tokens.InvalidToken, match="session token is invalid"):
        tokens.decode(fresh, secret, "session")
