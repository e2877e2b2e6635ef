"""The embargoes of 15 CFR Part 746 in the shipped us-ear pack (law64).

An H100 to Iran, North Korea, Cuba or Syria, or to Russia and Belarus from their 2022 dates, came
back ``allow`` where the law requires a licence: no rule encoded Part 746. Each refusal now names
its rule and its CFR citation, the planner classes it as a procurement rejection, and it holds
under every regime.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from straits.loading import load_scenario
from straits.model.request import CheckRequest
from straits.plan import make_plan
from straits.plan.reasons import ReasonCode, rule_code
from straits.rules import ruleset
from straits.rules.listing import rule_regimes
from straits.rules.partition import roots

RULES = ruleset()

#: rule, destination, first day, the CFR section its citation names
EMBARGOES = [
    ("us-ear-embargo-cuba", "CU", dt.date(1996, 3, 25), "746.2"),
    ("us-ear-embargo-north-korea", "KP", dt.date(1996, 3, 25), "746.4"),
    ("us-ear-embargo-iran", "IR", dt.date(1996, 3, 25), "746.7"),
    ("us-ear-embargo-syria", "SY", dt.date(1996, 3, 25), "746.9"),
    ("us-ear-embargo-russia", "RU", dt.date(2022, 2, 24), "746.8"),
    ("us-ear-embargo-belarus", "BY", dt.date(2022, 3, 2), "746.8"),
]


def _buy(date: str, chip: str, site: str, hq: str = "SG", regime: str = "enacted") -> CheckRequest:
    return CheckRequest(
        date=dt.date.fromisoformat(date),
        regime=regime,
        action="procure",
        chip=chip,
        quantity=8,
        tenant={"hq": hq},
        site={"country": site, "operator_hq": site},
    )


@pytest.mark.parametrize(("rid", "country", "start", "section"), EMBARGOES)
@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_an_h20_before_its_letter_is_refused_with_the_citation(
    rid: str, country: str, start: dt.date, section: str, regime: str
) -> None:
    """An H20 (no 3A090 class, before the letter of 2025-04-09) to each embargoed destination:
    the old packs said ``allow``."""
    d = RULES.check(_buy("2024-06-01", "H20", country, regime=regime))
    assert (d.decision, d.requires) == ("deny", ("bis-license",))
    reason = next(r for r in d.reasons if r.rule == rid)
    assert section in reason.citation
    assert (reason.effect, reason.requires, reason.presumption) == (
        "requires",
        "bis-license",
        "denial",
    )
    assert reason.confidence in {"V", "V2"}


@pytest.mark.parametrize(("rid", "country", "start", "section"), EMBARGOES)
def test_each_embargo_is_a_procurement_rejection_in_force_under_every_regime(
    rid: str, country: str, start: dt.date, section: str
) -> None:
    rule = RULES.rule(rid)
    assert rule.pack == "us-ear" and rule.effective_from == start and rule.effective_until is None
    assert rule_code(roots(rule), "procure") is ReasonCode.PROCUREMENT
    assert set(rule_regimes(rule)) == {"enacted", "ai-diffusion"}


@pytest.mark.parametrize(
    ("country", "before", "on"),
    [("RU", "2022-02-23", "2022-02-24"), ("BY", "2022-03-01", "2022-03-02")],
)
def test_russia_and_belarus_from_their_dates(country: str, before: str, on: str) -> None:
    assert RULES.check(_buy(before, "H100-SXM", country)).decision == "allow"
    assert RULES.check(_buy(on, "H100-SXM", country)).decision == "deny"
    assert RULES.check(_buy(on, "H100-SXM", "SG", hq=country)).decision == "deny"


def test_controls_a_non_embargoed_site_and_a_chip_of_no_us_origin() -> None:
    assert RULES.check(_buy("2021-06-01", "H100-SXM", "SG")).decision == "allow"
    ascend = RULES.check(_buy("2024-06-01", "Ascend-910B", "IR", hq="IR"))
    assert (ascend.decision, ascend.reasons) == ("allow", ())


def _iran_buildout(tmp_path: Path) -> Any:
    """The H20 build-out, its data centre moved to Iran, planned before the 2025 letter."""
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "rule-packs" / "h20-letter" / "buildout.yaml").read_text()
    )
    doc["date"] = "2024-06-01"
    doc["tenants"][0]["hq"] = "SG"
    site = doc["sites"][0]
    site.update(id="ir-dc", country="IR", operator_hq="IR")
    site["pools"][0]["count"] = 0
    doc["sites"] = [site]
    del doc["datasets"]
    doc["workloads"][0]["stages"] = [
        {"id": "serve", "kind": "serve", "chips": 64, "days": 30, "locations": ["IR"]}
    ]
    path = tmp_path / "iran.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_scenario(path)


def test_the_planner_does_not_buy_h20_for_iran_and_says_why(tmp_path: Path) -> None:
    plan = make_plan(_iran_buildout(tmp_path), rules=RULES, time_limit=5).to_json()
    assert plan["assignments"] == []
    (unplaced,) = plan["unplaced"]
    assert unplaced["lost_codes"].get("procurement") == 1
    (diag,) = plan["diagnosis"]
    cited = {r["rule"]: r["citation"] for r in diag["rules"]}
    assert "746.7" in cited["us-ear-embargo-iran"]
