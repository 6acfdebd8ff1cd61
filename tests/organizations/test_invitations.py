"""Invitations (issue 9, item 6): nobody joins an organisation without accepting.

``POST /profiles/v1/rs`` invites: no profile, the same answer whatever the e-mail, a token
e-mailed through the outbox. The invited person accepts, logged in or with a password (or
creating their account), and only then is the profile created.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select, update

from interventions.auth.models import Invitation, Profile, User
from interventions.config import Settings
from interventions.db import Database
from interventions.notifications.models import OutboxEmail
from interventions.organizations.service import acceptance_link
from tests.factories import PASSWORD, Factory, Org
from tests.helpers import ACCEPT, ACCEPT_WITH_PASSWORD, LOGIN, ME, PROBLEM_JSON, PROFILES, ok

INVITATIONS = "/invitations/v1/rs"
INVITATION_KEYS = {
    "id",
    "organizationId",
    "email",
    "role",
    "status",
    "invitedByProfileId",
    "profileId",
    "expiresAt",
    "acceptedAt",
    "revokedAt",
    "createdAt",
}
TOKEN_IN_LINK = re.compile(r"/invitations/accept\?token=([A-Za-z0-9_-]{43,})")


def problem(r: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    assert r.status_code == status, f"status {r.status_code}, not {status}: {r.text[:500]}"
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if fields:
        named = {e["field"] for e in body.get("errors") or []}
        assert set(fields) <= named, f"{sorted(named)} lacks {fields}: {body}"
    return body


def new_email(tag: str = "new") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, org_id: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": password}
    if org_id is not None:
        body["organizationId"] = org_id
    return await client.post(LOGIN, json=body)


def headers_of(tokens: dict[str, str]) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {tokens['accessToken']}",
        "x-session-token": tokens["sessionToken"],
    }


async def invite(
    client: httpx.AsyncClient, org: Org, email: str, role: str = "viewer"
) -> dict[str, Any]:
    data: dict[str, Any] = ok(
        await client.post(PROFILES, json={"email": email, "role": role}, headers=org.admin.headers),
        202,
    )
    return data


async def emails_to(database: Database, recipient: str) -> list[OutboxEmail]:
    async with database.reader() as s:
        rows = await s.execute(
            select(OutboxEmail).where(OutboxEmail.recipient == recipient).order_by(OutboxEmail.id)
        )
        return list(rows.scalars())


async def token_for(database: Database, recipient: str) -> str:
    """The token of the latest invitation e-mail to ``recipient``, read from its link."""
    found = await emails_to(database, recipient)
    assert found, f"no e-mail to {recipient}"
    match = TOKEN_IN_LINK.search(found[-1].body)
    assert match, found[-1].body
    return match.group(1)


async def profiles_of(database: Database, user_id: int) -> list[Profile]:
    async with database.reader() as s:
        rows = await s.execute(
            select(Profile).where(Profile.user_id == user_id).order_by(Profile.id)
        )
        return list(rows.scalars())


# --- the defect: hijack and enumeration ---------------------------------------------------------


async def test_another_organisations_admin_cannot_make_your_user_a_member(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    mine: Org = await factory.org()
    theirs: Org = await factory.org()
    victim = mine.manager
    before = ok(await client.get(ME, headers=victim.headers))

    r = await client.post(
        PROFILES,
        json={"email": victim.email.upper(), "role": "admin"},
        headers=theirs.admin.headers,
    )
    invitation = ok(r, 202)
    # Nothing about the account: no user id, no names.
    assert set(invitation) == INVITATION_KEYS
    assert invitation["status"] == "pending"
    assert invitation["profileId"] is None
    assert invitation["email"] == victim.email
    assert "userId" not in r.text
    assert "Manager" not in r.text

    # No profile was created: the victim is still in one organisation only.
    assert [p.organization_id for p in await profiles_of(database, victim.user_id)] == [mine.id]
    assert ok(await client.get(f"{PROFILES}?q={victim.email}", headers=theirs.admin.headers)) == []
    tokens = ok(await login(client, victim.email), 201)
    assert ok(await client.get(ME, headers=headers_of(tokens))) == before
    assert ok(await client.get(ME, headers=victim.headers)) == before


async def test_the_answer_is_the_same_whether_the_email_has_an_account(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    known = await client.post(
        PROFILES, json={"email": other.viewer.email, "role": "viewer"}, headers=org.admin.headers
    )
    unknown = await client.post(
        PROFILES, json={"email": new_email(), "role": "viewer"}, headers=org.admin.headers
    )
    assert known.status_code == unknown.status_code == 202
    assert known.headers["content-type"] == unknown.headers["content-type"]
    a, b = known.json(), unknown.json()
    assert a.keys() == b.keys() == {"data"}
    assert a["data"].keys() == b["data"].keys() == INVITATION_KEYS
    varying = {"id", "email", "expiresAt", "createdAt"}

    def same(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in varying}

    assert same(a["data"]) == same(b["data"])


async def test_a_member_of_this_organisation_is_a_409(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    body = {"email": org.viewer.email.upper(), "role": "manager"}
    problem(await client.post(PROFILES, json=body, headers=org.admin.headers), 409, "email")
    # Admins no longer set anyone's password or names.
    extra = {"email": new_email(), "role": "viewer", "password": "a long enough password"}
    problem(await client.post(PROFILES, json=extra, headers=org.admin.headers), 400, "password")


async def test_only_admins_invite_and_manage_invitations(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    pending = await invite(client, org, new_email())
    body = {"email": new_email(), "role": "viewer"}
    for member in (org.manager, org.viewer):
        problem(await client.post(PROFILES, json=body, headers=member.headers), 403)
        problem(await client.get(INVITATIONS, headers=member.headers), 403)
        problem(await client.get(f"{INVITATIONS}/{pending['id']}", headers=member.headers), 403)
        problem(await client.delete(f"{INVITATIONS}/{pending['id']}", headers=member.headers), 403)
    listed = ok(await client.get(INVITATIONS, headers=org.admin.headers))
    assert [i["id"] for i in listed] == [pending["id"]]
    assert listed[0]["status"] == "pending"


# --- the e-mail -------------------------------------------------------------------------------


async def test_the_invitation_is_emailed_through_the_outbox(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    email = new_email("Nina")
    invitation = await invite(client, org, email, "manager")
    [sent] = await emails_to(database, email.lower())
    assert sent.kind == "organization.invitation"
    assert sent.status == "pending"
    assert sent.organization_id == org.id
    assert sent.intervention_id is None
    assert "Invitation to join Org " in sent.subject
    assert "as manager" in sent.body
    match = TOKEN_IN_LINK.search(sent.body)
    assert match
    assert match.group(0).startswith("/invitations/accept?token=")
    assert "http://testserver/invitations/accept?token=" in sent.body
    token = match.group(1)
    assert f"Invitation token: {token}" in sent.body
    # Only the token's SHA-256 is stored.
    async with database.reader() as s:
        stored = await s.get(Invitation, invitation["id"])
    assert stored is not None
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {stored.token_hash, stored.email}
    assert stored.expires_at - stored.created_at == dt.timedelta(days=7)


def test_the_link_goes_to_the_configured_page() -> None:
    settings = Settings(invitation_url="https://app.example/join?lang=fr")
    assert acceptance_link(settings, "http://api/", "tok") == (
        "https://app.example/join?lang=fr&token=tok"
    )
    assert acceptance_link(Settings(), "https://api.example/", "tok") == (
        "https://api.example/invitations/accept?token=tok"
    )


# --- acceptance -------------------------------------------------------------------------------


async def test_an_existing_user_accepts_logged_in(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    mine: Org = await factory.org()
    theirs: Org = await factory.org()
    user = mine.manager
    invitation = await invite(client, theirs, user.email, "viewer")
    token = await token_for(database, user.email)

    # Another account's session cannot use it.
    refused = problem(
        await client.post(ACCEPT, json={"token": token}, headers=mine.viewer.headers), 403
    )
    assert "another e-mail" in refused["detail"]

    profile = ok(await client.post(ACCEPT, json={"token": token}, headers=user.headers), 201)
    assert profile["organizationId"] == theirs.id
    assert profile["userId"] == user.user_id
    assert profile["role"] == "viewer"
    assert profile["firstName"] == "Manager"
    read = ok(await client.get(f"{INVITATIONS}/{invitation['id']}", headers=theirs.admin.headers))
    assert read["status"] == "accepted"
    assert read["profileId"] == profile["id"]
    assert read["acceptedAt"] is not None
    # Now in two organisations: login needs organizationId.
    problem(await login(client, user.email), 422, "organizationId")
    tokens = ok(await login(client, user.email, org_id=theirs.id), 201)
    me = ok(await client.get(ME, headers=headers_of(tokens)))
    assert (me["profileId"], me["organizationId"], me["role"]) == (
        profile["id"],
        theirs.id,
        "viewer",
    )
    # The token is used up; the membership elsewhere is untouched.
    problem(await client.post(ACCEPT, json={"token": token}, headers=user.headers), 409, "token")
    at_home = ok(await client.get(f"{PROFILES}/{user.profile_id}", headers=mine.admin.headers))
    assert at_home["role"] == "manager"


async def test_an_existing_user_accepts_with_their_password(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    mine: Org = await factory.org()
    theirs: Org = await factory.org()
    user = mine.viewer
    await invite(client, theirs, user.email, "manager")
    token = await token_for(database, user.email)
    wrong = {"token": token, "password": "not the password at all"}
    problem(await client.post(ACCEPT_WITH_PASSWORD, json=wrong), 401)
    assert len(await profiles_of(database, user.user_id)) == 1
    # The account keeps its names and password: the ones given are for new accounts only.
    right = {"token": token, "password": PASSWORD, "firstName": "Changed"}
    profile = ok(await client.post(ACCEPT_WITH_PASSWORD, json=right), 201)
    assert (profile["organizationId"], profile["role"], profile["firstName"]) == (
        theirs.id,
        "manager",
        "Viewer",
    )
    ok(await login(client, user.email, org_id=theirs.id), 201)
    problem(await client.post(ACCEPT_WITH_PASSWORD, json=right), 409, "token")


async def test_wrong_passwords_count_towards_the_login_limit(
    client: httpx.AsyncClient, factory: Factory, database: Database, settings: Settings
) -> None:
    mine: Org = await factory.org()
    theirs: Org = await factory.org()
    user = mine.admin
    await invite(client, theirs, user.email)
    token = await token_for(database, user.email)
    wrong = {"token": token, "password": "not the password at all"}
    for _ in range(settings.login_max_failures):
        problem(await client.post(ACCEPT_WITH_PASSWORD, json=wrong), 401)
    limited = await client.post(ACCEPT_WITH_PASSWORD, json={**wrong, "password": PASSWORD})
    problem(limited, 429)
    assert int(limited.headers["retry-after"]) > 0
    problem(await login(client, user.email), 429)
    assert len(await profiles_of(database, user.user_id)) == 1


async def test_a_new_user_accepts_and_creates_their_account(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    email = new_email("Nouvelle.Recrue")
    await invite(client, org, email, "manager")
    token = await token_for(database, email.lower())
    body = {
        "token": token,
        "password": "a long enough password",
        "firstName": "Nina",
        "lastName": "Petit",
    }
    problem(
        await client.post(ACCEPT_WITH_PASSWORD, json={**body, "password": "short"}), 400, "password"
    )
    problem(await client.post(ACCEPT_WITH_PASSWORD, json={**body, "extra": 1}), 400, "extra")
    profile = ok(await client.post(ACCEPT_WITH_PASSWORD, json=body), 201)
    assert {
        k: profile[k] for k in ("organizationId", "email", "firstName", "lastName", "role")
    } == {
        "organizationId": org.id,
        "email": email.lower(),
        "firstName": "Nina",
        "lastName": "Petit",
        "role": "manager",
    }
    tokens = ok(await login(client, email, "a long enough password"), 201)
    me = ok(await client.get(ME, headers=headers_of(tokens)))
    assert (me["profileId"], me["organizationId"], me["role"]) == (profile["id"], org.id, "manager")
    problem(await client.post(ACCEPT_WITH_PASSWORD, json=body), 409, "token")
    async with database.reader() as s:
        users = list((await s.execute(select(User).where(User.email == email.lower()))).scalars())
    assert len(users) == 1


async def test_one_token_is_accepted_once_even_at_the_same_time(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    email = new_email()
    await invite(client, org, email)
    token = await token_for(database, email)
    body = {"token": token, "password": "a long enough password"}
    answers = await asyncio.gather(
        client.post(ACCEPT_WITH_PASSWORD, json=body), client.post(ACCEPT_WITH_PASSWORD, json=body)
    )
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    async with database.reader() as s:
        found = await s.execute(select(User.id).where(User.email == email))
        [user_id] = found.scalars().all()
    assert len(await profiles_of(database, user_id)) == 1


async def test_expired_revoked_replaced_and_unknown_tokens_are_refused(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    email = new_email()
    body = {"password": "a long enough password"}

    expired = await invite(client, org, email)
    expired_token = await token_for(database, email)
    async with database.writer() as s, s.begin():
        await s.execute(
            update(Invitation)
            .where(Invitation.id == expired["id"])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    refused = problem(
        await client.post(ACCEPT_WITH_PASSWORD, json={**body, "token": expired_token}), 409, "token"
    )
    assert "expired" in refused["detail"]
    assert ok(await client.get(f"{INVITATIONS}/{expired['id']}", headers=h))["status"] == "expired"
    problem(await client.delete(f"{INVITATIONS}/{expired['id']}", headers=h), 409)

    revoked = await invite(client, org, email)
    revoked_token = await token_for(database, email)
    assert (await client.delete(f"{INVITATIONS}/{revoked['id']}", headers=h)).status_code == 204
    refused = problem(
        await client.post(ACCEPT_WITH_PASSWORD, json={**body, "token": revoked_token}), 409, "token"
    )
    assert "revoked" in refused["detail"]
    problem(await client.delete(f"{INVITATIONS}/{revoked['id']}", headers=h), 409)

    # Inviting again replaces the pending invitation: the first link stops working.
    first = await invite(client, org, email)
    first_token = await token_for(database, email)
    second = await invite(client, org, email, "manager")
    second_token = await token_for(database, email)
    assert first_token != second_token
    problem(
        await client.post(ACCEPT_WITH_PASSWORD, json={**body, "token": first_token}), 409, "token"
    )
    assert ok(await client.get(f"{INVITATIONS}/{first['id']}", headers=h))["status"] == "revoked"
    pending = ok(await client.get(f"{INVITATIONS}?status=pending", headers=h))
    assert [i["id"] for i in pending] == [second["id"]]
    statuses = {
        s: [i["id"] for i in ok(await client.get(f"{INVITATIONS}?status={s}", headers=h))]
        for s in ("expired", "revoked", "accepted")
    }
    assert statuses == {
        "expired": [expired["id"]],
        "revoked": [revoked["id"], first["id"]],
        "accepted": [],
    }

    unknown = problem(
        await client.post(ACCEPT_WITH_PASSWORD, json={**body, "token": "x" * 43}), 422, "token"
    )
    assert "No invitation" in unknown["detail"]
    problem(await client.post(ACCEPT, json={"token": "x" * 43}, headers=org.viewer.headers), 422)
    ok(await client.post(ACCEPT_WITH_PASSWORD, json={**body, "token": second_token}), 201)
    problem(await client.delete(f"{INVITATIONS}/{second['id']}", headers=h), 409)


async def test_another_organisation_cannot_see_or_revoke_your_invitations(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    mine: Org = await factory.org()
    theirs: Org = await factory.org()
    invitation = await invite(client, mine, new_email())
    url = f"{INVITATIONS}/{invitation['id']}"
    assert ok(await client.get(INVITATIONS, headers=theirs.admin.headers)) == []
    problem(await client.get(url, headers=theirs.admin.headers), 404)
    problem(await client.delete(url, headers=theirs.admin.headers), 404)
    assert ok(await client.get(url, headers=mine.admin.headers))["status"] == "pending"
    problem(await client.get(f"{INVITATIONS}/2000000001", headers=mine.admin.headers), 404)
    problem(
        await client.get(f"{INVITATIONS}?status=lost", headers=mine.admin.headers), 400, "status"
    )


async def test_a_former_member_comes_back_on_their_profile(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    leaving = await factory.member(org.id, "manager")
    assert (await client.delete(f"{PROFILES}/{leaving.profile_id}", headers=h)).status_code == 204
    await invite(client, org, leaving.email, "viewer")
    token = await token_for(database, leaving.email)
    back = ok(
        await client.post(ACCEPT_WITH_PASSWORD, json={"token": token, "password": PASSWORD}), 201
    )
    assert (back["id"], back["role"], back["archivedAt"]) == (leaving.profile_id, "viewer", None)


async def test_the_document_describes_the_invitation_operations(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    expected = {
        (PROFILES, "post"): {"202", "400", "401", "403", "409", "413", "415"},
        (INVITATIONS, "get"): {"200", "400", "401", "403"},
        (f"{INVITATIONS}/{{invitationId}}", "get"): {"200", "400", "401", "403", "404"},
        (f"{INVITATIONS}/{{invitationId}}", "delete"): {"204", "400", "401", "403", "404", "409"},
        (ACCEPT, "post"): {"201", "400", "401", "403", "409", "413", "415", "422"},
        (ACCEPT_WITH_PASSWORD, "post"): {"201", "400", "401", "409", "413", "415", "422", "429"},
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert codes <= set(operation["responses"]), (path, method)
        assert "201" not in operation["responses"] or method == "post"
    assert "security" not in paths[ACCEPT_WITH_PASSWORD]["post"]
    assert paths[ACCEPT]["post"]["security"]
