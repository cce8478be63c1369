"""MLflow's own web app at /mlflow/ (`--mlflow-ui`), served from the installed `mlflow` package
(`pip install 'runstream[mlflow-ui]'`): its page and its static files, and every call it makes from
/mlflow/ (ajax-api, graphql, get-artifact ...) answered by the same MLflow routes as at the root."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/mlflow"
_STATIC = f"{PREFIX}/static-files"


class MlflowUiMissing(RuntimeError):
    pass


def mlflow_ui_build() -> Path:
    """The installed mlflow package's built web app; MlflowUiMissing says what to install."""
    spec = importlib.util.find_spec("mlflow")  # finds the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    build = Path(folders[0]) / "server" / "js" / "build" if folders else None
    if build is None or not (build / "index.html").is_file():
        found = "mlflow-skinny, which has no web app" if folders else "no mlflow package"
        raise MlflowUiMissing(
            f"--mlflow-ui serves MLflow's web app from the installed mlflow package, but this environment has "
            f"{found}: pip install 'runstream[mlflow-ui]'"
        )
    return build


class _UnderPrefix:
    """Answers the app's calls from /mlflow/ by the routes at the root (its page uses relative URLs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        call = path.startswith(f"{PREFIX}/") and path != f"{PREFIX}/" and not path.startswith(f"{_STATIC}/")
        if scope["type"] == "http" and call:
            raw = scope.get("raw_path") or path.encode()
            scope = {**scope, "path": path.removeprefix(PREFIX), "raw_path": raw.removeprefix(PREFIX.encode())}
        await self.app(scope, receive, send)


def mount_mlflow_ui(app: FastAPI, build: Path) -> None:
    index = build / "index.html"

    @app.get(PREFIX, include_in_schema=False)
    async def to_page() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/")

    @app.get(f"{PREFIX}/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, headers={"cache-control": "no-cache"})

    app.mount(_STATIC, StaticFiles(directory=build), name="mlflow-ui")
    app.add_middleware(_UnderPrefix)
