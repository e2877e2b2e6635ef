"""The shells under a hostile pass (atk27): the API's forged cursors and request bodies in a
content coding it does not decode, the CLI with its standard streams closed."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from test_api import Api, assert_problem, running_api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- the API -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "forged",
    [
        '["2025-01-01T00:00:00", "\\ud800"]',  # a lone surrogate: a 500 from the driver
        '["\\udfff", "abc"]',
        '["2025-01-01T00:00:00", "a\\u0000b"]',  # a NUL, taken as an id
        '["2025-01-01T00:00:00", {"a": 1}]',  # an object, taken as an id
        '["2025-01-01T00:00:00", [1, 2]]',
        '["2025-01-01T00:00:00", 1e308]',
        '[20250101, "abc"]',
    ],
)
def test_a_forged_cursor_is_a_400_naming_it(api: Api, forged: str) -> None:
    r = api.client.get(
        "/v1/plans", params={"cursor": _cursor(forged)}, headers=api.auth("hz-cloud", "viewer")
    )
    assert assert_problem(r, 400)["path"] == "cursor"
