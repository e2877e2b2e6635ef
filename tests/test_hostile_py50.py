"""py50: the same question through the Python API, the CLI and the server; the public
functions a library user calls (``straits.plan.make_plan``) keep to the one exception tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from straits.errors import RequestError
from straits.loading import load_scenario
from straits.plan import make_plan

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "straits" / "examples"


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return load_scenario(EXAMPLES / "offshore-2025.yaml")


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"regime": "diffusion"}, "regime"),  # was pydantic's ValidationError
        ({"time_limit": -1}, "time_limit"),  # was a ValueError
        ({"time_limit": float("nan")}, "time_limit"),
        ({"rules": "packs"}, "rules"),  # was an AttributeError
        ({"seed": "7"}, "seed"),  # was taken and ignored
        ({"seed": 2**40, "solver": "cpsat"}, "seed"),  # was a TypeError from CP-SAT
    ],
)
def test_make_plan_refuses_arguments_of_the_wrong_kind(scenario, kwargs, path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestError) as err:
        make_plan(scenario, **{"solver": "greedy", **kwargs})
    assert err.value.path == path


def test_make_plan_takes_numbers_of_other_numeric_types(scenario) -> None:  # type: ignore[no-untyped-def]
    """A numpy integer seed or time limit, or a Fraction of seconds, planned before the
    arguments were checked; the check refused them (RequestError naming seed/time_limit)."""
    from fractions import Fraction

    np = pytest.importorskip("numpy")
    for kwargs in (
        {"seed": np.int64(3)},
        {"time_limit": np.int64(20)},
        {"time_limit": np.float32(20.0)},
        {"time_limit": Fraction(41, 2)},
    ):
        plan = make_plan(scenario, solver="greedy", **kwargs)
        assert plan.assignments, kwargs


def test_make_plan_refuses_a_scenario_that_is_none() -> None:
    with pytest.raises(RequestError) as err:
        make_plan(None)  # type: ignore[arg-type]
    assert err.value.path == "scenario"


BAD_CHECK = (
    "date: 2025-06-01\nregime: enacted\naction: finetune\ntenant: {hq: CN}\n"
    "site: {country: SG, operator_hq: SG}\nchip: H100-SXMX\n"
)
BAD_ESTIMATE = (
    '{"model": {"params": 7e10, "layers": 80, "d_model": 8192, "heads": 64, "seq_len": 8192},\n'
    ' "tokens": 1.5e13,\n "chip": "B300"}'
)


def test_a_bad_field_of_a_body_names_its_line_as_the_cli_does(tmp_path: Path) -> None:
    """`line` was null for every field error of /v1/check, /v1/estimate, /v1/plans and
    /v1/exports, where the CLI names the line of the same document."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store
    from test_api import Api

    text = (EXAMPLES / "offshore-2025.yaml").read_text()
    scenario = text.replace("count: 4096", "count: -5", 1)
    line = text[: text.index("count: 4096")].count("\n") + 1
    yaml = {"Content-Type": "application/yaml"}
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        who = Api(client, store).auth("hz-cloud", "planner")
        for route, body, headers, want in (
            ("/v1/check", BAD_CHECK, yaml, 6),
            ("/v1/estimate", BAD_ESTIMATE, {"Content-Type": "application/json"}, 3),
            ("/v1/plans", scenario, yaml, line),
        ):
            r = client.post(route, content=body, headers={**who, **headers})
            assert r.status_code == 400, r.text
            problem = r.json()
            assert problem["line"] == want, problem
            assert problem["error"].startswith(f"request body:{want}: "), problem


def test_the_client_sends_what_the_local_api_reads_and_refuses_the_rest() -> None:
    """A check or estimate with a date object (as PyYAML reads one) was a TypeError where
    ``straits.api`` answers it; a NaN a ValueError; ``rules``/``impact`` with a date as
    text an AttributeError."""
    import datetime as dt
    import json

    import httpx

    from straits.client import Client

    sent: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.params.get("date"), request.content))
        return httpx.Response(200, json=[] if request.url.path == "/v1/rules" else {"ok": 1})

    request = json.loads((EXAMPLES / "request.json").read_text())
    with Client(
        "http://s",
        http=httpx.Client(base_url="http://s", transport=httpx.MockTransport(answer)),
    ) as c:
        c.check({**request, "date": dt.date(2025, 6, 1)})
        assert json.loads(sent[-1][1])["date"] == "2025-06-01"
        c.rules(date="2025-06-01")
        assert sent[-1][0] == "2025-06-01"
        for call, path in (
            (lambda: c.check({**request, "data": {"subjects": float("nan")}}), "request"),
            (lambda: c.estimate({"tokens": {1, 2}}), "request"),
            (lambda: c.rules(date="2025-13-01"), "date"),
            (lambda: c.impact("nope"), "date"),
        ):
            with pytest.raises(RequestError) as err:
                call()
            assert err.value.path == path


def test_client_impact_sends_documents_prices_and_capacity() -> None:
    """``Client.impact`` with documents, prices or capacity was a NameError: its request body,
    a local named ``body``, shadowed the helper ``body`` that converts each of them."""
    import datetime as dt
    import json

    import httpx

    from straits.client import Client

    sent: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"date": "2026-01-01", "plans": []})

    with Client(
        "http://s",
        http=httpx.Client(base_url="http://s", transport=httpx.MockTransport(answer)),
    ) as c:
        c.impact(
            dt.date(2026, 1, 1),
            documents=[{"id": "x", "day": dt.date(2025, 6, 1)}],
            prices=[{"p": 1}],
            capacity=[{"c": 2}],
        )
    assert sent[-1]["documents"] == [{"id": "x", "day": "2025-06-01"}]
    assert (sent[-1]["prices"], sent[-1]["capacity"]) == ([{"p": 1}], [{"c": 2}])
