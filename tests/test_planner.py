"""Planner: the shipped story, and invariants over generated portfolios."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invariants import (
    budget_violations,
    capacity_violations,
    deadline_violations,
    precedence_violations,
    residency_violations,
)
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.checks import ExportLedger, placement_questions, user_subjects, users_export_id
from straits.plan.timeline import Timeline
from straits.rules import RuleSet, ruleset
from straits.simulate.generate import generate


@pytest.fixture(scope="module")
def example(example_path: Path):  # type: ignore[no-untyped-def]
    return load_scenario(example_path)


def test_enacted_plan_rents_offshore_and_finetunes_at_home(example, rules: RuleSet) -> None:
    plan = make_plan(example, regime="enacted", rules=rules)
    assert plan.status in ("optimal", "feasible") and not plan.unplaced
    countries = {a.stage: example.site(a.site).country for a in plan.assignments}
    assert countries["pretrain"] in ("SG", "MY")
    assert countries["sft"] == "CN"
    assert countries["serve-intl"] in ("SG", "MY")
    sft = next(d for d in plan.diagnosis if d.stage == "sft")
    assert sft.lost["PIPL cross-border (cac-security-assessment)"] == 3
    assert "cn-cbdf-2024-assessment" in {c.rule for c in sft.citations}


def test_ai_diffusion_plan_trains_at_home_and_cannot_serve_offshore(example, rules) -> None:
    enacted = make_plan(example, regime="enacted", rules=rules)
    plan = make_plan(example, regime="ai-diffusion", rules=rules)
    assert plan.status == "infeasible"
    assert [(u.workload, u.stage) for u in plan.unplaced] == [("chat-72b", "serve-intl")]
    assert example.site(plan.assignment("chat-72b", "pretrain").site).country == "CN"
    serve = plan.unplaced[0]
    assert serve.lost == {"AI Diffusion: Tier 3-headquartered compute (bis-license)": 3,
                          "location": 4}
    assert plan.makespan_hours > enacted.makespan_hours
    home = plan.assignment("chat-72b", "pretrain")
    away = enacted.assignment("chat-72b", "pretrain")
    assert home is not None and away is not None
    assert home.end_h - home.start_h > away.end_h - away.start_h  # slower chips at home


def test_plan_json_contract(example, rules) -> None:
    j = make_plan(example, rules=rules).to_json()
    for key in ("status", "objective", "total_cost_usd", "makespan_hours", "assignments",
                "unplaced", "diagnosis"):
        assert key in j
    a = j["assignments"][0]
    for key in ("workload", "stage", "site", "chip", "chips", "start", "end", "chip_hours",
                "cost_usd", "decision", "requires"):
        assert key in a
    assert a["start"].endswith("Z") and dt.datetime.fromisoformat(a["start"])
    assert j["total_cost_usd"] == pytest.approx(sum(x["cost_usd"] for x in j["assignments"]),
                                                abs=0.05)


def test_held_assessment_lets_finetuning_go_offshore(example, rules) -> None:
    tenant = example.tenants[0].model_copy(update={"authorizations": ("cac-security-assessment",)})
    sc = example.model_copy(update={"tenants": (tenant,)})
    plan = make_plan(sc, rules=rules)
    sft = next(d for d in plan.diagnosis if d.stage == "sft")
    assert not any("PIPL" in k for k in sft.lost)


def test_timeline_never_overbooks() -> None:
    tl = Timeline(10)
    tl.book(0, 5, 6)
    assert tl.earliest(5, 2, 0) == 5
    assert tl.earliest(4, 10, 0) == 0
    with pytest.raises(ValueError):
        tl.book(1, 2, 5)


# --- invariants over generated portfolios --------------------------------------------------------
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(2, 6),
       st.sampled_from(["enacted", "ai-diffusion"]),
       st.sampled_from(["cost", "time", "completion"]), st.sampled_from(["cpsat", "greedy"]))
def test_generated_plans_keep_every_invariant(seed: int, n: int, m: int, regime: str,
                                              objective: str, solver: str) -> None:
    sc = generate(workloads=n, sites=m, seed=seed)
    plan = make_plan(sc, regime=regime, objective=objective, solver=solver,  # type: ignore[arg-type]
                     time_limit=2)
    assert capacity_violations(sc, plan) == []
    assert precedence_violations(sc, plan) == []
    assert residency_violations(sc, plan) == []
    assert deadline_violations(sc, plan) == []
    assert budget_violations(sc, plan) == []
    placed = {(a.workload, a.stage) for a in plan.assignments}
    unplaced = {(u.workload, u.stage) for u in plan.unplaced}
    assert placed.isdisjoint(unplaced)
    assert placed | unplaced == {(w.id, s.id) for w in sc.workloads for s in w.stages}
    assert (plan.status in ("optimal", "feasible")) == (not unplaced)
    if plan.bound_unplaced is not None:  # the bound never promises more than the plan shows
        assert plan.bound_unplaced <= len(unplaced)
    if plan.bound_usd is not None:
        assert plan.bound_usd <= plan.objective_usd + 1e-6


@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(2, 5),
       st.sampled_from(["enacted", "ai-diffusion"]))
def test_every_assignment_is_lawful_under_the_final_volumes(seed: int, n: int, m: int,
                                                           regime: str) -> None:
    """Re-ask every placement's rule questions with the plan's final yearly export volumes."""
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    rs = ruleset()
    plan = make_plan(sc, rules=rs)
    ops = Candidates(sc, rs, regime=regime, date=sc.date).ops
    ledger = ExportLedger()
    for a in plan.assignments:
        w = sc.workload(a.workload)
        stage = w.stage(a.stage)
        site = sc.site(a.site)
        ledger.record(w.tenant, [sc.dataset(d) for d in stage.datasets], site, sc.date.year)
        for c in stage.users:
            if c != site.country:
                ledger.add(w.tenant, c, sc.date.year, users_export_id(w, stage, c),
                           user_subjects(stage), 0)
    for a in plan.assignments:
        w = sc.workload(a.workload)
        stage = w.stage(a.stage)
        preds = []
        for p in stage.after:
            pa = plan.assignment(w.id, p)
            assert pa is not None
            preds.append((w.stage(p), sc.site(pa.site), ops[w.id][p]))
        qs = placement_questions(sc, w, stage, sc.site(a.site), a.chip, date=sc.date,
                                 regime=regime, training_ops=ops[w.id][stage.id], preds=preds,
                                 exports=[ledger], year=sc.date.year)
        for q, d in zip(qs, rs.check_many([q.request for q in qs]), strict=True):
            assert d.decision == "allow", (a.workload, a.stage, q.label, d.to_json())


def _two_finetunes(authorizations: list[str], subjects: tuple[int, int]) -> dict:  # type: ignore[type-arg]
    """A CN tenant fine-tunes two models on two Chinese personal datasets; offshore capacity
    is much cheaper than at home."""
    model = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}
    return {
        "straits": 1, "name": "cumulative", "date": dt.date(2025, 6, 1),
        "tenants": [{"id": "t", "hq": "CN", "authorizations": authorizations}],
        "sites": [
            {"id": "home", "country": "CN", "operator_hq": "CN",
             "pools": [{"chip": "H800-SXM", "count": 512, "usd_per_chip_hour": 9.0}]},
            {"id": "sg", "country": "SG", "operator_hq": "SG",
             "pools": [{"chip": "H100-SXM", "count": 512, "usd_per_chip_hour": 1.0}]}],
        "datasets": [
            {"id": f"d{i}", "tokens": 1e10, "size_gb": 10, "located_at": "home", "origin": "CN",
             "classes": ["personal"], "subjects": n} for i, n in enumerate(subjects)],
        "workloads": [
            {"id": f"w{i}", "tenant": "t", "model": model,
             "stages": [{"id": "sft", "kind": "finetune", "datasets": [f"d{i}"]}]}
            for i in range(2)],
    }


@pytest.mark.parametrize(("auths", "subjects", "offshore"), [
    ([], (50_000, 40_000), 2),                         # 90,000 a year: exempt
    ([], (60_000, 60_000), 1),                         # together 120,000: contract needed
    (["cac-standard-contract"], (600_000, 600_000), 1),  # together 1.2M: assessment needed
    (["cac-standard-contract"], (400_000, 500_000), 2),  # together 900,000: contract suffices
    (["cac-security-assessment"], (600_000, 600_000), 2),
])
def test_cac_volumes_add_up_over_the_year(auths: list[str], subjects: tuple[int, int],
                                          offshore: int) -> None:
    from straits.loading import parse_scenario

    sc = parse_scenario(_two_finetunes(auths, subjects))
    plan = make_plan(sc)
    assert not plan.unplaced
    assert sum(a.site == "sg" for a in plan.assignments) == offshore
    assert residency_violations(sc, plan) == []
