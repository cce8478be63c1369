"""/docs without the internet: the page loads Swagger UI from this server (swagger-ui-dist from npm),
never from a CDN, and, like the API description, needs no credentials when auth is on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runstream.base.auth import Users, hash_password
from runstream.server.app import build_app

EXTERNAL = re.compile(r"https?://", re.IGNORECASE)
LOCAL_REF = re.compile(r"""(?:src|href)="(/[^"]*)\"""")


@pytest.fixture(scope="module")
def http() -> TestClient:
    return TestClient(build_app("api"))


def test_docs_page_references_nothing_outside_the_server(http: TestClient) -> None:
    page = http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not EXTERNAL.findall(page.text), page.text
    refs = LOCAL_REF.findall(page.text)
    assert {"/vendor/swagger-ui/swagger-ui-bundle.js", "/vendor/swagger-ui/swagger-ui.css"} <= set(refs)
    for ref in refs:
        assert http.get(ref).status_code == 200, ref
    assert "'/openapi.json'" in page.text and http.get("/openapi.json").status_code == 200


def test_only_the_listed_files_are_served_and_redoc_is_off(http: TestClient) -> None:
    bundle = http.get("/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript") and "SwaggerUIBundle" in bundle.text
    assert http.get("/vendor/swagger-ui/swagger-ui.css").headers["content-type"].startswith("text/css")
    for path in ("/vendor/swagger-ui/package.json", "/vendor/swagger-ui/index.html", "/vendor/swagger-ui/../LICENSE"):
        assert http.get(path).status_code == 404, path
    assert http.get("/redoc").status_code == 404  # FastAPI's would load ReDoc from a CDN


def test_docs_page_and_its_files_need_no_credentials(tmp_path: Path) -> None:
    auth = tmp_path / "auth.toml"
    auth.write_text(f'[users.alice]\npassword = "{hash_password("secret", iterations=1000)}"\naccess = "write"\n')
    http = TestClient(build_app("api", users=Users.load(auth)))
    page = http.get("/docs")
    assert page.status_code == 200
    for ref in LOCAL_REF.findall(page.text):
        assert http.get(ref).status_code == 200, ref
    assert http.get("/vendor/swagger-ui/package.json").status_code == 401  # only the listed files are open
