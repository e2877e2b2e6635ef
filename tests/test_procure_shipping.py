"""A purchase is checked on the days its chips may ship, not only on the order date.

Export controls apply when goods are exported: an order placed the day before a licence
requirement, with chips that ship after it, needs the licence. The planner asks ``procure`` on
the order date and on every day the rules in force change until the chips arrive (order date +
``lead_days``); the re-check of a recorded plan counts the same days from the plan's date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.recheck import PlanContext
from straits.rules import RuleSet
from straits.rules.listing import events, rule_regimes

BUILDOUT = ROOT / "examples" / "rule-packs" / "h20-letter" / "buildout.yaml"
H20_RULE = "us-ear-2025-h20"


def _buildout(
    tmp_path: Path, date: str, lead_days: float, authorizations: tuple[str, ...] = ()
) -> Scenario:
    doc: dict[str, Any] = yaml.safe_load(BUILDOUT.read_text())
    doc["date"] = date
    doc["sites"][0]["pools"][0]["procurable"]["lead_days"] = lead_days
    if authorizations:
        doc["tenants"][0]["authorizations"] = list(authorizations)
    path = tmp_path / f"buildout-{date}-{lead_days}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_scenario(path)


def _serve(plan: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the serving stage's assignment, its unplaced entry)."""
    placed = next((a for a in plan["assignments"] if a["stage"] == "serve-cn"), None)
    unplaced = next((u for u in plan["unplaced"] if u["stage"] == "serve-cn"), None)
    return placed, unplaced


def _h20(sc: Scenario) -> Any:
    return sc.site("hz-idc").pools[0]


def test_an_order_shipping_after_the_h20_letter_is_refused(tmp_path: Path, rules: RuleSet) -> None:
    """Ordered 2025-04-08 with a 60-day lead: the chips ship after 2025-04-09 (the defect: the
    plan bought 2,048 H20s for China, decision allow, requires [])."""
    sc = _buildout(tmp_path, "2025-04-08", 60)
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    placed, unplaced = _serve(plan)
    assert placed is None and unplaced is not None
    assert unplaced["lost_codes"]["procurement"] == 1
    assert not any(a["bought"] for a in plan["assignments"])
    serve = next(d for d in plan["diagnosis"] if d["stage"] == "serve-cn")
    assert H20_RULE in {r["rule"] for r in serve["rules"]}
    cands = Candidates(sc, rules, regime=sc.regime, date=sc.date)
    days = cands.procure_dates(_h20(sc))
    assert days[:2] == (dt.date(2025, 4, 8), dt.date(2025, 4, 9))
    buy = cands.procurement("hz-cloud", sc.site("hz-idc"), _h20(sc))
    assert buy.decision == "deny" and buy.requires == ("bis-license",)
    assert [(r.rule, r.outcome) for r in buy.blocking] == [(H20_RULE, "deny")]


def test_with_the_licence_the_order_is_placed_and_requires_it(
    tmp_path: Path, rules: RuleSet
) -> None:
    sc = _buildout(tmp_path, "2025-04-08", 60, authorizations=("bis-license",))
    placed, unplaced = _serve(make_plan(sc, rules=rules, time_limit=5).to_json())
    assert unplaced is None and placed is not None
    assert placed["bought"] and placed["chip"] == "H20"
    assert (placed["decision"], placed["requires"]) == ("allow", ["bis-license"])


def test_an_order_placed_after_the_rule_date_is_judged_as_on_its_date(
    tmp_path: Path, rules: RuleSet
) -> None:
    """The shipped build-out (2025-04-20, 30 days): the requirement is in force on the order
    date already; the later days add nothing, and the plan is refused as it was."""
    sc = _buildout(tmp_path, "2025-04-20", 30)
    cands = Candidates(sc, rules, regime=sc.regime, date=sc.date)
    pool, site = _h20(sc), sc.site("hz-idc")
    days = cands.procure_dates(pool)
    assert days[0] == sc.date and all(sc.date < d <= dt.date(2025, 5, 20) for d in days[1:])
    on_the_day = rules.check(cands._procure_request("hz-cloud", site, pool, sc.date))
    buy = cands.procurement("hz-cloud", site, pool)
    assert (buy.decision, buy.requires) == (on_the_day.decision, on_the_day.requires)
    assert [r.rule for r in buy.blocking] == [r.rule for r in on_the_day.blocking]
    placed, unplaced = _serve(make_plan(sc, rules=rules, time_limit=5).to_json())
    assert placed is None and unplaced is not None
    assert unplaced["lost_codes"]["procurement"] == 1


