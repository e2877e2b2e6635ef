"""`straits impact`: recorded plans re-checked when rules, prices or capacity change."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import H20_BEFORE
from straits.impact import Overrides, impact
from straits.impact.overrides import CapacityChange, PriceChange
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_cli import one_line_error, straits
from test_export import recorded_id

H20_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "h20-2025.yaml"


@pytest.fixture(scope="module")
def h20(rules_before_h20: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    """The plan of 2025-04-08 as a deployment made it that day, before the H20 letter."""
    sc = load_scenario(H20_EXAMPLE)
    return sc, make_plan(sc, rules=rules_before_h20, time_limit=5).to_json()


def _kinds(changes: list[dict[str, Any]], stage: str) -> set[str]:
    return {c["kind"] for c in changes if c["stage"] == stage}


def test_the_h20_plan_buys_h20s_the_day_before(h20: tuple[Scenario, dict[str, Any]]) -> None:
    _, plan = h20
    serve = next(a for a in plan["assignments"] if a["stage"] == "serve-cn")
    assert serve["chip"] == "H20" and serve["bought"]


def test_with_the_letter_known_the_same_day_the_plan_buys_no_h20(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """The chips would ship after 2025-04-09: the shipped packs refuse the purchase on the
    plan's own date, and the re-check of the stale plan that day says so too."""
    sc, stale = h20
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    assert not any(a["bought"] for a in plan["assignments"])
    serve = next(u for u in plan["unplaced"] if u["stage"] == "serve-cn")
    assert serve["lost_codes"].get("procurement") == 1
    res = impact("p", sc, stale, rules, date=sc.date, replan=False)
    assert res.blocking
    assert [(c.stage, c.kind, [r.rule for r in c.rules]) for c in res.changes] == [
        ("serve-cn", "rules", ["us-ear-2025-h20"])
    ]


def record_h20_plan(db: str) -> subprocess.CompletedProcess[str]:
    """``straits plan`` of the H20 example under the rules of 2025-04-08, recorded in ``db``."""
    return straits(
        "plan", str(H20_EXAMPLE), "--record", "--db", db, "--time-limit", "30",
        "--rules", str(H20_BEFORE),
    )  # fmt: skip


