"""Schemathesis over the OpenAPI schema of the gateway and the read API (the all-in-one app on the
embedded backend, with data in it): whatever a request holds, the answer is never a 5xx (but MLflow's
501 NOT_IMPLEMENTED where the embedded store has no such feature)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from runstream.schemas.framing import CONTENT_TYPE
from tests.hostile.conftest import seeded_app

# The write endpoint's body is opaque bytes (framed events): sent as generated.
schemathesis.serializer.alias(CONTENT_TYPE, "application/octet-stream")


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    with seeded_app(request, tmp_path_factory.mktemp("fuzz")) as app:
        yield app


def test_no_request_gets_a_server_error(app: FastAPI) -> None:
    # Each operation's cases drawn by Hypothesis from the schema, called in process (schemathesis'
    # own pytest plugin does not load under this pytest).
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every operation's schema is usable
        operations.append(result.ok())
    assert len(operations) >= 10

    # ~120 operations: 15 cases each keep the test near 40 s of the suite's time on two cores.
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            response = case.call()
            if response.status_code == 501:  # MLflow's answer for a feature this store has not (mpu/create)
                assert response.json()["error_code"] == "NOT_IMPLEMENTED", response.text
                return
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

        no_server_error()


@pytest.mark.parametrize("length", ["null", "-1", "1e3", ""])
def test_a_content_length_that_is_no_number_is_a_400(app: FastAPI, length: str) -> None:
    path = f"/api/2.0/mlflow-artifacts/artifacts/0/{'a' * 32}/artifacts/x"
    response = TestClient(app).put(path, headers={"content-length": length}, content=b"abc")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
