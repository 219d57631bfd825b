"""The service's API docs with nothing fetched from another host.

fastapi-offline serves Swagger UI and ReDoc from the installed package instead of a CDN, but
ReDoc's bundle still draws Redocly's logo from cdn.redoc.ly: offline a failed request, online a
call to a third party each time someone opens the docs (tests/browser saw it).
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

# Served here with that one address replaced by an empty inline image.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_SVG = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


@lru_cache(maxsize=1)
def _redoc_js() -> bytes:
    from importlib.resources import files

    js = files("fastapi_offline").joinpath("static", "redoc.standalone.js").read_text("utf-8")
    return js.replace(REDOC_LOGO, BLANK_SVG).encode()


def offline_redoc(app: FastAPI) -> None:
    """``/redoc`` from the installed bundle, with nothing fetched from another host."""
    from fastapi.openapi.docs import get_redoc_html

    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(_redoc_js(), media_type="application/javascript")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
                              with_google_fonts=False,
                              redoc_favicon_url=f"{root}/static-offline-docs/favicon.png")
