"""Every HTTP edge's API documentation works with no internet: /docs and /redoc load their
scripts, styles and icon from the service itself, and the OpenAPI document is unchanged by
them."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from services.runtime.docs import ASSETS_PATH
from tests.federation import Federation

# The smallest size a real Swagger UI or ReDoc build could have (each is hundreds of KiB).
NON_TRIVIAL_BYTES = 50_000


class _Assets(HTMLParser):
    """The URLs a page's <script src> and <link href> tags load."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Notes the URL of a script or link tag."""
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.scripts.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.links.append(str(found["href"]))


def _assets(page: str) -> _Assets:
    parser = _Assets()
    parser.feed(page)
    return parser


async def _loads(client: httpx.AsyncClient, url: str, kind: str) -> None:
    r = await client.get(url)
    assert r.status_code == 200, f"{url}: {r.status_code}"
    assert kind in r.headers["content-type"], f"{url}: {r.headers['content-type']}"
    if kind != "image/":
        assert len(r.content) > NON_TRIVIAL_BYTES, f"{url}: {len(r.content)} bytes"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_service(
    federation: Federation, page: str
) -> None:
    for name, host in federation.hosts.items():
        async with httpx.AsyncClient(base_url=host.http_url, timeout=30) as client:
            r = await client.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert "http://" not in r.text and "https://" not in r.text, name
            assets = _assets(r.text)
            assert assets.scripts, f"{name}{page} loads no script"
            for url in [*assets.scripts, *assets.links]:
                parts = urlsplit(url)
                assert not parts.scheme and not parts.netloc, f"{name}{page}: {url}"
                assert parts.path.startswith(f"{ASSETS_PATH}/"), f"{name}{page}: {url}"
            for url in assets.scripts:
                await _loads(client, url, "javascript")
            for url in assets.links:
                await _loads(client, url, "text/css" if url.endswith(".css") else "image/")


async def test_the_openapi_document_loads_and_names_no_docs_route(federation: Federation) -> None:
    for name, host in federation.hosts.items():
        async with httpx.AsyncClient(base_url=host.http_url, timeout=30) as client:
            r = await client.get("/openapi.json")
            assert r.status_code == 200, name
            paths = r.json()["paths"]
            assert "/healthz" in paths and "/v1/outbox" in paths, name
            assert not [p for p in paths if p.startswith(("/docs", "/redoc"))], name


async def test_the_front_page_of_every_edge_leads_to_its_docs(federation: Federation) -> None:
    for name, host in federation.hosts.items():
        async with httpx.AsyncClient(base_url=host.http_url, timeout=30) as client:
            r = await client.get("/")
            assert r.status_code == 307, name
            assert r.headers["location"] == "/docs", name
            assert (await client.get("/", follow_redirects=True)).status_code == 200, name
