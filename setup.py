"""Build step for wheels and sdists: put the browser libraries' files (uPlot for the dashboard, Swagger
UI for /docs; from npm by package-lock.json) into the package data, so `pip install` of a built
package serves working pages with no internet and no node_modules. Everything else is in pyproject.toml."""

from __future__ import annotations

import runpy
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
# Loaded by path: which libraries and files, shared with the server (runstream's dependencies may be absent here).
LIBRARIES = runpy.run_path(str(ROOT / "runstream" / "api" / "dashboard" / "libraries.py"))["LIBRARIES"]


class BuildPyWithVendor(build_py):  # type: ignore[misc]  # setuptools ships no types for it
    def run(self) -> None:
        super().run()
        if not all((lib.npm_dir(NODE_MODULES) / f).is_file() for lib in LIBRARIES for f in lib.files):
            if shutil.which("npm") is None:
                raise SystemExit("building runstream needs npm (Node.js) to fetch its browser libraries (package.json)")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
        # Where libraries.py looks first (an editable install serves node_modules instead).
        vendor = Path(self.build_lib) / "runstream" / "api" / "dashboard" / "vendor"
        for lib in LIBRARIES:
            target = vendor / lib.name
            target.mkdir(parents=True, exist_ok=True)
            for name in lib.files:
                shutil.copyfile(lib.npm_dir(NODE_MODULES) / name, target / name)
            for name in lib.legal:
                shutil.copyfile(lib.package_dir(NODE_MODULES) / name, target / name)


setup(cmdclass={"build_py": BuildPyWithVendor})
