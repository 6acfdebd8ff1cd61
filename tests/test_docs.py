"""``/docs`` and ``/redoc`` work offline and behind firewalls (issue 9): every script, style
sheet and icon they load is served by the service itself, none from a CDN."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from interventions.app import create_app
from interventions.config import Settings
from tests.helpers import TEST_SECRET


class _Assets(HTMLParser):
    """``(kind, url)`` of every ``<script src>`` and ``<link href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(("script", str(a["src"])))
        elif tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").lower()
            self.assets.append(("icon" if "icon" in rel else rel, str(a["href"])))


def assets_of(html: str) -> list[tuple[str, str]]:
    parser = _Assets()
    parser.feed(html)
    return parser.assets


# What each kind of asset must be: its content type, and more than a stub's size.
EXPECTED = {
    "script": ("javascript", 100_000),
    "stylesheet": ("text/css", 10_000),
    "icon": ("image/", 100),
}


@pytest.mark.parametrize(
    ("page", "kinds"),
    [("/docs", {"script", "stylesheet", "icon"}), ("/redoc", {"script", "icon"})],
)
async def test_the_docs_load_every_asset_from_the_service(
    client: httpx.AsyncClient, page: str, kinds: set[str]
) -> None:
    r = await client.get(page)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assets = assets_of(r.text)
    assert {kind for kind, _ in assets} == kinds, assets
    for kind, url in assets:
        parts = urlsplit(url)
        assert not parts.scheme, f"{page} loads {url} from elsewhere"
        assert not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = await client.get(url)
        assert asset.status_code == 200, (url, asset.status_code)
        content_type, least = EXPECTED[kind]
        assert content_type in asset.headers["content-type"], (url, asset.headers)
        assert len(asset.content) > least, url
    # Nothing else absolute either (fonts, an inline loader): the page reaches nowhere.
    assert "http://" not in r.text
    assert "https://" not in r.text
    # And the document the page renders is the service's own.
    assert "/openapi.json" in r.text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_the_docs_links_carry_the_proxy_prefix(tmp_path: Path) -> None:
    """Behind a proxy that mounts the service under a path (ASGI ``root_path``), the page
    must link to its assets and its document under that path."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        secret_key=TEST_SECRET,
        storage_dir=tmp_path / "storage",
    )
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app, root_path="/registre")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for page in ("/docs", "/redoc"):
                r = await c.get(page)
                assert r.status_code == 200, r.text
                for _, url in assets_of(r.text):
                    assert url.startswith("/registre/docs/assets/"), (page, url)
                assert "/registre/openapi.json" in r.text
    finally:
        await app.state.db.dispose()
