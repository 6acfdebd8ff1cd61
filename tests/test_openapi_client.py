"""A client generated from the OpenAPI document runs the five seed requests over HTTP.

openapi-python-client generates a package from ``/openapi.json`` (no network, no post-hooks);
the test imports it and, with its functions and models only, logs in, sends the seed pages'
requests (000 curative, 001 unplanned preventive with its signature upload, 002 update
preventive, 003 update training exercise, 004 verify) to the service served by uvicorn, on
both databases, and reads the answers through the generated models.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from interventions.app import create_app
from interventions.config import Settings
from tests.factories import PASSWORD, Factory, Org
from tests.live_server import LiveServer

PACKAGE = "interventions_client"
GENERATOR_CONFIG = f"""\
package_name_override: {PACKAGE}
project_name_override: interventions-client
post_hooks: []
"""
# The smallest body the service takes for an announced JPEG: its leading bytes, then padding.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(1000) + b"\xff\xd9"
START = dt.datetime(2024, 12, 1, 12, 34, 56, tzinfo=dt.UTC)
END = dt.datetime(2024, 12, 5, 14, 56, 23, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported from a temporary directory."""
    root = tmp_path_factory.mktemp("generated")
    document = create_app(Settings(database_url="sqlite://", secret_key="client-" + "x" * 32))
    (root / "openapi.json").write_text(json.dumps(document.openapi()))
    (root / "config.yaml").write_text(GENERATOR_CONFIG)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--config",
            str(root / "config.yaml"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    server = LiveServer(create_app(settings)).start()
    yield server.url
    server.stop()


def test_the_generated_client_has_a_function_for_every_seed_and_the_upload(
    generated: ModuleType,
) -> None:
    root = Path(generated.__file__).parent / "api"
    functions = {p.stem for p in root.glob("*/*.py") if p.stem != "__init__"}
    assert {
        "login",
        "create_curative",
        "create_unplanned_preventive",
        "update_preventive",
        "update_training_exercise",
        "verify_intervention",
        "upload_file",
    } <= functions


async def test_the_seed_requests_through_the_generated_client(
    generated: ModuleType, live_url: str, factory: Factory
) -> None:
    org: Org = await factory.org()
    models = _module("models")
    api = {
        name: _module(f"api.{group}.{name}")
        for group, name in [
            ("auth", "login"),
            ("interventions", "create_curative"),
            ("interventions", "create_preventive_from_routine"),
            ("interventions", "update_preventive"),
            ("interventions", "create_training_exercise"),
            ("interventions", "update_training_exercise"),
            ("interventions", "verify_intervention"),
            ("interventions_mobile", "create_unplanned_preventive"),
            ("notifications", "list_notifications"),
            ("storage", "upload_file"),
        ]
    }

    # Login, then both headers on every call: the bearer token and x-session-token.
    anonymous = generated.Client(base_url=live_url, raise_on_unexpected_status=True)
    login = await api["login"].asyncio_detailed(
        client=anonymous,
        body=models.LoginCredentials(email=org.admin.email, password=PASSWORD),
    )
    assert login.status_code == 201, login.content
    tokens = login.parsed.data
    client = generated.AuthenticatedClient(
        base_url=live_url,
        token=tokens.access_token,
        headers={"x-session-token": tokens.session_token},
        raise_on_unexpected_status=True,
    )

    # 000: a curative intervention on an open anomaly.
    r = await api["create_curative"].asyncio_detailed(
        client=client,
        body=models.CurativeCreate(
            scheduled_start=START,
            scheduled_end=END,
            anomaly_ids=[org.anomaly_ids[0]],
            creation_status=models.CurativeCreateCreationstatus(0),
            description="Description of the intervention",
            assigned_company_contact_id=org.contact_ids[0],
            assigned_user_id=org.manager.user_id,
        ),
    )
    assert r.status_code == 201, r.content
    curative = r.parsed.data
    assert (curative.type_, curative.status, curative.creation_status) == (2, 1, 0)
    assert curative.scheduled_start == START
    assert curative.anomaly_ids == [org.anomaly_ids[0]]
    assert curative.assigned_profile_id == org.manager.profile_id

    # 001: an unplanned check recorded on site, then its signature through the presigned URL.
    r = await api["create_unplanned_preventive"].asyncio_detailed(
        client=client,
        body=models.UnplannedCreate(
            company_id=org.company_ids[0],
            site_ids=org.site_ids,
            rule_ids=org.rule_ids,
            signature=models.SignatureMeta(
                name="example.jpg",
                mime_type=models.SignatureMetaMimetype("image/jpeg"),
                size=len(JPEG),
            ),
            provider=models.ProviderIn(
                first_name="Provider name",
                last_name="Provider name",
                action_comment="Action comment from the provider",
                email="example@mail.fr",
                comment="General comment from the provider",
            ),
            actual_start=START,
        ),
    )
    assert r.status_code == 201, r.content
    unplanned, presigned_url = r.parsed.data, r.parsed.presigned_url
    assert (unplanned.type_, unplanned.status, unplanned.check_type) == (1, 4, 2)
    assert unplanned.actual_start == START
    assert unplanned.provider_name == "Provider name Provider name"
    url = urlsplit(presigned_url)
    assert f"{url.scheme}://{url.netloc}" == live_url
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    # Synchronously: the generated async function hands httpx's AsyncClient the file object,
    # which it refuses to stream. The server runs on its own thread and loop.
    uploaded = api["upload_file"].sync_detailed(
        client=generated.Client(base_url=live_url, raise_on_unexpected_status=True),
        file_id=url.path.rsplit("/", 1)[1],
        expires=int(query["expires"]),
        signature=query["signature"],
        body=generated.types.File(payload=io.BytesIO(JPEG), mime_type="image/jpeg"),
    )
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.parsed.data.size == len(JPEG)
    async with httpx.AsyncClient(base_url=live_url) as http:
        got = await http.get(unplanned.img_signature, headers=org.admin.headers)
    assert got.status_code == 200
    assert got.content == JPEG

    # 002: re-plan a preventive intervention (made from the organisation's routine).
    r = await api["create_preventive_from_routine"].asyncio_detailed(
        client=client,
        body=models.RoutineInterventionCreate(
            scheduled_start=START - dt.timedelta(days=30),
            scheduled_end=START - dt.timedelta(days=30, hours=-2),
            creation_status=models.RoutineInterventionCreateCreationstatus(0),
            routine_id=org.routine_id,
        ),
    )
    assert r.status_code == 201, r.content
    site_rules = [org.site_rule[(org.site_ids[1], rule)] for rule in org.rule_ids]
    r = await api["update_preventive"].asyncio_detailed(
        r.parsed.data.id,
        client=client,
        body=models.PreventiveUpdate(
            description="Description of the intervention",
            scheduled_start=START,
            scheduled_end=END,
            site_rule_ids=site_rules,
            creation_status=models.PreventiveUpdateCreationStatusType0(1),
            assigned_company_contact_id=org.contact_ids[0],
            assigned_profile_id=org.manager.profile_id,
            send_update_email_to_current_assignee=False,
            previous_assignee_notification=models.PreviousAssigneeNotification(
                send_email=True, reason="The intervention details have changed."
            ),
        ),
    )
    assert r.status_code == 200, r.content
    preventive = r.parsed.data
    assert (preventive.type_, preventive.status, preventive.creation_status) == (1, 2, 1)
    assert preventive.site_rule_ids == sorted(site_rules)
    assert (preventive.scheduled_start, preventive.scheduled_end) == (START, END)

    # 003: re-plan and validate a training exercise.
    r = await api["create_training_exercise"].asyncio_detailed(
        client=client,
        body=models.TrainingCreate(
            scheduled_start=START - dt.timedelta(days=30),
            scheduled_end=START - dt.timedelta(days=30, hours=-2),
            rule_id=org.training_rule_id,
            site_ids=[org.site_ids[0]],
            creation_status=models.TrainingCreateCreationstatus(0),
        ),
    )
    assert r.status_code == 201, r.content
    r = await api["update_training_exercise"].asyncio_detailed(
        r.parsed.data.id,
        client=client,
        body=models.TrainingUpdate(
            description="Description of the intervention",
            scheduled_start=START,
            scheduled_end=END,
            rule_id=org.training_rule_id,
            site_ids=org.site_ids,
            creation_status=models.TrainingUpdateCreationStatusType0(1),
            assigned_company_contact_id=org.contact_ids[1],
            assigned_user_id=org.admin.user_id,
            validate_intervention=True,
        ),
    )
    assert r.status_code == 200, r.content
    training = r.parsed.data
    assert (training.type_, training.status) == (3, 5)
    assert training.verified_by_user_id == org.admin.user_id
    assert training.site_ids == sorted(org.site_ids)

    # 004: verify (reject) the unplanned check, from its notification.
    notes = await api["list_notifications"].asyncio_detailed(client=client)
    assert notes.status_code == 200, notes.content
    note = next(n for n in notes.parsed.data if n.intervention_id == unplanned.id)
    r = await api["verify_intervention"].asyncio_detailed(
        unplanned.id,
        client=client,
        body=models.VerifyRequest(
            decision_comment="Provider refused the intervention due to scheduling conflicts.",
            decision=models.VerifyRequestDecision(2),
            notification_id=note.id,
        ),
    )
    assert r.status_code == 200, r.content
    verified = r.parsed.data
    assert verified.status == 6
    assert verified.verified_by_user_id == org.admin.user_id
    assert verified.decision_comment.startswith("Provider refused")
