"""The console's submit form plans at a risk, as ``POST /v1/plans?risk=`` and ``straits plan
--risk`` do (issue 16's interval, stop 62): the form had no such choice, so a console user could
plan a hard deadline only on the estimate's central value, or by editing the scenario's text.
Left empty, the scenario's ``risk`` holds (p50 unless it says otherwise)."""

from __future__ import annotations

import re
from typing import Any

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
