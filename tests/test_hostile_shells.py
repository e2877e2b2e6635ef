"""The shells under a hostile pass (atk27): the API's forged cursors and request bodies in a
content coding it does not decode, the CLI with its standard streams closed."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from test_api import ESTIMATE, Api, assert_problem, running_api
from test_rules_engine import DESIGN_REQUEST


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


@pytest.mark.parametrize(
    ("route", "coding", "body"),
    [
        ("/v1/check", "gzip", gzip.compress(json.dumps(DESIGN_REQUEST).encode(), mtime=0)),
        ("/v1/check", "br", json.dumps(DESIGN_REQUEST).encode()),  # a plain body so labelled
        ("/v1/check", "identity, gzip", json.dumps(DESIGN_REQUEST).encode()),
        ("/v1/estimate", "deflate", json.dumps(ESTIMATE).encode()),
        ("/v1/plans", "gzip", gzip.compress(b"straits: 1\n", mtime=0)),
    ],
)
def test_a_body_in_a_content_coding_is_a_415(
    api: Api, route: str, coding: str, body: bytes
) -> None:
    headers = {
        **api.auth("hz-cloud", "planner"),
        "Content-Type": "application/json",
        "Content-Encoding": coding,
    }
    r = api.client.post(route, content=body, headers=headers)
    assert assert_problem(r, 415)["path"] == "Content-Encoding"
    assert r.headers["accept-encoding"] == "identity"


def test_two_content_encoding_headers_are_both_read(api: Api) -> None:
    headers = [
        *api.auth("hz-cloud", "planner").items(),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Content-Encoding", "identity"),
    ]
    r = api.client.post("/v1/check", content=json.dumps(DESIGN_REQUEST).encode(), headers=headers)
    assert_problem(r, 415)


def test_identity_is_read_as_before(api: Api) -> None:
    headers = {**api.auth("hz-cloud", "planner"), "Content-Encoding": "identity"}
    r = api.client.post("/v1/check", json=DESIGN_REQUEST, headers=headers)
    assert r.status_code == 200, r.text


# --- the CLI -----------------------------------------------------------------------------------
def _closed(*args: str, close: str = ">&-") -> subprocess.CompletedProcess[bytes]:
    """``straits ARGS`` started with a standard stream closed (``>&-``, ``2>&-``)."""
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -m straits "$@" {close}', sys.executable, *args],
        capture_output=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("chips", "--json"),  # an AttributeError traceback, exit 1
        ("chips",),  # the table went nowhere, exit 0
        ("chips", "-o", "yaml"),
        ("--version",),
        ("rules", "list"),
    ],
)
def test_a_closed_standard_output_is_exit_1_and_says_so(args: tuple[str, ...]) -> None:
    p = _closed(*args)
    assert p.returncode == 1, p.stderr
    assert b"Traceback" not in p.stderr
    assert p.stderr.count(b"error:") == 1 and b"standard output" in p.stderr, p.stderr


def test_a_closed_standard_output_stops_nothing_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    p = _closed("scenario", "generate", "--workloads", "3", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "workloads:" in out.read_text() and not p.stderr.count(b"error:")


def test_closed_standard_error_keeps_the_exit_status() -> None:
    assert _closed("plan", "/nonexistent.yaml", close="2>&-").returncode == 2
    assert _closed("chips", "--json", close=">&- 2>&-").returncode == 1


def _straits(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        timeout=300,
        env={**os.environ, **env},
    )


EXAMPLES = Path(__file__).parents[1] / "src" / "straits" / "examples"


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize(
    "args",
    [
        ("check", str(EXAMPLES / "request.json")),  # a '•' in the table
        ("rules", "show", "cn-cbdf-2024-assessment"),
        ("plan", "--help"),  # a '…' in the help
    ],
)
def test_text_on_a_standard_output_that_cannot_encode_it(
    args: tuple[str, ...], encoding: str
) -> None:
    p = _straits(*args, PYTHONIOENCODING=encoding)
    assert p.returncode == 0, p.stderr[-500:]
    assert b"Traceback" not in p.stderr


def test_yaml_on_an_ascii_standard_output_is_the_same_document() -> None:
    args = ("rules", "show", "cn-cbdf-2024-assessment", "-o", "yaml")
    utf8, ascii_ = _straits(*args), _straits(*args, PYTHONIOENCODING="ascii")
    assert utf8.returncode == ascii_.returncode == 0, ascii_.stderr[-500:]
    assert not utf8.stdout.isascii() and ascii_.stdout.isascii()
    assert yaml.safe_load(ascii_.stdout) == yaml.safe_load(utf8.stdout)


@pytest.mark.parametrize("seq", ["99999999999999999999", str(2**63)])
def test_a_receipt_beyond_any_ledger_is_a_usage_error(seq: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    p = _straits("ledger", "receipt", seq, "--db", db, "-o", str(tmp_path / "r.json"))
    assert p.returncode == 2, p.stderr[-500:]  # an OverflowError traceback, exit 1
    assert b"Traceback" not in p.stderr and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("data_home", ["/dev/null", "/proc"])
def test_a_data_home_where_no_directory_can_be_made_is_a_store_error(data_home: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STRAITS_DATABASE_URL"}
    p = subprocess.run(
        [sys.executable, "-m", "straits", "ledger", "verify", "--json"],
        capture_output=True,
        timeout=300,
        env={**env, "XDG_DATA_HOME": data_home},
    )
    assert p.returncode == 1 and p.stdout == b"", p.stderr[-500:]  # a NotADirectoryError
    assert b"Traceback" not in p.stderr and b"XDG_DATA_HOME" in p.stderr


@pytest.mark.parametrize(
    ("var", "width"),
    [
        ("COLUMNS", "2000000"),  # --help padded each line to 2 million columns: 94 MB, 8 s
        ("TERMINAL_WIDTH", "2000000"),
        ("COLUMNS", "9" * 30),
        ("TERMINAL_WIDTH", "abc"),  # a ValueError traceback from Typer's help
        ("TERMINAL_WIDTH", "-5"),
    ],
)
def test_a_hostile_terminal_width_makes_help_of_bounded_size(
    var: str, width: str, tmp_path: Path
) -> None:
    out = tmp_path / "help.txt"
    with out.open("wb") as f:
        p = subprocess.run(
            [sys.executable, "-m", "straits", "plan", "--help"],
            stdout=f,
            stderr=subprocess.PIPE,
            timeout=120,
            env={**os.environ, var: width},
        )
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr[-500:]
    assert 1000 < out.stat().st_size < 200_000


def test_a_console_secret_that_is_no_utf8_signs_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STRAITS_CONSOLE_SECRET=$'\\xff...' reaches Python as a lone surrogate: every console
    page that signs a form was a 500."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store

    secret = b"\xffsecret-in-latin-1".decode("utf-8", "surrogateescape")
    monkeypatch.setenv("STRAITS_CONSOLE_SECRET", secret)
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        page = c.get("/ui/login")
        assert page.status_code == 200 and 'name="csrf"' in page.text
    store.close()


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/ledger/verify?head=3:" + "a" * 64, "head"),  # answered ok, the head unread
        ("/v1/plans?stauts=done", "stauts"),  # listed every plan
        ("/v1/chips?x=%00", "x"),
        ("/v1/rules?regime=enacted&packs=eu-gdpr", "packs"),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_a_400_naming_it(
    api: Api, url: str, name: str
) -> None:
    r = api.client.get(url, headers=api.auth("hz-cloud", "admin"))
    assert assert_problem(r, 400)["path"] == name


def test_the_parameters_a_route_takes_are_still_taken(api: Api) -> None:
    a = api.auth("hz-cloud", "admin")
    assert api.client.get("/v1/ledger/verify?quick=true", headers=a).status_code == 200
    assert api.client.get("/v1/plans?status=done&limit=5", headers=a).status_code == 200
    assert api.client.get("/v1/rules?pack=eu-gdpr&pack=us-ear", headers=a).status_code == 200
    assert api.client.get("/v1/chips?x=1").status_code == 401  # the token first, as before
