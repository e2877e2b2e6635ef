"""The API for integrators: lists that page (cursor in the Link header, filters), structured
ledger bodies, YAML scenarios, hostile bodies, and straits.client over all of it. Against SQLite
and, when configured, PostgreSQL. (The export and impact routes: test_api_export_impact.py.)"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.client import Client
from straits.errors import AuthError, InputError, NotFoundError
from straits.loading import load_scenario
from straits.plandoc import canonical
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, queue
from test_api import Api, scenario_doc, wait_done
from test_cli_conventions import run
from test_rules_engine import DESIGN_REQUEST


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_documents_api(db_url)


def running_documents_api(db_url: str) -> Iterator[Api]:
    """The API over ``db_url`` in a test client (256 KiB bodies, 30 s plans): the ``api``
    fixture's, for other modules' fixtures to yield from."""
    store = Store(db_url)
    app = create_app(store, settings=Settings(max_body_bytes=256 * 1024, max_time_limit=30))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def client_of(a: Api, token: str | None) -> Client:
    return Client(
        "http://testserver", token, http=TestClient(a.client.app, raise_server_exceptions=False)
    )


def queue_plans(a: Api, example_path: Path, tenant: str, n: int, name: str) -> list[str]:
    """``n`` queued plans of a copy of the example named ``name`` (no planning: cheap; queued
    for rules no worker of this server has, so none takes them)."""
    sc = load_scenario(example_path).model_copy(update={"name": name})
    return [
        queue.enqueue(
            a.store,
            sc,
            {"solver": "greedy"},
            tenant=tenant,
            actor="test",
            record=False,
            rules_digest="rules-of-another-server",
        )
        for _ in range(n)
    ]


def pages(a: Api, url: str, headers: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    next_url: str | None = url
    while next_url:
        r = a.client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        yield r.json()
        link = r.links.get("next")
        next_url = link["url"] if link else None


def _files(tgz: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


# --- lists ---------------------------------------------------------------------------------------
def test_plans_page_newest_first_with_scenario_names(api: Api, example_path: Path) -> None:
    a = api.auth("hz-cloud", "viewer")
    made = queue_plans(api, example_path, "hz-cloud", 4, "alpha")
    made += queue_plans(api, example_path, "hz-cloud", 3, "beta")
    queue_plans(api, example_path, "rival", 2, "alpha")
    everything = api.client.get("/v1/plans", params={"limit": 100}, headers=a).json()
    assert [p["id"] for p in everything] == made[::-1]
    assert {p["scenario"] for p in everything} == {"alpha", "beta"}
    assert "Link" not in api.client.get("/v1/plans", headers=a).headers
    for size in (1, 2, 3, 6, 7):
        walked = [p["id"] for page in pages(api, f"/v1/plans?limit={size}", a) for p in page]
        assert walked == made[::-1], size
    alpha = api.client.get("/v1/plans", params={"scenario": "alpha"}, headers=a).json()
    assert [p["id"] for p in alpha] == made[:4][::-1]
    assert api.client.get("/v1/plans", params={"status": "done"}, headers=a).json() == []


def test_a_cursor_is_stable_while_plans_are_added(api: Api, example_path: Path) -> None:
    a = api.auth("hz-cloud", "viewer")
    made = queue_plans(api, example_path, "hz-cloud", 5, "alpha")
    first = api.client.get("/v1/plans", params={"limit": 2}, headers=a)
    newer = queue_plans(api, example_path, "hz-cloud", 2, "alpha")
    rest = [p["id"] for page in pages(api, first.links["next"]["url"], a) for p in page]
    assert [p["id"] for p in first.json()] + rest == made[::-1]
    assert not set(rest) & set(newer)


@pytest.mark.parametrize(
    ("params", "status", "path"),
    [
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
        ({"cursor": "WzFd"}, 400, "cursor"),  # base64 of [1]: the wrong shape
        ({"status": "finished"}, 400, "status"),
        ({"since": "last tuesday"}, 400, "since"),
        ({"tenant": "rival"}, 403, None),
        ({"limit": 0}, 400, None),
    ],
)
def test_bad_list_parameters(
    api: Api, params: dict[str, Any], status: int, path: str | None
) -> None:
    r = api.client.get("/v1/plans", params=params, headers=api.auth("hz-cloud", "viewer"))
    assert r.status_code == status, r.text
    if path:
        assert r.json()["path"] == path


@pytest.mark.parametrize("hours", [0, 5, -8, 14])
def test_since_and_until_are_instants_in_any_zone(api: Api, example_path: Path, hours: int) -> None:
    """One instant an hour before every plan, written in another zone, filters as in UTC: on
    SQLite `since=...+05:00` matched none and `until` all (atk70)."""
    import datetime as dt

    queue_plans(api, example_path, "hz-cloud", 3, "zoned")
    h = api.auth("hz-cloud", "viewer")
    listed = api.client.get("/v1/plans", headers=h).json()
    oldest = min(dt.datetime.fromisoformat(p["created_at"]) for p in listed)
    t = (oldest - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=hours)))
    since = api.client.get("/v1/plans", params={"since": t.isoformat()}, headers=h)
    until = api.client.get("/v1/plans", params={"until": t.isoformat()}, headers=h)
    assert since.status_code == until.status_code == 200
    assert len(since.json()) == len(listed) == 3
    assert until.json() == []
    # swapped, or one instant twice: no range at all, refused (it was an empty 200)
    later = t + dt.timedelta(hours=2)
    for a, b in ((later, t), (t, t)):
        r = api.client.get(
            "/v1/plans", params={"since": a.isoformat(), "until": b.isoformat()}, headers=h
        )
        assert r.status_code == 400 and r.json()["path"] == "until", r.text
    r = api.client.get(
        "/v1/plans", params={"since": t.isoformat(), "until": later.isoformat()}, headers=h
    )
    assert r.status_code == 200 and len(r.json()) == 3


def test_admins_filter_by_tenant(api: Api, example_path: Path) -> None:
    rival = queue_plans(api, example_path, "rival", 2, "alpha")
    queue_plans(api, example_path, "hz-cloud", 1, "alpha")
    admin = api.auth("ops", "admin")
    got = api.client.get("/v1/plans", params={"tenant": "rival"}, headers=admin).json()
    assert [p["id"] for p in got] == rival[::-1] and {p["tenant"] for p in got} == {"rival"}


def test_ledger_entries_carry_their_body_as_an_object(api: Api) -> None:
    h = api.auth("a", "planner")
    for _ in range(5):
        api.client.post("/v1/check", params={"record": "true"}, json=DESIGN_REQUEST, headers=h)
    api.client.post(
        "/v1/check",
        params={"record": "true"},
        json=DESIGN_REQUEST,
        headers=api.auth("b", "planner"),
    )
    entries = [e for page in pages(api, "/v1/ledger/entries?limit=2", h) for e in page]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    for e in entries:
        assert e["content"] == json.loads(e["body"]) and canonical(e["content"]) == e["body"]
        assert e["content"]["result"]["decision"] == "conditional"
    one = api.client.get("/v1/ledger/entries/3", headers=h).json()
    assert one == entries[2]
    assert api.client.get("/v1/ledger/entries/6", headers=h).status_code == 404  # b's
    assert api.client.get("/v1/ledger/entries/99", headers=h).status_code == 404


# --- YAML bodies ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type", ["application/yaml", "text/plain", "application/x-www-form-urlencoded"]
)
def test_a_scenario_may_be_posted_as_yaml(api: Api, example_path: Path, content_type: str) -> None:
    h = {**api.auth("hz-cloud", "planner"), "Content-Type": content_type}
    r = api.client.post(
        "/v1/plans",
        params={"solver": "greedy", "record": "false"},
        content=example_path.read_bytes(),
        headers=h,
    )
    assert r.status_code == 202, r.text
    assert wait_done(api, r.json()["id"], h)["status"] == "done"


def test_bad_yaml_names_the_line(api: Api) -> None:
    h = {**api.auth("hz-cloud", "planner"), "Content-Type": "application/yaml"}
    r = api.client.post("/v1/plans", content=b"straits: 1\nname: x\n  date: [2025\n", headers=h)
    assert r.status_code == 400 and "line 3" in r.json()["error"]


# --- the client ----------------------------------------------------------------------------------
def test_the_client_wraps_the_api(api: Api, example_path: Path) -> None:
    token = api.token("hz-cloud", "planner")
    c = client_of(api, token)
    assert c.health()["status"] == "ok"
    assert c.check(DESIGN_REQUEST) == json.loads(
        run("check", "--json", stdin=json.dumps(DESIGN_REQUEST)).stdout
    )
    job = c.submit_plan(example_path.read_text(), solver="greedy")
    done = c.wait(job["id"], poll=0.2, timeout=300)
    assert done["status"] == "done"
    doc = c.plan_document(job["id"])
    assert doc["id"] == job["id"] and doc["inputs"]["options"]["solver"] == "greedy"
    queue_plans(api, example_path, "hz-cloud", 4, "alpha")
    listed = list(c.plans(page_size=2))
    assert len(listed) == 5 and listed[-1]["id"] == job["id"]
    assert [p["id"] for p in c.plans(scenario="offshore-2025")] == [job["id"]]
    assert _files(c.export(job["id"], ["slurm"])) == _files(c.export_document(doc, ["slurm"]))
    entries = list(c.ledger_entries(page_size=1))
    assert [e["seq"] for e in entries] == [1] and entries[0]["content"]["result"]["plan_id"]
    assert c.ledger_verify()["ok"]
    assert {x["id"] for x in c.chips()} >= {"H100-SXM", "H20"}


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda c: c.check({**DESIGN_REQUEST, "chip": "H300"}), InputError, "chip"),
        (lambda c: c.plan_job("nope"), NotFoundError, "nope"),
        (lambda c: c.export("nope", ["slurm"]), NotFoundError, "nope"),
        (lambda c: c.submit_plan({"straits": 1}), InputError, "server"),
    ],
)
def test_client_errors_are_straits_errors(
    api: Api, call: Any, error: type[Exception], words: str
) -> None:
    c = client_of(api, api.token("hz-cloud", "planner"))
    with pytest.raises(error, match=words):
        call(c)


def test_client_without_a_token_says_how_to_get_one(api: Api) -> None:
    with pytest.raises(AuthError, match="STRAITS_TOKEN") as exc:
        client_of(api, None).chips()
    assert exc.value.status == 401


@pytest.mark.parametrize(
    ("route", "body", "content_type"),
    [
        (
            "/v1/plans",
            "a:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)),
            "application/yaml",
        ),
        ("/v1/plans", "[" * 20_000 + "]" * 20_000, "application/yaml"),
        ("/v1/exports?to=slurm", "[" * 20_000 + "]" * 20_000, "text/plain"),
        ("/v1/exports?to=slurm", '{"status": "optimal", "assignments": []}', "application/json"),
        ("/v1/impact", "{date: 2025-06-01, documents: [[]]}", "application/yaml"),
        # an explicit tag on text it cannot hold raised ValueError/KeyError inside PyYAML
        ("/v1/plans", "name: !!int zz\n", "application/yaml"),
        ("/v1/plans", "name: !!bool maybe\n", "application/yaml"),
        ("/v1/impact", "date: !!float .\n", "application/yaml"),
    ],
)
def test_hostile_bodies_are_4xx(api: Api, route: str, body: str, content_type: str) -> None:
    h = {**api.auth("hz-cloud", "planner"), "Content-Type": content_type}
    r = api.client.post(route, content=body.encode(), headers=h)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text


def test_a_body_with_thousands_of_errors_is_answered(api: Api, example_path: Path) -> None:
    """Every one of 3,000 datasets is wrong: one error naming the first, and how many more
    (the error summary is linear in the number of errors; it was quadratic)."""
    doc = scenario_doc(example_path)
    doc["datasets"] = [{"id": f"d{i}", "tokens": -1} for i in range(3000)]
    r = api.client.post("/v1/plans", json=doc, headers=api.auth("hz-cloud", "planner"))
    assert r.status_code == 400, r.text
    assert r.json()["path"].startswith("datasets[0]")
    assert "more problems" in r.json()["error"]
