"""The README's screenshots, from real data: `.venv/bin/python -m tests.browser.screenshots` starts
`runstream serve` in a temporary folder, loads the browser tests' seed data through the pipeline and
saves one PNG per view under docs/screenshots/."""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, wait_view
from tests.browser.seed import seed_all, table_run
from tests.integration.roles import REPO, Role
from tests.services.ports import free_port

OUT = REPO / "docs" / "screenshots"


def shoot(page: Page, url: str, view: str) -> Page:
    page.goto(url)
    wait_view(page, view)
    page.wait_for_timeout(300)  # the charts' first frame
    return page


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        role = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"))
        base = f"http://127.0.0.1:{port}"
        try:
            ids = seed_all(base, workdir)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                compare = ",".join(table_run(i).run_id for i in range(50))
                group = ",".join(table_run(i).run_id for i in range(400))
                table = f"{base}/#/experiments/{ids['table']}?sort=metrics.acc+DESC&sel={compare}"
                shoot(page, table, "experiments").screenshot(path=OUT / "runs_table.png")
                shoot(page, f"{base}/#/runs/{ids['ranked']}", "runs").screenshot(path=OUT / "run_page.png")
                shoot(page, f"{base}/#/compare?exp={ids['table']}&runs={compare}&keys=loss&log=1", "compare")
                chart = page.locator(".chart[data-title='loss'] .u-over").bounding_box()
                assert chart is not None
                page.mouse.move(chart["x"] + chart["width"] * 0.4, chart["y"] + chart["height"] / 2)
                page.wait_for_timeout(200)
                page.screenshot(path=OUT / "compare.png")
                url = f"{base}/#/group?exp={ids['table']}&runs={group}&by=params.lr&key=loss"
                shoot(page, url, "group").screenshot(path=OUT / "group.png")
                shoot(page, f"{base}/#/registry/churn-model", "registry").screenshot(
                    path=OUT / "registry.png", full_page=True
                )
                monitored = f"{base}/#/monitoring/churn-model?version=3&environment=prod"
                shoot(page, monitored, "monitoring").screenshot(path=OUT / "monitoring.png")
                browser.close()
        finally:
            role.stop()


if __name__ == "__main__":
    main()
