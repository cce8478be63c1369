"""With auth configured, the page is behind the same credentials as the API: a browser gets a Basic
challenge, and once it answers it the page and every API call it makes go through."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from runstream.base.auth import hash_password
from tests.browser.conftest import VIEWPORT, open_docs_offline, wait_view
from tests.integration.roles import Role
from tests.services.ports import free_port

ALICE = ("alice", "alice-secret")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("auth-page")
    auth = workdir / "auth.toml"
    auth.write_text(f'[users.alice]\npassword = "{hash_password(ALICE[1], iterations=1000)}"\naccess = "write"\n')
    port = free_port()
    role = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"), "--auth-file", str(auth))
    yield f"http://127.0.0.1:{port}"
    role.stop()


def test_the_page_needs_credentials_like_every_route(guarded: str, browser: Browser) -> None:
    for path in ("/", "/static/main.js", "/vendor/uplot/uPlot.esm.js"):
        response = httpx.get(guarded + path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Basic ")
    # A browser with no credentials to give takes it as a login prompt (headless: refused at once).
    anonymous = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        anonymous.new_page().goto(guarded)
    anonymous.close()

    httpx.post(f"{guarded}/api/2.0/mlflow/experiments/create", json={"name": "guarded"}, auth=ALICE).raise_for_status()
    context = browser.new_context(viewport=VIEWPORT, http_credentials={"username": ALICE[0], "password": ALICE[1]})  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(guarded)
    wait_view(page, "experiments")
    expect(page.locator("table.experiments")).to_contain_text("guarded")
    page.get_by_role("link", name="guarded").click()  # the page's own API calls are let in too
    wait_view(page, "experiments")
    expect(page.locator(".count")).to_contain_text("0 runs")
    expect(page.locator("#live-status")).to_contain_text("live")
    context.close()


def test_the_docs_page_needs_no_credentials_like_the_description(guarded: str, browser: Browser) -> None:
    anonymous = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    open_docs_offline(anonymous.new_page(), guarded)  # its script and style too, else a login prompt
    anonymous.close()
