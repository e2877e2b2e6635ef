"""Tokens in a query string never reach the access log (atk65): the SkyPilot hook's
documented ``?token=`` was logged verbatim by uvicorn."""

from __future__ import annotations

import logging

import pytest

from straits.server.access_log import RedactTokens, install, redact

CASES = [
    (
        "/v1/skypilot/policy?token=st_abc_def&date=2025-06-01",
        "/v1/skypilot/policy?token=REDACTED&date=2025-06-01",
    ),
    (
        "/v1/skypilot/policy?date=2025-06-01&token=st_abc",
        "/v1/skypilot/policy?date=2025-06-01&token=REDACTED",
    ),
    ("/x?TOKEN=a&token=b", "/x?TOKEN=REDACTED&token=REDACTED"),
    ("/x?mytoken=keep&token=", "/x?mytoken=keep&token=REDACTED"),
    ("/v1/plans?limit=5", "/v1/plans?limit=5"),
    ("/ui/tokens/token=1", "/ui/tokens/token=1"),  # a path, not a parameter
    # a name percent-encoded is the same parameter to the server: it authenticated, logged
    ("/v1/skypilot/policy?%74oken=st_a_b", "/v1/skypilot/policy?%74oken=REDACTED"),
    ("/x?date=1&t%6Fken=st_a_b&y=2", "/x?date=1&t%6Fken=REDACTED&y=2"),
    ("/x?token+=st_a_b", "/x?token+=REDACTED"),
]


@pytest.mark.parametrize(("target", "logged"), CASES)
def test_a_token_parameter_is_redacted(target: str, logged: str) -> None:
    assert redact(target) == logged


def test_the_access_logger_writes_no_token(caplog: pytest.LogCaptureFixture) -> None:
    install()
    install()  # once, however often installed
    logger = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, RedactTokens) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "POST",
            "/v1/skypilot/policy?token=st_secret_value&date=2025-06-01",
            "1.1",
            400,
        )
    text = caplog.text
    assert "st_secret_value" not in text and "token=REDACTED&date=2025-06-01" in text