@pytest.mark.parametrize(("lead_days", "bought"), [(7, True), (8, False)])
def test_an_order_arriving_before_the_rule_change_is_unaffected(
    tmp_path: Path, rules: RuleSet, lead_days: int, bought: bool
) -> None:
    """Ordered 2025-04-01: 7 days' lead arrive 2025-04-08, before the letter; 8 days' arrive on
    2025-04-09, the day it takes effect (the arrival day counts: they may still ship then)."""
    sc = _buildout(tmp_path, "2025-04-01", lead_days)
    cands = Candidates(sc, rules, regime=sc.regime, date=sc.date)
    expected = (sc.date,) if bought else (sc.date, dt.date(2025, 4, 9))
    assert cands.procure_dates(_h20(sc)) == expected
    placed, unplaced = _serve(make_plan(sc, rules=rules, time_limit=5).to_json())
    if bought:
        assert unplaced is None and placed is not None and placed["bought"]
        assert (placed["decision"], placed["requires"]) == ("allow", [])
    else:
        assert placed is None and unplaced is not None
        assert unplaced["lost_codes"]["procurement"] == 1


def test_a_recheck_counts_the_shipping_days_from_the_plans_date(
    tmp_path: Path, rules: RuleSet, rules_before_h20: RuleSet
) -> None:
    """A plan of 2025-04-08 (30 days' lead, made with the rules of that day) re-checked on a
    later day: the chips still arrive on 2025-05-08, and the purchase is asked from the check
    date to then; on the plan's own date the re-check asks what the planner would have."""
    sc = _buildout(tmp_path, "2025-04-08", 30)
    plan = make_plan(sc, rules=rules_before_h20, time_limit=5).to_json()
    placed, _ = _serve(plan)
    assert placed is not None and placed["bought"]
    later = PlanContext(sc, plan, rules, date=dt.date(2025, 4, 20), regime=sc.regime)
    assert later.cands.arrival_day(_h20(sc)) == dt.date(2025, 5, 8)
    assert later.cands.procure_dates(_h20(sc)) == (dt.date(2025, 4, 20),)
    same_day = PlanContext(sc, plan, rules, date=sc.date, regime=sc.regime)
    assert same_day.cands.procure_dates(_h20(sc)) == (sc.date, dt.date(2025, 4, 9))
    placement = same_day.placements[("assistant-72b", "serve-cn")]
    verdict = same_day.recheck(placement)
    assert verdict is not None and not verdict.lawful
    assert (verdict.code, verdict.rules) == ("procurement", (H20_RULE,))
    # under the rules it was made with, the re-check finds the purchase lawful, as the planner did
    own = PlanContext(sc, plan, rules_before_h20, date=sc.date, regime=sc.regime)
    mine = own.recheck(placement)
    assert mine is not None and mine.lawful


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_rule_events_are_the_days_the_rules_in_force_change(rules: RuleSet, regime: str) -> None:
    """:func:`events` compares only the days a window opens or closes: the same answer as a
    walk over every day."""
    start, end = dt.date(2017, 1, 1), dt.date(2027, 12, 31)
    mine = [r for r in rules.rules if regime in rule_regimes(r)]
    walked = []
    prev = {r.id for r in mine if r.in_force(start - dt.timedelta(days=1))}
    day = start
    while day <= end:
        now = {r.id for r in mine if r.in_force(day)}
        if now != prev:
            walked.append(day)
        prev, day = now, day + dt.timedelta(days=1)
    got = events(rules.rules, regime, start, end)
    assert [e.date for e in got] == walked
    assert dt.date(2025, 4, 9) in walked
