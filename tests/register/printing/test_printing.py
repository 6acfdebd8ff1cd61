"""The printable register (issue 11, items 5 and 6) through HTTP, read with the real tools a
reader would use: poppler's pdftotext, pdffonts, pdfinfo and pdftoppm, and headless Chromium
for the HTML (Debian packages that scripts/bootstrap installs)."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

from tests.factories import Factory, Org
from tests.helpers import assert_problem

REGISTER = "/register/v1/rs/sites"
UNPLANNED = "/interventions/v2/mb/preventive/unplanned"
PERIOD = {"from": "2026-01-01", "to": "2026-06-30"}


def _png() -> bytes:
    image = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(image).line([(10, 80), (90, 20), (200, 70), (290, 30)], fill="navy", width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


SIGNATURE_PNG = _png()


async def _check(
    client: httpx.AsyncClient,
    org: Org,
    start: str,
    first: str,
    last: str,
    *,
    upload: bool = True,
) -> int:
    r = await client.post(
        UNPLANNED,
        headers=org.admin.headers,
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": {"name": "s.png", "mimeType": "image/png", "size": len(SIGNATURE_PNG)},
            "provider": {"firstName": first, "lastName": last, "email": "tech@example.org"},
            "actualStart": start,
        },
    )
    assert r.status_code == 201, r.text
    if upload:
        put = await client.put(
            r.json()["presignedUrl"],
            content=SIGNATURE_PNG,
            headers={"content-type": "image/png"},
        )
        assert put.status_code == 200, put.text
    return int(r.json()["data"]["id"])


async def _anomaly(client: httpx.AsyncClient, org: Org, title: str, raised_by: int) -> Any:
    r = await client.post(
        "/anomalies/v1/rs",
        headers=org.admin.headers,
        json={
            "siteId": org.site_ids[0],
            "title": title,
            "risk": 2,
            "raisedByInterventionId": raised_by,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def _newest_checkpoint(client: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    """The organisation's newest checkpoint, which must sign its journal's head."""
    r = await client.get("/register/v1/rs/checkpoints", headers=org.viewer.headers)
    assert r.status_code == 200, r.text
    newest: dict[str, Any] = r.json()["data"][0]
    verification = await client.get("/register/v1/rs/verification", headers=org.viewer.headers)
    assert newest["seq"] == verification.json()["data"]["head"]["seq"]
    return newest


async def _register_org(client: httpx.AsyncClient, factory: Factory) -> Org:
    """A site "Bâtiment Élysée" whose rule "Vérification façade" has two checks in the period
    (one signed, one whose signature never arrived) and one before it, with observations."""
    org = await factory.org()
    for path, row_id, name in [
        ("/sites/v1/rs", org.site_ids[0], "Bâtiment Élysée"),
        ("/rules/v1/rs", org.rule_ids[0], "Vérification façade"),
        ("/companies/v1/rs", org.company_ids[0], "Contrôle Sécurité Provençal"),
    ]:
        r = await client.patch(f"{path}/{row_id}", headers=org.admin.headers, json={"name": name})
        assert r.status_code == 200, r.text
    await _check(client, org, "2025-11-04T09:00:00.000Z", "Old", "Check")
    march = await _check(client, org, "2026-03-10T09:00:00.000Z", "François", "Bérénice")
    await _anomaly(client, org, "Porte coupe-feu déréglée à l'étage", march)
    await _anomaly(client, org, "Façade : éclairage de sécurité hors service", march)
    await _check(client, org, "2026-05-20T14:00:00.000Z", "Zoé", "Garçon", upload=False)
    return org


def _run(*command: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(command, input=data, capture_output=True, check=True, timeout=120)
    return done.stdout


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "register.pdf"
    path.write_bytes(pdf)
    return _run("pdftotext", "-raw", str(path), "-").decode("utf-8")


def _in_order(text: str, *wanted: str) -> None:
    flat = re.sub(r"\s+", " ", text)
    at = 0
    for item in wanted:
        found = flat.find(item, at)
        assert found >= 0, f"{item!r} not found after position {at} in {flat[:3000]}"
        at = found + len(item)


async def test_the_register_pdf_reads_in_order_with_its_accents(
    client: httpx.AsyncClient, factory: Factory, tmp_path: Path
) -> None:
    org = await _register_org(client, factory)
    r = await client.get(f"{REGISTER}/{org.site_ids[0]}", params=PERIOD, headers=org.admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = _pdf_text(r.content, tmp_path)
    _in_order(
        text,
        "Safety register",
        "Bâtiment Élysée",
        "from 01/01/2026 to 30/06/2026",
        "Checks, by rule",
        "Vérification façade",
        "10/03/2026",
        "Contrôle Sécurité",
        "François Bérénice",
        "Porte coupe-feu déréglée à l'étage",
        "Façade : éclairage de sécurité hors service",
        "20/05/2026",
        "Zoé Garçon",
        "signature not uploaded",
        "Curative works",
        "Drills",
        "Observations still open",
        "Porte coupe-feu déréglée",
        "Checks overdue against their routine",
    )
    assert "Old Check" not in text  # before the period
    assert re.search(r"page 1 / \d+", text)
    assert "Journal position" in text
    # Printing signed the journal's head: the footer names that checkpoint, and its URL.
    newest = await _newest_checkpoint(client, org)
    assert f"checkpoint {newest['id']}" in text
    assert f"/register/v1/checkpoints/{newest['id']}" in text
    assert "up to entry" not in text  # it covers the whole printout

    path = tmp_path / "register.pdf"
    fonts = _run("pdffonts", str(path)).decode().splitlines()[2:]
    assert fonts
    for line in fonts:
        assert re.search(r"\byes\s+yes\s+yes\b", line), line  # embedded, subset, unicode
    meta = _run("pdfinfo", "-meta", str(path)).decode()
    assert "<pdfaid:part>2</pdfaid:part>" in meta
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in meta

    _run("pdftoppm", "-r", "50", "-singlefile", "-png", str(path), str(tmp_path / "page"))
    page = Image.open(tmp_path / "page.png").convert("L")
    dark = sum(page.histogram()[:128])
    assert dark > 500, "page 1 is blank"


async def test_same_data_same_bytes(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await _register_org(client, factory)
    url = f"{REGISTER}/{org.site_ids[0]}"
    first = await client.get(url, params=PERIOD, headers=org.admin.headers)
    second = await client.get(url, params=PERIOD, headers=org.viewer.headers)  # viewers read
    assert first.status_code == second.status_code == 200
    assert first.content == second.content


async def test_the_html_has_the_same_content_in_chromium(
    client: httpx.AsyncClient, factory: Factory, tmp_path: Path
) -> None:
    org = await _register_org(client, factory)
    url = f"{REGISTER}/{org.site_ids[0]}"
    r = await client.get(url, params={**PERIOD, "format": "html"}, headers=org.admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    accept = await client.get(
        url, params=PERIOD, headers={**org.admin.headers, "accept": "text/html"}
    )
    assert accept.content == r.content
    page = tmp_path / "register.html"
    page.write_bytes(r.content)
    dom = _run(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--dump-dom",
        page.as_uri(),
    ).decode("utf-8")
    _in_order(
        dom,
        "Bâtiment Élysée",
        "Vérification façade",
        "10/03/2026",
        "François Bérénice",
        "Porte coupe-feu déréglée à l'étage",
        "Zoé Garçon",
        "signature not uploaded",
        f"checkpoint {(await _newest_checkpoint(client, org))['id']}",
    )
    assert dom.count('<img class="signature"') == 1
    shot = tmp_path / "shot.png"
    _run(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--screenshot={shot}",
        "--window-size=900,1200",
        page.as_uri(),
    )
    assert sum(Image.open(shot).convert("L").histogram()[:128]) > 500


async def test_the_commission_pack_is_one_page(
    client: httpx.AsyncClient, factory: Factory, tmp_path: Path
) -> None:
    org = await _register_org(client, factory)
    r = await client.get(
        f"{REGISTER}/{org.site_ids[0]}/commission-pack", headers=org.viewer.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    path = tmp_path / "pack.pdf"
    path.write_bytes(r.content)
    assert re.search(r"^Pages:\s+1$", _run("pdfinfo", str(path)).decode(), re.M)
    text = _pdf_text(r.content, tmp_path)
    _in_order(
        text,
        "Commission pack",
        "Bâtiment Élysée",
        "Checks overdue",
        "Open observations, by risk",
        "Porte coupe-feu déréglée",
        "Last check per rule",
        "Vérification façade",
        "20/05/2026",
        "Drills in the last twelve months",
    )


async def test_refusals(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    other = await factory.org()
    site = f"{REGISTER}/{org.site_ids[0]}"
    h = org.admin.headers
    assert_problem(await client.get(f"{REGISTER}/{other.site_ids[0]}", headers=h), 404)
    assert_problem(
        await client.get(f"{REGISTER}/{other.site_ids[0]}/commission-pack", headers=h), 404
    )
    assert_problem(
        await client.get(site, params={"from": "2026-06-01", "to": "2026-01-01"}, headers=h),
        400,
        "to",
    )
    for bad in ("2026-02-30", "yesterday", "2026-13-01"):
        assert_problem(await client.get(site, params={"from": bad}, headers=h), 400)
    assert_problem(await client.get(site, params={"format": "docx"}, headers=h), 400)
    assert_problem(await client.get(site, params={"to": "9999-12-31"}, headers=h), 400, "to")
    # The first day of the calendar has no year before it: the period starts there.
    edge = await client.get(site, params={"to": "0001-01-01", "format": "html"}, headers=h)
    assert edge.status_code == 200, edge.text
    assert_problem(await client.get(site), 401)


async def test_an_observation_names_the_check_of_its_organisation(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    theirs = await _check(client, other, "2026-03-10T09:00:00.000Z", "A", "B", upload=False)
    r = await client.post(
        "/anomalies/v1/rs",
        headers=org.admin.headers,
        json={"siteId": org.site_ids[0], "title": "x", "raisedByInterventionId": theirs},
    )
    assert_problem(r, 422, "raisedByInterventionId")
    ours = await _check(client, org, "2026-03-10T09:00:00.000Z", "A", "B", upload=False)
    made = await _anomaly(client, org, "Extincteur déplacé", ours)
    assert made["raisedByInterventionId"] == ours
    read = await client.get(f"/anomalies/v1/rs/{made['id']}", headers=org.admin.headers)
    assert read.json()["data"]["raisedByInterventionId"] == ours
