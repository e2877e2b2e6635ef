"""Every answer the API gives is one its OpenAPI document declares for that operation: the
status among the operation's responses, a JSON body that validates against the declared schema,
and a problem body (RFC 9457) whose ``status`` is the HTTP status (openapi51). A client
generated from ``/openapi.json`` handles exactly what it is told to expect."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from served import served
from straits.cli.plan_source import record
from straits.export.skypilot import ENV_PLAN
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plandoc import from_store
from straits.rules import RuleSet
from straits.server.protocol import MAX_HEAD_BYTES
from test_api import Api, running_api
from test_hostile_export_plans import EXAMPLE
from test_http_wire import answers
from test_ledger_log import sql

ROUTES_PAGE = Path(__file__).resolve().parents[1] / "docs" / "server-and-ledger.md"


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


def conforms(spec: dict[str, Any], method: str, path: str, r: Any) -> list[str]:
    """What of answer ``r`` the spec's operation ``method path`` does not declare."""
    op = spec["paths"][path][method]
    status = str(r.status_code)
    if status not in op["responses"]:
        return [f"{method.upper()} {path}: {status} not declared"]
    problems: list[str] = []
    media = r.headers.get("content-type", "").split(";")[0].strip()
    if r.status_code >= 400 and media != "text/plain":  # the SkyPilot hook's rejection
        body = r.json()
        if media != "application/problem+json" or body.get("status") != r.status_code:
            problems.append(f"{method.upper()} {path}: {status} is no problem of its status")
        problems += [f"{k} missing" for k in ("type", "title", "status") if k not in body]
    content = op["responses"][status].get("content") or {}
    if content and media not in content:
        return [*problems, f"{method.upper()} {path}: {status} as {media} not declared"]
    schema = (content.get(media) or {}).get("schema")
    if schema and media.endswith("json"):
        text = json.dumps(schema).replace('"#/components', '"urn:spec#/components')
        registry = Registry().with_resource(
            "urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012)
        )
        validator = jsonschema.Draft202012Validator(json.loads(text), registry=registry)
        problems += [e.message for e in validator.iter_errors(r.json())]
    return problems


# Every request carries a body's headers, whatever its operation: a Content-Length that is no
# number (400), one over the body limit (413), a content coding (415 where a body may be read).
# The guard (server/app.py BodyLimit) answers them before any route; the spec declared 413 only
# where an operation has a request body, 400 only where it has parameters, 415 on none of the
# operations without a body (GET /healthz: 200 and 500 only).
ANY_ROUTE: list[tuple[str, str, dict[str, str]]] = [
    (method, path, headers)
    for method, path in [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/v1/chips"),
        ("get", "/v1/ledger/verify"),
        ("delete", "/v1/plans/{plan_id}"),
    ]
    for headers in [
        {"Content-Length": "abc"},
        {"Content-Length": "99999999"},
        {"Content-Encoding": "gzip"},
    ]
]


@pytest.mark.parametrize(("method", "path", "headers"), ANY_ROUTE)
def test_a_body_guard_answer_is_declared_on_every_operation(
    api: Api, method: str, path: str, headers: dict[str, str]
) -> None:
    spec = api.client.get("/openapi.json").json()
    url = path.replace("{plan_id}", "0123456789abcdef")
    sent = {**api.auth("t", "planner"), **headers}
    r = api.client.request(method.upper(), url, headers=sent, content=b"abc")
    assert r.status_code in (200, 400, 404, 413, 415)
    assert conforms(spec, method, path, r) == []


@pytest.mark.parametrize("path", ["/v1/chips", "/healthz", "/v1/plans"])
def test_a_parameter_the_route_does_not_take_is_a_declared_400(api: Api, path: str) -> None:
    """The API refuses a query parameter an operation does not take (``server/query.py``): on
    ``GET /v1/chips``, which takes none, that 400 was not declared (``/healthz`` ignores it)."""
    spec = api.client.get("/openapi.json").json()
    r = api.client.get(f"{path}?stauts=done", headers=api.auth("t", "viewer"))
    assert r.status_code == (200 if path == "/healthz" else 400)
    assert conforms(spec, "get", path, r) == []


#: what the protocol layer (server/protocol.py) answers before any route is known, whatever the
#: operation: h11's 400, a head over MAX_HEAD_BYTES (431), a request over --max-connections
#: (503), an HTTP version other than 1.x (505)
BEFORE_ANY_ROUTE = ("400", "431", "503", "505")


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method, path) for path, ops in spec["paths"].items() for method in ops]


def target(path: str) -> str:
    return path.replace("{plan_id}", "0123456789abcdef").replace("{seq}", "1")


def test_every_operation_declares_what_the_protocol_answers_before_any_route(api: Api) -> None:
    """The protocol's answers were listed in the problem table only, not per operation: a
    client generated from the spec met an undeclared 431, 505 (every operation) or 503
    (``/healthz`` over ``--max-connections``)."""
    spec = api.client.get("/openapi.json").json()
    missing = [
        f"{method.upper()} {path}: {status}"
        for method, path in operations(spec)
        for status in BEFORE_ANY_ROUTE
        if (spec["paths"][path][method]["responses"].get(status) or {})
        .get("content", {})
        .get("application/problem+json")
        != {"schema": {"$ref": "#/components/schemas/Problem"}}
    ]
    assert missing == []


