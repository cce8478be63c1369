"""Build step for wheels and sdists: put uPlot's dist files (from npm, by package-lock.json) into the
package data, so `pip install` of a built package serves a working dashboard with no internet and no
node_modules. Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
UPLOT_DIST = ROOT / "node_modules" / "uplot" / "dist"
FILES = ("uPlot.esm.js", "uPlot.min.css", "LICENSE")


class BuildPyWithUplot(build_py):  # type: ignore[misc]  # setuptools ships no types for it
    def run(self) -> None:
        super().run()
        if not (UPLOT_DIST / FILES[0]).is_file():
            if shutil.which("npm") is None:
                raise SystemExit("building runstream needs npm (Node.js) to fetch uPlot by package-lock.json")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
        # Where runstream/api/dashboard/routes.py looks first (an editable install serves node_modules instead).
        target = Path(self.build_lib) / "runstream" / "api" / "dashboard" / "vendor" / "uplot"
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(UPLOT_DIST / name if name != "LICENSE" else UPLOT_DIST.parent / name, target / name)


setup(cmdclass={"build_py": BuildPyWithUplot})
