"""The Python API (``straits.api``) called as a library user and an attacker call it (pyapi30):
wrong types, models built with ``model_construct``, NaN and boolean chip counts, dates and
regimes no rule knows, and numbers written as text in spellings JSON has not. Each is an error
of the one tree (``straits.errors``) naming the argument or field, never an AttributeError from
deep inside or a silently wrong answer. Table-driven."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from straits import api
from straits.client import Client
from straits.errors import InputError, RequestError, ScenarioError, StoreError
from straits.loading import parse_scenario
from straits.model.request import CheckRequest, EstimateRequest
from straits.rules import ruleset
from straits.store import Store
from test_api import Api, assert_problem, running_api
from test_ledger_cli import straits

REQ: dict[str, Any] = {
    "date": "2025-06-01",
    "action": "finetune",
    "tenant": {"hq": "CN"},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
}
EST: dict[str, Any] = {
    "model": {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32},
    "tokens": 1e11,
    "chip": "H100-SXM",
    "chips": 64,
}
RULES = ruleset()
EST_REQ = EstimateRequest.model_validate(EST)
EXAMPLES = Path(__file__).parent.parent / "src" / "straits" / "examples"
DAY = dt.date(2025, 6, 1)

# --- numbers written as text -------------------------------------------------------------------
#: text that is no number as JSON writes one: pydantic's lax mode read the first four as the
#: number; Arabic-Indic and fullwidth digits and a grouped fraction it refused already
NOT_NUMBERS = [
    "3_000_000",
    " 3000000 ",
    "3000000\n",
    "\u00a05",
    "1_0.5",
    "\u0663",
    "\uff13",
    "0999999",  # a leading zero: YAML 1.1 reads 0755 as octal, YAML 1.2 as 755, JSON neither
    "00.5",
]
#: numbers written as text as JSON writes them: still read (docs/contracts.md)
NUMBERS = [("3000000", 3_000_000), ("3000000.0", 3_000_000), ("+5", 5), ("10.0", 10)]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_check_refuses_a_count_written_in_a_spelling_json_has_not(text: str) -> None:
    data = {"origin": "CN", "classes": ["personal"], "subjects": text}
    r = straits("check", "--json", "-", stdin=json.dumps({**REQ, "data": data}))
    assert r.returncode == 2 and "data.subjects" in r.stderr, (r.returncode, r.stdout)
    with pytest.raises(RequestError) as exc:
        api.parse_check_document({**REQ, "data": data}, "req")
    assert exc.value.path == "data.subjects"


@pytest.mark.parametrize(("text", "value"), NUMBERS)
def test_a_count_written_as_json_number_text_is_still_read(text: str, value: int) -> None:
    data = {"origin": "CN", "classes": ["personal"], "subjects": text}
    (req,), _ = api.parse_check_document({**REQ, "data": data}, "req")
    assert req.data is not None and req.data.subjects == value


@pytest.mark.parametrize("text", ["4_096", " 4096", b"4096", "04096"])
def test_a_scenario_refuses_a_pool_count_written_so(text: Any) -> None:
    doc = yaml.safe_load((EXAMPLES / "offshore-2025.yaml").read_text())
    doc["sites"][0]["pools"][0]["count"] = text
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(doc)
    assert exc.value.path == "sites[0].pools[0].count"


@pytest.mark.parametrize("text", ["1_000_000", b"1000000"])
def test_an_estimate_refuses_tokens_written_so(text: Any) -> None:
    with pytest.raises(RequestError) as exc:
        api.estimate_json({**EST, "tokens": text})  # type: ignore[arg-type]
    assert exc.value.path == "tokens"


# --- arguments of the wrong kind ---------------------------------------------------------------
def _constructed_check(**fields: Any) -> CheckRequest:
    return CheckRequest.model_construct(**fields)


def _constructed_estimate(**fields: Any) -> EstimateRequest:
    return EstimateRequest.model_construct(**fields)


# (call, the error's class, its path): each was an AttributeError, TypeError, IndexError,
# OverflowError, or an answer (NaN chips, no rule in force) before
BAD_CALLS: list[tuple[str, Callable[[], Any], type[InputError], str]] = [
    (
        "document text bytes",
        lambda: api.parse_check_document([{}], "req", b"- {}"),  # type: ignore[arg-type]
        RequestError,
        "text",
    ),
    ("rules None", lambda: api.check_json(None, [], True), RequestError, "rules"),  # type: ignore[arg-type]
    ("requests str", lambda: api.check_json(RULES, "x", True), RequestError, "requests"),  # type: ignore[arg-type]
    ("no request, one", lambda: api.check_json(RULES, [], False), RequestError, "requests"),
    ("request int", lambda: api.check_json(RULES, [1], True), RequestError, "requests[0]"),  # type: ignore[list-item]
    (
        "constructed, empty",
        lambda: api.check_json(RULES, [_constructed_check()], False),
        RequestError,
        "date",
    ),
    (
        "constructed, bad chip",
        lambda: api.check_json(RULES, [_constructed_check(**{**REQ, "chip": "NOPE"})], False),
        RequestError,
        "chip",
    ),
    ("estimate None", lambda: api.estimate_json(None), RequestError, "req"),  # type: ignore[arg-type]
    (
        "constructed, NaN tokens",
        lambda: api.estimate_json(_constructed_estimate(**{**EST, "tokens": float("nan")})),
        RequestError,
        "tokens",
    ),
    ("chips NaN", lambda: api.estimate_json(EST_REQ, chips=float("nan")), RequestError, "chips"),  # type: ignore[arg-type]
    ("chips True", lambda: api.estimate_json(EST_REQ, chips=True), RequestError, "chips"),
    ("chips 10**30", lambda: api.estimate_json(EST_REQ, chips=10**30), RequestError, "chips"),
    ("chips 0", lambda: api.run_estimate(EST_REQ, 0), RequestError, "chips"),
    ("rules date year 1", lambda: api.rules_json(RULES, dt.date(1, 1, 1)), RequestError, "date"),
    ("rules date 9999", lambda: api.rules_json(RULES, dt.date(9999, 1, 1)), RequestError, "date"),
    (
        "rules date 9 a.m.",
        lambda: api.rules_json(RULES, dt.datetime(2025, 6, 1, 9)),
        RequestError,
        "date",
    ),
    ("rules date int", lambda: api.rules_json(RULES, 20250601), RequestError, "date"),  # type: ignore[arg-type]
    ("regime misspelt", lambda: api.rules_json(RULES, DAY, "enacted "), RequestError, "regime"),  # type: ignore[arg-type]
    ("packs [None]", lambda: api.rules_json(RULES, None, packs=[None]), RequestError, "pack"),  # type: ignore[list-item]
    ("packs_json None", lambda: api.packs_json(None), RequestError, "rules"),  # type: ignore[arg-type]
    ("--to [None]", lambda: api.export_targets([None]), RequestError, "--to"),  # type: ignore[list-item]
    ("--to [1]", lambda: api.export_targets([1]), RequestError, "--to"),  # type: ignore[list-item]
    ("image int", lambda: api.check_image(5), InputError, "--image"),  # type: ignore[arg-type]
    ("image bytes", lambda: api.check_image(b"x"), InputError, "--image"),  # type: ignore[arg-type]
    ("basis, chips NaN", lambda: api.chips_basis(EST_REQ, float("nan")), RequestError, "chips"),  # type: ignore[arg-type]
    ("basis, req None", lambda: api.chips_basis(None), RequestError, "req"),  # type: ignore[arg-type]
    ("estimate, est text", lambda: api.estimate_json(EST_REQ, "x"), RequestError, "est"),  # type: ignore[arg-type]
    ("sweep None", lambda: api.sweep_sizes(None), RequestError, "est"),  # type: ignore[arg-type]
    ("guidance dicts", lambda: api.estimate_guidance(EST_REQ, {}), RequestError, "est"),  # type: ignore[arg-type]
    ("chip_json text", lambda: api.chip_json("H100-SXM"), RequestError, "chip"),  # type: ignore[arg-type]
    ("rule_json text", lambda: api.rule_json("us-ear"), RequestError, "rule"),  # type: ignore[arg-type]
    (
        "export, no scenario",
        lambda: api.export_files(None, {}, RULES, plan_id="p", to=["slurm"]),
        RequestError,
        "scenario",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "path"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_a_bad_argument_is_an_input_error_naming_it(
    call: Callable[[], Any], error: type[InputError], path: str
) -> None:
    with pytest.raises(error) as exc:
        call()
    assert exc.value.path == path
    assert exc.value.exit_code == 2


# (call, what it answers): arguments a library user passes that are read as documented
GOOD_CALLS: list[tuple[str, Callable[[], Any], Callable[[Any], bool]]] = [
    ("request as dict", lambda: api.check_json(RULES, [REQ], False), lambda a: "decision" in a),  # type: ignore[list-item]
    (
        "constructed, complete",
        lambda: api.check_json(RULES, [_constructed_check(**REQ)], False),
        lambda a: a == api.check_json(RULES, [CheckRequest.model_validate(REQ)], False),
    ),
    ("estimate as dict", lambda: api.estimate_json(EST), lambda a: a["chips"] == 64),  # type: ignore[arg-type]
    ("chips as text", lambda: api.estimate_json(EST_REQ, chips="8"), lambda a: a["chips"] == 8),  # type: ignore[arg-type]
    ("date as text", lambda: api.rules_json(RULES, "2025-06-01"), lambda a: len(a) > 0),  # type: ignore[arg-type]
    ("one target as text", lambda: api.export_targets("slurm"), lambda a: a == ("slurm",)),  # type: ignore[arg-type]
    (
        "one pack as text",
        lambda: api.rules_json(RULES, None, packs="us-ear"),  # type: ignore[arg-type]
        lambda a: {r["pack"] for r in a} == {"us-ear"},
    ),
]


@pytest.mark.parametrize(
    ("call", "holds"), [c[1:] for c in GOOD_CALLS], ids=[c[0] for c in GOOD_CALLS]
)
def test_arguments_as_a_library_user_writes_them(
    call: Callable[[], Any], holds: Callable[[Any], bool]
) -> None:
    assert holds(call())


# --- a closed store ----------------------------------------------------------------------------
def _read(store: Store) -> Any:
    with store.session() as session:
        return session.execute(text("SELECT 1")).scalar()


def _write(store: Store) -> Any:
    with store.write() as session:
        return session.execute(text("SELECT 1")).scalar()


# each went on reading and writing the database after close(), without a word
CLOSED_USES: list[tuple[str, Callable[[Store], Any]]] = [
    ("ping", lambda s: s.ping()),
    ("session", _read),
    ("write", _write),
    ("transaction", lambda s: s.transaction(lambda session: 1)),
]


@pytest.mark.parametrize("url", ["file", "sqlite://"])
@pytest.mark.parametrize(("use",), [(c[1],) for c in CLOSED_USES], ids=[c[0] for c in CLOSED_USES])
def test_a_closed_store_refuses_every_use(
    use: Callable[[Store], Any], url: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'straits.db'}" if url == "file" else url)
    assert use(store) in (None, 1)  # open: it answers
    store.close()
    with pytest.raises(StoreError):
        use(store)


# --- the shells over the checked arguments -----------------------------------------------------
@pytest.fixture
def server(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


@pytest.mark.parametrize("date", ["1900-01-01", "0001-01-01", "9999-12-31"])
def test_the_rules_route_refuses_a_date_outside_the_rules_window(server: Api, date: str) -> None:
    """``/v1/rules?date=1900-01-01`` answered 200 ``[]`` (no rule in force); the CLI refused it."""
    r = server.client.get("/v1/rules", params={"date": date}, headers=server.auth("t", "viewer"))
    assert assert_problem(r, 400)["path"] == "date"


# --- the REST client's arguments ---------------------------------------------------------------
def _client(seen: list[str]) -> Client:
    """A client whose server records each path asked and answers a plan job running for two
    polls, then done."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        status = "done" if len(seen) > 2 else "running"
        return httpx.Response(200, json={"id": "p1", "status": status})

    transport = httpx.MockTransport(answer)
    return Client("http://s", http=httpx.Client(base_url="http://s", transport=transport))