def _over_the_wire(port: int, raw: bytes) -> httpx.Response:
    """``raw`` sent to the server on ``port``; its one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    [(status, headers, body)] = answers(got)
    return httpx.Response(status, headers=headers, content=body)


@pytest.mark.slow
def test_every_protocol_answer_over_the_wire_is_declared(tmp_path: Path) -> None:
    """Raw requests to a real server, for every operation of its spec: no ``Host`` (h11's
    400), a head over the limit (431), ``HTTP/2.0`` (505), and a request while
    ``--max-connections 1`` is held by another connection (503)."""
    with served(
        f"sqlite:///{tmp_path / 'db.sqlite'}", log=tmp_path / "log", args=("--max-connections", "1")
    ) as url:
        port = int(url.rsplit(":", 1)[1])
        spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
        wrong: list[str] = []
        for method, path in operations(spec):
            line = f"{method.upper()} {target(path)}".encode()
            pad = b"X-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\n"
            for raw, status in [
                (line + b" HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
                (line + b" HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n", 431),
                (line + b" HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ]:
                r = _over_the_wire(port, raw)
                assert r.status_code == status, r.text
                wrong += conforms(spec, method, path, r)
            with socket.create_connection(("127.0.0.1", port), timeout=10):  # held: the 1
                r = _over_the_wire(port, line + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r.status_code == 503, r.text
            wrong += conforms(spec, method, path, r)
    assert wrong == []


def test_head_answers_what_its_get_operation_declares(api: Api) -> None:
    """HEAD is answered beside every GET (``server/head.py``) and is no operation of the spec,
    as FastAPI and Starlette leave it out: its answer is GET's, without the body, so the GET
    operation's declared statuses and headers are HEAD's (RFC 9110 9.3.2). Checked here for
    every GET operation rather than declared twice."""
    spec = api.client.get("/openapi.json").json()
    h = api.auth("t", "viewer")
    wrong: list[str] = []
    for method, path in operations(spec):
        assert method != "head", path  # documented as implied, never an operation
        if method != "get":
            continue
        head = api.client.head(target(path), headers=h)
        get = api.client.get(target(path), headers=h)
        if str(head.status_code) not in spec["paths"][path]["get"]["responses"]:
            wrong.append(f"HEAD {path}: {head.status_code} not declared by GET")
        if head.content or head.status_code != get.status_code:
            wrong.append(f"HEAD {path}: {head.status_code}, {len(head.content)} bytes")
        if head.headers.get("content-type") != get.headers.get("content-type"):
            wrong.append(f"HEAD {path}: {head.headers.get('content-type')}")
    assert wrong == []


@pytest.fixture
def altered(api: Api, db_url: str, rules: RuleSet) -> dict[str, Any]:
    """A recorded plan document of tenant ``t`` whose stored copy was then altered."""
    sc = load_scenario(EXAMPLE)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, _, _ = record(api.store, sc, plan, rules, {}, tenant="t", actor="t")
    doc: dict[str, Any] = json.loads(json.dumps(from_store(api.store, plan_id).to_json()))
    sql(db_url, "UPDATE plans SET result = 'not json' WHERE id = :i", i=plan_id)
    return doc


def test_a_plan_the_ledger_does_not_prove_is_a_declared_409(
    api: Api, altered: dict[str, Any]
) -> None:
    """``POST /v1/exports`` of the plan's document and a SkyPilot launch of one of its stages
    answer the 409 every read of that plan answers; neither operation declared a 409."""
    spec = api.client.get("/openapi.json").json()
    h = api.auth("t", "viewer")
    task = {"name": "x", "envs": {ENV_PLAN: altered["id"]}, "resources": {"cpus": 1}}
    launch = {"task": yaml.safe_dump(task)}
    wrong: list[str] = []
    for path, r in [
        ("/v1/exports", api.client.post("/v1/exports?to=slurm", json=altered, headers=h)),
        ("/v1/skypilot/policy", api.client.post("/v1/skypilot/policy", json=launch, headers=h)),
    ]:
        assert r.status_code == 409, r.text
        wrong += conforms(spec, "post", path, r)
    assert wrong == []


def documented_roles() -> dict[tuple[str, str], str]:
    """docs/server-and-ledger.md's route table: (method, path) -> its role cell."""
    rows: dict[tuple[str, str], str] = {}
    for line in ROUTES_PAGE.read_text(encoding="utf-8").splitlines():
        if not re.match(r"\| `(GET|POST|DELETE) /", line):
            continue
        cells = line.replace("\\|", "/").split("|")
        for method, target in re.findall(r"`(GET|POST|DELETE) ([^`]+)`", cells[1]):
            rows[(method.lower(), re.split(r"[\[?]", target)[0])] = cells[2].strip()
    return rows


def test_every_route_declares_the_authentication_its_row_documents(api: Api) -> None:
    """A route the table gives a role needs a bearer token, and says so; one of role ``none``
    declares no security; a row that takes the token as a query parameter (the SkyPilot hook:
    SkyPilot sends no Authorization header) declares that scheme too (it declared the header
    only, so a client generated from the spec could not call the hook as SkyPilot does)."""
    spec = api.client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    wrong: list[str] = []
    for (method, path), role in documented_roles().items():
        op = spec["paths"].get(re.sub(r"\{id\}", "{plan_id}", path), {}).get(method)
        if op is None:  # /openapi.json itself: FastAPI serves it outside the document
            continue
        names = {name for alternative in op.get("security", []) for name in alternative}
        if role == "none":
            wrong += [f"{method} {path}: security {sorted(names)}"] if names else []
            continue
        if "bearer" not in names:
            wrong.append(f"{method} {path}: no bearer security")
        if "query parameter" in role:
            query = {
                schemes[n]["name"]
                for n in names
                if schemes[n]["type"] == "apiKey" and schemes[n]["in"] == "query"
            }
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            if not query or not query <= params:
                wrong.append(f"{method} {path}: no token query parameter scheme")
    assert wrong == []
