"""A NUL character in a path or query parameter (hostile pass atk39). PostgreSQL refuses NUL
in any text it is asked to compare, so ``GET /v1/plans?scenario=%00``, ``/v1/plans/%00abc``
and an admin's ``/v1/ledger/entries?tenant=%00`` or ``/v1/plans?tenant=%00`` were DataError
500s with an incident there (SQLite answered as for any unknown name). No Straits value holds
a NUL: each is a 400 naming the parameter, on both backends, API and console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from straits.store import ledger
from straits.store.tokens import create_token
from test_api import Api, assert_problem, running_api
from test_console import Browser


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


PATHS = [
    ("/v1/plans?scenario=%00", "scenario"),
    ("/v1/plans/%00abc", "plan_id"),
    ("/v1/plans/abcd%00/plan", "plan_id"),
    ("/v1/ledger/entries?tenant=a%00", "tenant"),
    ("/v1/plans?tenant=%00", "tenant"),
]


@pytest.mark.parametrize("role", ["viewer", "admin"])
@pytest.mark.parametrize(("path", "param"), PATHS, ids=[p[0] for p in PATHS])
def test_a_nul_in_a_parameter_is_a_400_naming_it(
    api: Api, path: str, param: str, role: str
) -> None:
    ledger.record(api.store, tenant="hz-cloud", actor="t", kind="check", body={"i": 1})
    body = assert_problem(api.client.get(path, headers=api.auth("hz-cloud", role)), 400)
    assert body["path"] == param


def test_the_console_refuses_a_nul_too(api: Api) -> None:
    b = Browser(api.client.app, api.store)
    b.sign_in(create_token(api.store, "hz-cloud", "viewer")[0])
    for path in ("/ui/plans/%00abc", "/ui/plans/abcd%00/report.html"):
        r = b.client.get(path)
        assert r.status_code == 400, (path, r.status_code)


@pytest.mark.parametrize("token", ["st_%00_abc", "st_ab%00cd_x", "st_" + "a" * 17 + "_x"])
def test_a_token_id_that_is_no_id_is_a_401(api: Api, token: str) -> None:
    """The SkyPilot route takes its token as a query parameter: an id with a NUL was looked
    up, a DataError on PostgreSQL (500). Token ids are at most 16 letters and digits."""
    r = api.client.post(f"/v1/skypilot/policy?token={token}", json={})
    assert_problem(r, 401)
