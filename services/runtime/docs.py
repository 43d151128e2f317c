"""The HTTP edge's API documentation, whole from the service: Swagger UI at /docs and ReDoc at
/redoc take their scripts, styles and icon from /docs-assets, so both work with no internet.

The files are Swagger UI's and ReDoc's own builds as the fastapi-offline package ships them
(it tracks their releases); FastAPI's defaults would load them from a CDN.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs-assets"


def install_offline_docs(app: FastAPI) -> None:
    """Adds /docs (where / leads), /redoc and the files they load to `app`, made with docs_url
    and redoc_url None (FastAPI's own pages would load from a CDN); none of them is in the
    OpenAPI document."""
    directory = files("fastapi_offline").joinpath("static")
    app.mount(ASSETS_PATH, StaticFiles(directory=str(directory)), name="docs-assets")

    def openapi_url(request: Request) -> str:
        # Behind a proxy that adds a prefix, the page must ask for the prefixed document.
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    @app.get("/", include_in_schema=False)
    async def front_page(request: Request) -> RedirectResponse:
        """The edge's front page is its API documentation."""
        return RedirectResponse(f"{request.scope.get('root_path', '')}{DOCS_PATH}")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI over this edge's OpenAPI document."""
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            # Swagger UI's default validator badge would send the document's URL to
            # validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc over this edge's OpenAPI document, without Google's fonts."""
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )
