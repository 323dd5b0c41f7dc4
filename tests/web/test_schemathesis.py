"""Property-based requests against the served OpenAPI spec (schemathesis): whatever the body,
path or query, the API answers with a 2xx/4xx status, never a server error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from web_support import PASSWORD

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.fixture
def api_schema(app: Any, with_passwords: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def bearer(app: Any, with_passwords: Any) -> dict[str, str]:
    token = TestClient(app).post("/api/token", json={"email": "leader@example.edu.cn",
                                                     "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, bearer: dict[str, str]) -> None:
    case.headers = {**(case.headers or {}), **bearer}
    case.call_and_validate(checks=[not_a_server_error])
