"""The API's description as a page: Swagger UI at /docs, with its files served by this server
(swagger-ui-dist from npm, found like the dashboard's uPlot) instead of FastAPI's default CDN, so the
page works with no internet. The app turns FastAPI's own /docs and /redoc off (ReDoc would need its
CDN too)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from runstream.api.dashboard.libraries import SWAGGER_UI
from runstream.api.dashboard.routes import vendor_router, vendor_url

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
OPENAPI_URL = "/openapi.json"
# Open like the description itself (the app's auth): the page and the library files it loads, no data.
DOCS_PATHS = frozenset({DOCS_URL, OAUTH2_REDIRECT_URL, *(vendor_url(SWAGGER_UI, f) for f in SWAGGER_UI.files)})
# Swagger UI would show a badge from validator.swagger.io for a description not served from localhost.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def docs_router(title: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL)
    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy's path prefix, as FastAPI's own page does.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{title} - Swagger UI",
            swagger_js_url=root + vendor_url(SWAGGER_UI, "swagger-ui-bundle.js"),
            swagger_css_url=root + vendor_url(SWAGGER_UI, "swagger-ui.css"),
            swagger_favicon_url=root + vendor_url(SWAGGER_UI, "favicon-32x32.png"),
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @router.get(OAUTH2_REDIRECT_URL)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    router.include_router(vendor_router(SWAGGER_UI))
    return router
