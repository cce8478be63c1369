"""The browser libraries the server serves (from npm by package-lock.json) and where their files are:
the package's vendor/<name>/ (a wheel or sdist built with `npm ci`, see setup.py) or, in a source
checkout or editable install, node_modules (scripts/setup runs `npm ci`).

Standard library only: setup.py loads this file by path, before runstream's dependencies exist."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"  # what setup.py fills in a built package
NODE_MODULES = HERE.parents[1] / "node_modules"  # a checkout's (runstream/api resolves to ./api)


class Library(NamedTuple):
    name: str  # the folder under vendor/ and the URL path /vendor/<name>/
    package: str  # the npm package
    dist: str  # the folder of the served files inside the npm package ("" for its top)
    files: frozenset[str]  # what the server serves, by name (never a path from the request)
    legal: tuple[str, ...]  # at the npm package's top; shipped in a built package beside the files, not served

    # node_modules is an argument for setup.py: in an unpacked sdist this file is not beside ./api.
    def package_dir(self, node_modules: Path = NODE_MODULES) -> Path:
        return node_modules / self.package

    def npm_dir(self, node_modules: Path = NODE_MODULES) -> Path:
        return self.package_dir(node_modules) / self.dist

    def find(self) -> Path | None:
        """Where the served files are, or None when neither the package nor node_modules has them."""
        dirs = (VENDOR / self.name, self.npm_dir())
        return next((d for d in dirs if all((d / f).is_file() for f in self.files)), None)


UPLOT = Library("uplot", "uplot", "dist", frozenset({"uPlot.esm.js", "uPlot.min.css"}), ("LICENSE",))
SWAGGER_UI = Library(
    "swagger-ui",
    "swagger-ui-dist",
    "",
    frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
    # Apache-2.0 asks for NOTICE too; the bundle's own list covers the libraries compiled into it.
    ("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"),
)
LIBRARIES = (UPLOT, SWAGGER_UI)
