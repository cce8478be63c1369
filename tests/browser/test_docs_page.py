"""/docs in a real browser with no internet: Swagger UI renders the API from files this server serves."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import open_docs_offline


def test_docs_page_renders_with_no_internet(page: Page, base: str) -> None:
    open_docs_offline(page, base)
