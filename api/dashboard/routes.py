"""Serves the dashboard page at / and its files: the page's own ES modules (static/) and uPlot's dist
files, from the package (a wheel or sdist built with `npm ci`, see setup.py) or, in a source checkout
or editable install, from node_modules (scripts/setup runs `npm ci`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from runstream.errors import not_found

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
UPLOT_DIRS = (HERE / "vendor" / "uplot", HERE.parents[1] / "node_modules" / "uplot" / "dist")
UPLOT_FILES = frozenset({"uPlot.esm.js", "uPlot.min.css"})
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


def uplot_dir() -> Path | None:
    """Where uPlot's files are, or None when neither the package nor node_modules has them."""
    return next((d for d in UPLOT_DIRS if all((d / f).is_file() for f in UPLOT_FILES)), None)


def _file(path: Path) -> Response:
    # No caching of the page's own files: an upgraded server must not be paired with an old module.
    return FileResponse(path, media_type=_TYPES.get(path.suffix), headers={"cache-control": "no-cache"})


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    served = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}
    vendor = uplot_dir()

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

    @router.get("/vendor/uplot/{name}")
    async def uplot(name: str) -> Response:
        if vendor is None or name not in UPLOT_FILES:
            raise not_found(f"no uPlot file {name!r} (install with `npm ci`, see scripts/setup)")
        return _file(vendor / name)

    return router
