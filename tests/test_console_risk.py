"""The console's submit form plans at a risk, as ``POST /v1/plans?risk=`` and ``straits plan
--risk`` do (issue 16's interval, stop 62): the form had no such choice, so a console user could
plan a hard deadline only on the estimate's central value, or by editing the scenario's text.
Left empty, the scenario's ``risk`` holds (p50 unless it says otherwise). The pages that ask
more of a plan, compare and what-if, ask at the risk it was made on and say it."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from straits.estimate.interval import RISKS
from straits.store import Store
from straits.store.tokens import create_token
from straits.web.submit import RISK_CHOICES
from test_console import Browser


def _plan(b: Browser, plan_id: str) -> dict[str, Any]:
    b.wait(plan_id)
    r = b.client.get(f"/v1/plans/{plan_id}", headers={"Authorization": f"Bearer {b.token}"})
    assert r.status_code == 200, r.text
    plan: dict[str, Any] = r.json()["plan"]
    return plan


def _chip_hours(plan: dict[str, Any]) -> float:
    return sum(float(a["chip_hours"]) for a in plan["assignments"])


def test_the_form_offers_every_risk_and_plans_at_the_one_chosen(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    page = b.client.get("/ui/submit").text
    select = re.search(r'<select name="risk">(.*?)</select>', page, re.S)
    assert select is not None
    assert re.findall(r'<option value="([^"]*)"', select.group(1)) == ["", *RISKS]
    assert tuple(RISK_CHOICES) == RISKS
    default = _plan(b, b.submit(demo_text))
    p50 = _plan(b, b.submit(demo_text, risk="p50"))
    p90 = _plan(b, b.submit(demo_text, risk="p90"))
    assert (default["risk"], p50["risk"], p90["risk"]) == ("p50", "p50", "p90")
    # planned on the high end: every training stage needs more chip-hours than at p50
    assert _chip_hours(p90) > _chip_hours(p50) == _chip_hours(default)
    # the scenario's own risk holds when the form leaves it empty, and the form overrides it
    at_p90 = demo_text.replace("\nworkloads:", "\nrisk: p90\nworkloads:", 1)
    assert at_p90 != demo_text
    assert _plan(b, b.submit(at_p90))["risk"] == "p90"
    assert _plan(b, b.submit(at_p90, risk="p50"))["risk"] == "p50"


def test_an_unknown_risk_is_a_400_naming_the_field(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    for bad in ("p99", "P90", " p90", "p90\x00"):
        r = b.client.post(
            "/ui/submit",
            data={"csrf": b.csrf(), "text": demo_text, "time_limit": "2", "risk": bad},
            follow_redirects=False,
        )
        assert r.status_code == 400, (bad, r.status_code)
        assert 'data-path="risk"' in r.text, bad
        assert 'id="text"' in r.text and "workloads:" in r.text  # the text is kept
    r = b.client.post(
        "/ui/submit",
        data={"csrf": b.csrf(), "text": demo_text, "risk": "p" * 11},
        follow_redirects=False,
    )
    assert r.status_code == 400


def test_the_same_form_posted_at_another_risk_is_another_plan(
    console: tuple[object, Store], demo_text: str
) -> None:
    """A form's double post goes to its first plan; changed to p90 and posted again, it is
    what the user asked for now, not the p50 plan."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    form_id = re.search(r'name="form_id" value="([^"]+)"', b.client.get("/ui/submit").text)
    assert form_id is not None
    first = b.submit(demo_text, form_id=form_id.group(1))
    again = b.submit(demo_text, form_id=form_id.group(1))
    at_p90 = b.submit(demo_text, form_id=form_id.group(1), risk="p90")
    assert first == again != at_p90
    assert _plan(b, at_p90)["risk"] == "p90"


# --- the pages that ask more of a plan: compare and what-if --------------------------------------
def _risks(page: str) -> list[str]:
    return re.findall(r'data-field="risk" data-risk="([^"]*)"', page)


def _compared_costs(page: str) -> dict[str, float]:
    cards = re.findall(
        r'data-regime="([^"]+)".*?data-field="total_cost_usd" data-usd="([^"]+)"', page
    )
    return {regime: float(usd) for regime, usd in cards}


def _alter_stored(
    store: Store,
    plan_id: str,
    *,
    plan: dict[str, Any] | None = None,
    scenario: dict[str, Any] | None = None,
) -> None:
    """A plan not recorded, its row's plan JSON or scenario replaced (the scenario is
    content-addressed: stored under its new digest), as an older version may have written
    them or the database been edited: nothing proves a plan that is not recorded."""
    from straits.store.canonical import canonical, digest
    from straits.store.tables import PlanRow, ScenarioRow

    with store.write() as s:
        row = s.get(PlanRow, plan_id)
        assert row is not None and not row.record
        if plan is not None:
            row.result = canonical(plan)
        if scenario is not None:
            ref = digest(scenario)
            if s.get(ScenarioRow, ref) is None:
                s.add(ScenarioRow(digest=ref, name=scenario["name"], body=canonical(scenario)))
                s.flush()  # before the plan row refers to it
            row.scenario_digest = ref


def _stored(store: Store, plan_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from straits.store.records import load_scenario_row, stored_json
    from straits.store.tables import PlanRow

    with store.session() as s:
        row = s.get(PlanRow, plan_id)
        assert row is not None
        plan, ref = stored_json(row, "result"), row.scenario_digest
    assert isinstance(plan, dict)
    return plan, load_scenario_row(store, ref)


def test_compare_plans_at_the_plans_risk_and_says_it(
    console: tuple[object, Store], demo_text: str
) -> None:
    """The compare page re-plans the plan's scenario under each regime: it named no risk, so
    a p90 plan's page gave figures a reader took for the central estimate's. Each compared
    plan now says the risk it was made on, and its cost is a plan's at that risk."""
    from straits.loading import parse_document, parse_scenario
    from straits.plan import make_plan
    from straits.web.actions import COMPARE_SECONDS, REGIMES

    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    at = {risk: b.submit(demo_text, risk=risk) for risk in RISKS}
    costs = {}
    for risk, plan_id in at.items():
        plan = _plan(b, plan_id)
        page = b.client.get(f"/ui/plans/{plan_id}/compare")
        assert page.status_code == 200
        assert _risks(page.text) == [risk] * (1 + len(REGIMES))  # the page's and each plan's
        costs[risk] = _compared_costs(page.text)
        assert set(costs[risk]) == set(REGIMES)
        if plan["status"] == "optimal":  # the plan compared against, planned again
            assert costs[risk][plan["regime"]] == pytest.approx(plan["total_cost_usd"], abs=0.01)
    sc = parse_scenario(parse_document(demo_text, source="demo")).model_copy(update={"risk": "p90"})
    for regime in REGIMES:
        made = make_plan(
            sc, regime=regime, rules=cast(Any, app).state.rules, time_limit=COMPARE_SECONDS
        )
        assert made.risk == "p90"
        if made.status == "optimal":
            assert costs["p90"][regime] == pytest.approx(made.total_cost_usd, abs=0.01)
        assert costs["p90"][regime] > costs["p50"][regime]


def test_whatif_checks_at_the_plans_risk_and_says_it(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    for risk in RISKS:
        plan_id = b.submit(demo_text, risk=risk)
        b.wait(plan_id)
        for query in ("", "?date=2025-06-01&regime=ai-diffusion", "?i=0"):
            page = b.client.get(f"/ui/plans/{plan_id}/whatif{query}")
            assert page.status_code == 200
            assert _risks(page.text) == [risk], query


def test_the_pages_ask_at_the_plans_risk_where_its_scenario_says_another(
    console: tuple[object, Store], demo_text: str
) -> None:
    """A plan's risk is the one it records, as its own page shows it; a plan of a version that
    did not record one (or recorded a value no version knows) was made at its scenario's."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    p50_plan = b.submit(demo_text)
    b.wait(p50_plan)
    p50_cost = _compared_costs(b.client.get(f"/ui/plans/{p50_plan}/compare").text)
    plan_id = b.submit(demo_text, risk="p90", record="0")
    b.wait(plan_id)
    plan, scenario = _stored(store, plan_id)
    assert plan["risk"] == scenario["risk"] == "p90"
    _alter_stored(store, plan_id, scenario={**scenario, "risk": "p50"})
    shown = b.client.get(f"/ui/plans/{plan_id}")  # the plan page: its own risk
    assert shown.status_code == 200 and '<dd class="sub" data-field="risk">p90' in shown.text
    for suffix in ("/whatif", "/compare"):
        page = b.client.get(f"/ui/plans/{plan_id}{suffix}")
        assert page.status_code == 200
        assert set(_risks(page.text)) == {"p90"}, suffix
    _alter_stored(store, plan_id, plan={**plan, "risk": "p50"}, scenario=scenario)
    page = b.client.get(f"/ui/plans/{plan_id}/compare").text
    assert set(_risks(page)) == {"p50"}
    assert _compared_costs(page) == pytest.approx(p50_cost, abs=0.01)
    for older in ({k: v for k, v in plan.items() if k != "risk"}, {**plan, "risk": "p99"}):
        _alter_stored(store, plan_id, plan=older)
        for suffix in ("/whatif", "/compare"):  # the scenario's, p90
            page = b.client.get(f"/ui/plans/{plan_id}{suffix}")
            assert page.status_code == 200
            assert set(_risks(page.text)) == {"p90"}, (suffix, older.get("risk"))


def test_hostile_requests_of_the_compare_and_whatif_pages_are_answered(
    console: tuple[object, Store], demo_text: str
) -> None:
    """Dates and slider positions out of range or not dates, another tenant's plan, and a
    plan whose stored scenario holds the risk of a version before the field (none, read as
    p50: the pages go by the plan's own) or a value no version wrote: each a page, never a
    500 (none was one before these pages said their risk either: a guard, not a fix)."""
    from fastapi.testclient import TestClient

    app, store = console
    b = Browser(app, store)
    b.client = TestClient(
        app,  # type: ignore[arg-type]
        base_url="https://testserver",
        raise_server_exceptions=False,
    )
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text, risk="p90", record="0")
    b.wait(plan_id)
    whatif = f"/ui/plans/{plan_id}/whatif"
    for query, status in (
        ("i=-1", 400),
        ("i=" + "9" * 40, 400),
        ("i=1e3", 400),
        ("date=-2025-01-01", 400),
        ("date=99999-01-01", 400),
        ("date=2025-02-30", 400),
        ("date=tomorrow", 400),
        ("date=0001-01-01", 200),  # the slider's first day
        ("date=9999-12-31", 200),  # its last
        ("day=" + "9" * 40, 200),  # no such parameter
    ):
        r = b.client.get(f"{whatif}?{query}")
        assert r.status_code == status, (query, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), query
        if status == 200:
            assert _risks(r.text) == ["p90"], query
    other = Browser(app, store)
    other.sign_in(create_token(store, "acme", "planner")[0])
    for suffix in ("/compare", "/whatif", "/whatif?date=2025-06-01"):
        assert other.client.get(f"/ui/plans/{plan_id}{suffix}").status_code == 404, suffix
    _, scenario = _stored(store, plan_id)
    _alter_stored(store, plan_id, scenario={k: v for k, v in scenario.items() if k != "risk"})
    for suffix in ("/compare", "/whatif"):  # the plan's own risk, p90
        r = b.client.get(f"/ui/plans/{plan_id}{suffix}")
        assert r.status_code == 200 and set(_risks(r.text)) == {"p90"}, suffix
    _alter_stored(store, plan_id, scenario={**scenario, "risk": "P90"})
    for suffix in ("", "/compare", "/whatif"):  # the stored scenario's field problem
        r = b.client.get(f"/ui/plans/{plan_id}{suffix}")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