def test_cli_impact_names_the_h20_rule_and_the_affected_stage(tmp_path: Path) -> None:
    """The acceptance case: recorded on 2025-04-08, re-checked on 2025-04-10."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    p = record_h20_plan(db)
    assert p.returncode == 0, p.stderr
    plan_id = recorded_id(p.stderr)
    p = straits("impact", "--date", "2025-04-10", "--db", db, "--json", "--time-limit", "30")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)["plans"]
    assert [x["plan_id"] for x in out] == [plan_id]
    res = out[0]
    assert res["affected_stages"] == ["assistant-72b/serve-cn"] and res["blocking"]
    rule_changes = [c for c in res["changes"] if c["kind"] == "rules"]
    assert [r["rule"] for c in rule_changes for r in c["rules"]] == ["us-ear-2025-h20"]
    assert rule_changes[0]["rules"][0]["citation"].startswith("US government letter")
    assert "assistant-72b/serve-cn" in res["replan"]["unplaced"]
    # the human view names them too, and --exit-code reports the blocked stage
    p = straits("impact", "--date", "2025-04-10", "--db", db, "--exit-code", "--no-replan")
    assert p.returncode == 4, p.stderr
    assert "us-ear-2025-h20" in p.stdout and "serve-cn" in p.stdout


def test_nothing_changes_on_the_day_the_plan_was_made(
    h20: tuple[Scenario, dict[str, Any]], rules_before_h20: RuleSet
) -> None:
    """Under the rules it was made with, the re-check asks what the planner asked."""
    sc, plan = h20
    res = impact("p", sc, plan, rules_before_h20, date=sc.date, replan=False)
    assert res.changes == [] and not res.blocking


@pytest.mark.parametrize("days", [-30, 0, 30])
def test_a_date_before_the_plan_is_checked_as_of_the_plan_and_said(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet, days: int
) -> None:
    """A plan is checked as it was planned, never as of a day before it was made; the answer
    keeps the date asked for, so the move is not silent."""
    sc, plan = h20
    asked = sc.date + dt.timedelta(days=days)
    j = impact("p", sc, plan, rules, date=asked, replan=False).to_json()
    assert j["asked_date"] == asked.isoformat()
    assert j["checked_date"] == max(asked, sc.date).isoformat()


def test_chips_already_delivered_are_not_re_ordered(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """Bought on 2025-04-08 with a 30-day lead: by June they have arrived, and running on them
    is still lawful (the licence governs shipments, not use)."""
    sc, plan = h20
    serve = next(a for a in plan["assignments"] if a["stage"] == "serve-cn")
    arrival = sc.date + dt.timedelta(days=30)
    assert dt.date.fromisoformat(serve["start"][:10]) >= arrival
    res = impact("p", sc, plan, rules, date=arrival + dt.timedelta(days=1), replan=False)
    assert not [c for c in res.changes if c.kind == "rules"]


def test_the_rescission_lets_the_blocked_stage_run_offshore(
    example_path: Path, rules: RuleSet
) -> None:
    sc = load_scenario(example_path).model_copy(
        update={"date": dt.date(2025, 5, 15), "regime": "ai-diffusion"}
    )
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    assert any(u["stage"] == "serve-intl" for u in plan["unplaced"])
    res = impact("p", sc, plan, rules, date=dt.date(2025, 5, 13), regime="enacted", time_limit=5)
    assert res.regime == "enacted" and res.replan is not None
    stage = next(s for s in res.replan["stages"] if s["stage"] == "serve-intl")
    assert stage["was"] == "unplaced" and stage["now"] != "unplaced"
    assert sc.site(stage["now"].split("/")[0]).country in ("SG", "MY")
    assert "us-diffusion-tier3-hq-compute" in {r["rule"] for r in stage["rules_lifted"]}
    # and the same plan under its own regime: the rule still blocks, nothing moves
    same = impact("p", sc, plan, rules, date=dt.date(2025, 5, 13), time_limit=5)
    assert not [
        c for c in same.changes if c.kind in ("rules", "replan") and c.stage == "serve-intl"
    ]


def test_a_price_change_is_costed_on_the_remaining_chip_hours(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = h20
    sft = next(a for a in plan["assignments"] if a["stage"] == "sft")
    old = next(p.usd_per_chip_hour for p in sc.site(sft["site"]).pools if p.chip == sft["chip"])
    ov = Overrides(
        prices=(
            PriceChange(
                site=sft["site"], chip=sft["chip"], usd_per_chip_hour=old + 0.5, source="test quote"
            ),
        )
    )
    res = impact("p", sc, plan, rules, date=sc.date, overrides=ov, replan=False)
    cost = [c for c in res.changes if c.kind == "cost"]
    assert len(cost) == 1 and cost[0].stage == "sft"
    assert cost[0].delta_usd == pytest.approx(sft["chip_hours"] * 0.5, rel=1e-3)
    assert "test quote" in cost[0].summary


@pytest.mark.parametrize("source", [None, ""])
def test_an_unsourced_price_is_not_credited_to_the_old_ones_source(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet, source: str | None
) -> None:
    """A new price without a source was shown with the scenario's citation for the old one
    (a fresh-eye attack): it says no source was given."""
    sc, plan = h20
    sft = next(a for a in plan["assignments"] if a["stage"] == "sft")
    pool = next(p for p in sc.site(sft["site"]).pools if p.chip == sft["chip"])
    change = PriceChange(
        site=sft["site"], chip=sft["chip"], usd_per_chip_hour=pool.usd_per_chip_hour + 0.5,
        source=source,
    )  # fmt: skip
    res = impact("p", sc, plan, rules, date=sc.date, overrides=Overrides(prices=(change,)))
    (cost,) = [c for c in res.changes if c.kind == "cost"]
    assert "no source given" in cost.summary
    assert not pool.source or pool.source not in cost.summary


def test_a_capacity_cut_makes_the_stage_infeasible(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = h20
    sft = next(a for a in plan["assignments"] if a["stage"] == "sft")
    ov = Overrides(
        capacity=(CapacityChange(site=sft["site"], chip=sft["chip"], count=sft["chips"] - 8),)
    )
    res = impact("p", sc, plan, rules, date=sc.date, overrides=ov, replan=False)
    cap = [c for c in res.changes if c.kind == "capacity"]
    assert [c.stage for c in cap] == ["sft"] and res.blocking
    # enough capacity: no change
    ov = Overrides(
        capacity=(CapacityChange(site=sft["site"], chip=sft["chip"], count=sft["chips"]),)
    )
    res = impact("p", sc, plan, rules, date=sc.date, overrides=ov, replan=False)
    assert not [c for c in res.changes if c.kind == "capacity"]


def test_bad_change_files_name_the_file_and_field(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert record_h20_plan(db).returncode == 0
    bad = tmp_path / "prices.yaml"
    bad.write_text(yaml.safe_dump([{"site": "hz-idc", "chip": "H20", "usd_per_chip_hr": 2}]))
    one_line_error(
        straits("impact", "--date", "2025-04-10", "--db", db, "--prices", str(bad)),
        str(bad),
        "prices[0]",
    )
    nopool = tmp_path / "cap.yaml"
    nopool.write_text(yaml.safe_dump([{"site": "hz-idc", "chip": "B200", "count": 8}]))
    one_line_error(
        straits(
            "impact", "--date", "2025-04-10", "--db", db, "--capacity", str(nopool), "--no-replan"
        ),
        "capacity[0]",
        "B200",
    )


def test_change_files_are_read_from_stdin_once(tmp_path: Path) -> None:
    """``--prices -`` was "-: file not found" where every command reads `-` as stdin; stdin
    is read once, whichever options name it."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert record_h20_plan(db).returncode == 0
    nopool = yaml.safe_dump([{"site": "hz-idc", "chip": "B200", "count": 8, "source": "abc"}])
    args = ("impact", "--date", "2025-04-10", "--db", db, "--no-replan")
    p = straits(*args, "--capacity", "-", stdin=nopool)
    one_line_error(p, "<stdin>", "capacity[0]", "B200")  # read, and found to name no pool
    p = straits(*args, "--capacity", "-", "--prices", "-", stdin=nopool)
    one_line_error(p, "stdin can be read once")


