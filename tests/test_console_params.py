"""What the console and its static files take from a request beyond the path: conditional
requests on ``/static/*`` (RFC 9110 13.1.2) and the console's date parameters, which are
``YYYY-MM-DD`` as on the API (hostile pass atk79)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.store import Store
from straits.store.tokens import create_token
from straits.web import none_match
from test_console import Browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    store = Store(f"sqlite:///{tmp_path / 'console.db'}")
    app = create_app(store)
    with TestClient(app):
        b = Browser(app, store)
        b.sign_in(create_token(store, "hz-cloud", "viewer")[0])
        yield b
    store.close()


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"{tag}"', True),
        ('W/"{tag}"', True),  # weak comparison: a weak tag of the same opaque part matches
        ('"other", W/"{tag}"', True),
        ('"other" ,"{tag}" ', True),
        ("*", True),
        (" * ", True),
        ('"other"', False),
        ('W/"other", "{tag}x"', False),
        ("{tag}", False),  # no quotes: no entity tag
        ("", False),
    ],
)
def test_if_none_match_compares_weakly_over_the_list(
    browser: Browser, header: str, matches: bool
) -> None:
    """Only one strong tag, given alone, was answered 304; a browser or proxy revalidating
    with ``W/"..."``, a list, or ``*`` got the 1.5 MB file again."""
    first = browser.client.get("/static/swagger-ui-bundle.js")
    etag = first.headers["etag"]
    tag = etag.strip('"')
    r = browser.client.get(
        "/static/swagger-ui-bundle.js", headers={"If-None-Match": header.format(tag=tag)}
    )
    if matches:
        assert r.status_code == 304 and r.content == b""
        assert r.headers["etag"] == etag  # a 304 carries the validator (RFC 9110 15.4.5)
    else:
        assert r.status_code == 200 and r.content == first.content


def test_if_none_match_over_several_header_lines() -> None:
    assert none_match(['"a"', 'W/"b"'], '"b"')
    assert none_match(['"a"'], 'W/"a"')
    assert not none_match(['"a"', '"c"'], '"b"')
    assert not none_match([], '"b"')


@pytest.mark.parametrize(
    "path",
    [
        "/ui/rules?date=86400",  # was "in force on 1970-01-02"
        "/ui/rules?date=0",
        "/ui/rules?date=2025-06-01T00:00:00",
        "/ui/plans/abc/whatif?date=0",  # was a 200, the date moved to the slider's start
        "/ui/plans/abc/whatif?date=1735689600",
    ],
)
def test_console_dates_are_iso_dates_not_unix_times(browser: Browser, path: str) -> None:
    r = browser.client.get(path)
    assert r.status_code == 400, (path, r.status_code)
    assert r.headers["content-type"].startswith("text/html")  # the console's 400 page
    assert "YYYY-MM-DD" in r.text


def test_console_rules_page_still_takes_a_date(browser: Browser) -> None:
    r = browser.client.get("/ui/rules", params={"date": "2025-04-10"})
    assert r.status_code == 200 and "2025-04-10" in r.text
