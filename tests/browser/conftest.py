"""Browser tests: `runstream serve` on embedded storage with the seed data, driven through Debian's
Chromium (/usr/bin/chromium; scripts/test installs it) by playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, Request, Route, expect, sync_playwright

from tests.browser.seed import seed_all
from tests.integration.roles import Role
from tests.services.ports import free_port

CHROMIUM = "/usr/bin/chromium"
# No background traffic: this machine's network is closed, and Chromium's own connections would be
# refused many at a time (tool notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The base URL of a seeded `runstream serve`, and the ids of what it holds."""
    workdir = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    role = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"))
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, seed_all(base, workdir)
    finally:
        role.stop()


@pytest.fixture(scope="session")
def base(server: tuple[str, dict[str, str]]) -> str:
    return server[0]


@pytest.fixture(scope="session")
def ids(server: tuple[str, dict[str, str]]) -> dict[str, str]:
    return server[1]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies, no cache) per test; page errors fail the test."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    yield page
    context.close()
    assert not errors, errors


def open_view(page: Page, url: str, view: str) -> None:
    """Goes to `url` and waits until the page says that view is drawn."""
    page.goto(url)
    wait_view(page, view)


def wait_view(page: Page, view: str) -> None:
    page.wait_for_selector(f"#main[data-view='{view}']", timeout=20_000)


def drag_across(page: Page, chart: Locator, start: float, end: float) -> None:
    """A mouse drag over a chart's plot from one fraction of its width to another (a zoom)."""
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * start, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, box["y"] + 20, steps=5)
    page.mouse.up()


def offline(page: Page) -> list[str]:
    """Aborts the page's every request to a host but this machine's loopback, as with no internet;
    returns the list, filled as the page runs, of what was aborted or otherwise failed."""
    failed: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            failed.append(f"blocked {route.request.url}")
            route.abort("internetdisconnected")

    def on_failed(request: Request) -> None:
        failed.append(f"failed {request.url}: {request.failure}")

    page.route("**/*", only_loopback)
    page.on("requestfailed", on_failed)
    return failed


def open_docs_offline(page: Page, base: str) -> None:
    """Opens /docs with every request off this machine aborted; fails unless Swagger UI drew the API
    and nothing was aborted or failed."""
    failed = offline(page)
    page.goto(base + "/docs")
    search = page.locator(".opblock-summary-path[data-path='/api/v1/runs/search']")
    expect(search).to_be_visible(timeout=20_000)
    search.click()  # the operation opens: Swagger UI's scripts work, not only its first paint
    expect(page.locator(".opblock.is-open .opblock-body")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert not failed, failed