# (call, the argument named): each asked another route (and read its answer as this one's),
# raised a ValueError, or (a NaN timeout) polled a plan that never ends for ever
CLIENT_CALLS: list[tuple[str, Callable[[Client], Any], str]] = [
    ("id with ../", lambda c: c.plan_job("x/../../ledger/verify"), "plan_id"),
    ("id with a query", lambda c: c.plan_document("x?status=done"), "plan_id"),
    ("id None", lambda c: c.plan_report(None), "plan_id"),  # type: ignore[arg-type]
    ("id empty", lambda c: c.export("", ["slurm"]), "plan_id"),
    ("seq with a tail", lambda c: c.ledger_entry("1/receipt"), "seq"),  # type: ignore[arg-type]
    ("seq True", lambda c: c.ledger_receipt(True), "seq"),
    ("seq 0", lambda c: c.ledger_entry(0), "seq"),
    ("timeout NaN", lambda c: c.wait("p1", poll=0.01, timeout=float("nan")), "timeout"),
    ("poll negative", lambda c: c.wait("p1", poll=-1), "poll"),
    ("poll NaN", lambda c: c.wait("p1", poll=float("nan")), "poll"),
]


@pytest.mark.parametrize(
    ("call", "path"), [c[1:] for c in CLIENT_CALLS], ids=[c[0] for c in CLIENT_CALLS]
)
def test_the_client_refuses_an_argument_before_asking(
    call: Callable[[Client], Any], path: str
) -> None:
    seen: list[str] = []
    with pytest.raises(InputError) as exc:
        call(_client(seen))
    assert exc.value.path == path and seen == []


def test_the_client_asks_for_a_plan_id_as_given() -> None:
    seen: list[str] = []
    assert _client(seen).wait("p1", poll=0.01, timeout=60)["status"] == "done"
    assert seen == ["/v1/plans/p1"] * 3
