"""Serves the dashboard page at / and its files: the page's own ES modules (static/) and uPlot's dist
files (found as libraries.py says); vendor_router serves any such library's files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from runstream.api.dashboard.libraries import UPLOT, Library
from runstream.base.errors import not_found

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _file(path: Path) -> Response:
    # No caching of the page's own files: an upgraded server must not be paired with an old module.
    return FileResponse(path, media_type=_TYPES.get(path.suffix), headers={"cache-control": "no-cache"})


def vendor_url(library: Library, name: str) -> str:
    return f"/vendor/{library.name}/{name}"


def vendor_router(library: Library) -> APIRouter:
    """GET /vendor/<library>/<file> for the library's served files only."""
    router = APIRouter(include_in_schema=False)
    found = library.find()

    @router.get(vendor_url(library, "{name}"), name=f"vendor_{library.name}")
    async def vendor(name: str) -> Response:
        if found is None or name not in library.files:
            raise not_found(f"no {library.package} file {name!r} (install with `npm ci`, see scripts/setup)")
        return _file(found / name)

    return router


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    served = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}

    @router.get("/")
    async def page() -> Response:
        return _file(STATIC / "index.html")

    @router.get("/static/{path:path}")
    async def static(path: str) -> Response:
        # Only files that shipped with the page: a lookup in a fixed table, never a path join.
        found = served.get(path)
        if found is None:
            raise not_found(f"no dashboard file {path!r}")
        return _file(found)

    router.include_router(vendor_router(UPLOT))
    return router