def test_a_time_limit_without_a_replan_is_exit_2(tmp_path: Path) -> None:
    """It bounds the re-plan: with --no-replan it was accepted and not read."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    p = straits("impact", "--date", "2025-04-10", "--db", db, "--no-replan", "--time-limit", "5")
    one_line_error(p, "--time-limit", "--no-replan")


def test_impact_without_recorded_plans_says_so(tmp_path: Path) -> None:
    from straits.store import Store

    db = f"sqlite:///{tmp_path / 'e.db'}"
    Store(
        db
    ).close()  # a database that holds no plan (one that is not there: test_hostile_ledger_tamper2)
    p = straits("impact", "--date", "2025-04-10", "--db", db)
    one_line_error(p, "no recorded plans")


def test_stages_running_at_the_date_are_named(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = h20
    sft = next(a for a in plan["assignments"] if a["stage"] == "sft")
    start = dt.datetime.fromisoformat(sft["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(sft["end"].replace("Z", "+00:00"))
    mid = (start + (end - start) / 2).date()
    assert start.date() < mid < end.date()
    res = impact("p", sc, plan, rules, date=mid, time_limit=3)
    assert res.running == ["assistant-72b/sft"] and res.finished == []
    assert res.replan is not None
    states = {s["stage"]: s["state"] for s in res.replan["stages"]}
    assert states == {"sft": "running", "serve-cn": "not started"}
    after = impact("p", sc, plan, rules, date=end.date() + dt.timedelta(days=1), replan=False)
    assert after.finished == ["assistant-72b/sft"]


def test_a_capacity_cut_during_a_stage_is_caught(
    h20: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """The pool shrinks after the stage has started: the check looks at capacity steps, not
    only at the instants stages start."""
    sc, plan = h20
    sft = next(a for a in plan["assignments"] if a["stage"] == "sft")
    start = dt.date.fromisoformat(sft["start"][:10])
    end = dt.date.fromisoformat(sft["end"][:10])
    cut = start + dt.timedelta(days=3)
    assert cut < end
    ov = Overrides(
        capacity=(
            CapacityChange(site=sft["site"], chip=sft["chip"], count=sft["chips"] - 8, start=cut),
        )
    )
    res = impact("p", sc, plan, rules, date=sc.date, overrides=ov, replan=False)
    cap = [c for c in res.changes if c.kind == "capacity"]
    assert [c.stage for c in cap] == ["sft"] and str(cut) in cap[0].summary


@pytest.mark.parametrize(
    ("kind", "rows", "field"),
    [
        (
            "prices",
            [
                {
                    "site": "sg-jurong",
                    "chip": "H100-SXM",
                    "usd_per_chip_hour": 2,
                    "source": "a\x1bbc",
                }
            ],
            "prices[0].source",
        ),
        (
            "prices",
            [{"site": "sg-jurong", "chip": "H100-SXM", "usd_per_chip_hour": 1e6}],
            "prices[0].usd_per_chip_hour",
        ),
        (
            "capacity",
            [{"site": "my-johor", "chip": "H100-SXM", "count": 5, "start": "9999-01-01"}],
            "capacity[0].start",
        ),
        (
            "capacity",
            [{"site": "my-johor", "chip": "H100-SXM", "count": 10**12}],
            "capacity[0].count",
        ),
        # a pool changed twice: which figure holds depended on the order of the lines
        (
            "prices",
            [
                {"site": "sg-jurong", "chip": "H100-SXM", "usd_per_chip_hour": 2},
                {"site": "sg-jurong", "chip": "H100-SXM", "usd_per_chip_hour": 9},
            ],
            "prices[1]",
        ),
        (
            "capacity",
            [
                {"site": "my-johor", "chip": "H100-SXM", "count": 5},
                {"site": "my-johor", "chip": "H100-SXM", "count": 9000},
            ],
            "capacity[1]",
        ),
    ],
)
def test_change_files_are_checked_as_the_scenario_fields_they_change(
    kind: str, rows: list[dict[str, Any]], field: str, tmp_path: Path
) -> None:
    """A change file's figure is refused against the change file's field, not later against
    the scenario it was copied into (`scenario x with changes: sites[0].pools[0].source`)."""
    from straits.errors import ScenarioError
    from straits.impact.overrides import load_overrides

    f = tmp_path / f"{kind}.yaml"
    f.write_text(json.dumps(rows))
    with pytest.raises(ScenarioError) as exc:
        load_overrides(**{"prices": None, "capacity": None, kind: f})
    # a bare list on one line (JSON): its line is 1
    assert str(exc.value).startswith(f"{f}:1: {field}: "), str(exc.value)
