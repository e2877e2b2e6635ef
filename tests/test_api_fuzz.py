"""Schemathesis fuzzes every operation of the published OpenAPI spec: no 5xx, no stack traces,
whatever the body, query or path (with a valid admin token, so requests get past auth), and
every answer conforms to the spec (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.tokens import create_token


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    yield store
    store.close()


# the spec comes from an app over an in-memory database; requests go to the fixture's app
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Store("sqlite://")))


@pytest.fixture(scope="module")
def fuzz_app(fuzz_store: Store) -> Iterator[tuple[object, str]]:
    from fastapi.testclient import TestClient

    app = create_app(fuzz_store, settings=Settings(max_time_limit=2, max_workloads=20))
    token = create_token(fuzz_store, "fuzz", "admin")[0]
    with TestClient(app):  # runs the lifespan (and stops the plan runner afterwards)
        yield app, token


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case[Any], fuzz_app: tuple[object, str]) -> None:
    """No 5xx, no stack trace, and every answer is what the spec says: a documented status,
    its content type, a body matching its schema (200s and RFC 9457 problems alike)."""
    app, token = fuzz_app
    response = case.call(app=app, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    assert "Traceback" not in response.text
    case.validate_response(response, checks=CHECKS)
