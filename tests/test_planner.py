"""Planner: the shipped story, reason codes, the verdict memo, and invariants over generated
portfolios."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariants import (
    budget_violations,
    capacity_violations,
    deadline_violations,
    precedence_violations,
    residency_violations,
)
from straits.loading import load_scenario, parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.checks import (
    ExportLedger,
    Predecessor,
    placement_questions,
    user_subjects,
    users_export_id,
)
from straits.plan.reasons import RULE_CODES, ReasonCode
from straits.plan.timeline import Timeline
from straits.rules import RuleSet, ruleset
from straits.simulate.generate import generate

MODEL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}


@pytest.fixture(scope="module")
def example(example_path: Path) -> Scenario:
    return load_scenario(example_path)


# --- the story, by reason code -------------------------------------------------------------------
def test_enacted_plan_rents_offshore_and_finetunes_at_home(
    example: Scenario, rules: RuleSet
) -> None:
    plan = make_plan(example, regime="enacted", rules=rules)
    assert plan.status in ("optimal", "feasible") and not plan.unplaced
    countries = {a.stage: example.site(a.site).country for a in plan.assignments}
    assert countries["pretrain"] in ("SG", "MY")
    assert countries["sft"] == "CN"
    assert countries["serve-intl"] in ("SG", "MY")
    sft = next(d for d in plan.diagnosis if d.stage == "sft")
    assert sft.lost_codes["data-residency"] == 3
    assert "cn-cbdf-2024-assessment" in {c.rule for c in sft.citations}
    pipl = [r for r in sft.rejections if r.code == ReasonCode.DATA_RESIDENCY]
    assert {r.cite.rule for r in pipl if r.cite} == {"cn-cbdf-2024-assessment"}


def test_ai_diffusion_plan_trains_at_home_and_cannot_serve_offshore(
    example: Scenario, rules: RuleSet
) -> None:
    enacted = make_plan(example, regime="enacted", rules=rules)
    plan = make_plan(example, regime="ai-diffusion", rules=rules)
    assert plan.status == "infeasible"
    assert [(u.workload, u.stage) for u in plan.unplaced] == [("chat-72b", "serve-intl")]
    pretrain = plan.assignment("chat-72b", "pretrain")
    assert pretrain is not None and example.site(pretrain.site).country == "CN"
    serve = plan.unplaced[0]
    assert serve.lost_codes == {"export-control": 3, "location": 4}
    assert {
        rule for r in serve.rejections if r.code == ReasonCode.EXPORT_CONTROL for rule in r.rules
    } == {"us-diffusion-tier3-hq-compute"}
    assert plan.makespan_hours > enacted.makespan_hours
    home = plan.assignment("chat-72b", "pretrain")
    away = enacted.assignment("chat-72b", "pretrain")
    assert home is not None and away is not None
    assert home.end_h - home.start_h > away.end_h - away.start_h  # slower chips at home


def test_plan_json_contract(example: Scenario, rules: RuleSet) -> None:
    j = make_plan(example, rules=rules).to_json(details=True)
    for key in (
        "status",
        "objective",
        "total_cost_usd",
        "makespan_hours",
        "assignments",
        "unplaced",
        "diagnosis",
        "timings",
        "objective_value",
        "objective_unit",
        "search",
    ):
        assert key in j
    a = j["assignments"][0]
    for key in (
        "workload",
        "stage",
        "site",
        "chip",
        "chips",
        "start",
        "end",
        "chip_hours",
        "cost_usd",
        "decision",
        "requires",
    ):
        assert key in a
    assert a["start"].endswith("Z") and dt.datetime.fromisoformat(a["start"])
    assert j["total_cost_usd"] == pytest.approx(
        sum(x["cost_usd"] for x in j["assignments"]), abs=0.05
    )
    valid = {c.value for c in ReasonCode}
    for d in j["diagnosis"]:
        assert sum(d["lost"].values()) == sum(d["lost_codes"].values())
        assert set(d["lost_codes"]) <= valid
        assert all(r["code"] in valid for r in d["rejections"])
    assert set(j["timings"]) == {"time_limit_s", "elapsed_s", "phases", "within"}
    assert {"greedy", "search"} <= set(j["timings"]["phases"])


def test_held_assessment_lets_finetuning_go_offshore(example: Scenario, rules: RuleSet) -> None:
    tenant = example.tenants[0].model_copy(update={"authorizations": ("cac-security-assessment",)})
    sc = example.model_copy(update={"tenants": (tenant,)})
    plan = make_plan(sc, rules=rules)
    sft = next(d for d in plan.diagnosis if d.stage == "sft")
    assert "data-residency" not in sft.lost_codes


def test_timeline_never_overbooks() -> None:
    tl = Timeline(10)
    tl.book(0, 5, 6)
    assert tl.earliest(5, 2, 0) == 5
    assert tl.earliest(4, 10, 0) == 0
    with pytest.raises(ValueError):
        tl.book(1, 2, 5)


@pytest.mark.parametrize(
    ("gap_h", "overbooked"),
    [
        (-1e-12, False),  # start + hours and ticks / 60: the same instant, a float digit apart
        (0.0, False),
        (0.5, False),
        (-0.01, True),  # 36 seconds of real overlap is an overbooking
    ],
)
def test_the_capacity_invariant_tells_a_handover_from_an_overlap(
    example: Scenario, rules: RuleSet, gap_h: float, overbooked: bool
) -> None:
    plan = make_plan(example, rules=rules, solver="greedy")
    a = plan.assignments[0]
    count = max(p.count for p in example.site(a.site).pools if p.chip == a.chip)
    first = dataclasses.replace(
        a, chips=count, start_h=4069 + 13 / 60, bought=False, end_h=4069 + 13 / 60 + 1440
    )
    second = dataclasses.replace(first, start_h=first.end_h + gap_h, end_h=first.end_h + 100)
    found = capacity_violations(example, dataclasses.replace(plan, assignments=(first, second)))
    assert bool(found) == overbooked


# --- the verdict memo ----------------------------------------------------------------------------
def _two_tenants(order: tuple[str, str]) -> Scenario:
    """Two tenants headquartered in China, one holding a BIS licence, pre-train the same model
    on rented H100s in Singapore under the AI Diffusion rule (Tier 3 headquarters need a
    licence): only the licensed one may."""
    return parse_scenario(
        {
            "straits": 1,
            "name": "auths",
            "date": "2025-06-01",
            "regime": "ai-diffusion",
            "tenants": [
                {"id": "licensed", "hq": "CN", "authorizations": ["bis-license"]},
                {"id": "plain", "hq": "CN"},
            ],
            "sites": [
                {
                    "id": "sg",
                    "country": "SG",
                    "operator_hq": "SG",
                    "pools": [{"chip": "H100-SXM", "count": 512, "usd_per_chip_hour": 1.0}],
                },
                {
                    "id": "home",
                    "country": "CN",
                    "operator_hq": "CN",
                    "pools": [{"chip": "H800-SXM", "count": 512, "usd_per_chip_hour": 9.0}],
                },
            ],
            "workloads": [
                {
                    "id": f"w-{t}",
                    "tenant": t,
                    "model": MODEL,
                    "stages": [{"id": "pretrain", "kind": "pretrain", "tokens": 1e10}],
                }
                for t in order
            ],
        }
    )


@pytest.mark.parametrize("order", [("licensed", "plain"), ("plain", "licensed")])
@pytest.mark.parametrize("solver", ["greedy", "cpsat"])
def test_a_verdict_is_never_shared_with_a_tenant_that_lacks_the_authorization(
    order: tuple[str, str], solver: str, rules: RuleSet
) -> None:
    """The memo key is made of the rule questions themselves, authorizations included: the
    licensed tenant's lawful verdict must not leak to the other (it did when the key was a
    hand-made list of facts)."""
    plan = make_plan(_two_tenants(order), rules=rules, solver=solver)
    by = {a.workload: a for a in plan.assignments}
    assert by["w-licensed"].site == "sg" and by["w-licensed"].satisfied == ("bis-license",)
    assert by["w-plain"].site == "home" and by["w-plain"].satisfied == ()
    plain = next(d for d in plan.diagnosis if d.workload == "w-plain")
    assert plain.lost_codes.get("export-control") == 1


def _random_exports(rng: random.Random, sc: Scenario, tenant: str) -> ExportLedger:
    led = ExportLedger()
    for d in sc.datasets:
        if d.is_personal and rng.random() < 0.5:
            led.add(tenant, d.origin, sc.date.year, d.id, d.subjects, d.sensitive_subjects)
    return led


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 6),
    m=st.integers(2, 8),
    regime=st.sampled_from(["enacted", "ai-diffusion"]),
)
@settings(max_examples=20, deadline=None)
def test_memoised_verdicts_agree_with_cedar_uncached(
    seed: int, n: int, m: int, regime: str
) -> None:
    """For random placements (predecessors anywhere, random volumes already exported), the
    memoised verdict equals the one asked of Cedar with every cache off: same lawfulness,
    same blocking rule and code, same decisions and reasons."""
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    rs = RuleSet(ruleset().packs)  # a fresh rule set: its caches start empty
    cand = Candidates(sc, rs, regime=regime, date=sc.date)
    rng = random.Random(seed)
    for w in sc.workloads:
        for stage in w.stages:
            options = [o for o in cand.options(w, stage) if o.problem is None]
            for o in rng.sample(options, min(4, len(options))):
                preds = [
                    Predecessor(w.stage(p), rng.choice(sc.sites), cand.ops[w.id][p])
                    for p in stage.after
                ]
                exports = [_random_exports(rng, sc, w.tenant)]
                for _ in range(2):  # the second time from the memo
                    got = cand.verdict(w, stage, o, preds, exports)
                    want = cand.verdict_uncached(w, stage, o, preds, exports)
                    assert got.lawful == want.lawful
                    assert got.code == want.code
                    assert (got.blocking and got.blocking.rule) == (
                        want.blocking and want.blocking.rule
                    )
                    assert [d.to_json() for d in got.decisions] == [
                        d.to_json() for d in want.decisions
                    ]


@pytest.mark.parametrize("n", [10, 70])
def test_rows_are_told_apart_by_every_dataset_however_many(n: int, rules: RuleSet) -> None:
    """A stage reading n datasets stored at n sites: each of those sites asks a different
    transfer question, so no two of them share a verdict group (an earlier version looked at
    the first eight datasets only; 70 columns no longer fit one 64-bit key)."""
    sites = [
        {
            "id": f"s{i}",
            "country": "SG",
            "operator_hq": "SG",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0}],
        }
        for i in range(n + 1)
    ]
    sc = parse_scenario(
        {
            "straits": 1,
            "name": "many",
            "date": "2025-06-01",
            "tenants": [{"id": "t", "hq": "SG"}],
            "sites": sites,
            "datasets": [
                {
                    "id": f"d{i}",
                    "tokens": 1e9,
                    "size_gb": 10,
                    "located_at": f"s{i}",
                    "origin": "SG",
                    "classes": ["public"],
                }
                for i in range(n)
            ],
            "workloads": [
                {
                    "id": "w",
                    "tenant": "t",
                    "model": MODEL,
                    "stages": [
                        {
                            "id": "pretrain",
                            "kind": "pretrain",
                            "datasets": [f"d{i}" for i in range(n)],
                        }
                    ],
                }
            ],
        }
    )
    cand = Candidates(sc, rules, regime="enacted", date=sc.date)
    w = sc.workloads[0]
    t = cand.table(w, w.stages[0])
    gid = cand.groups(w, w.stages[0], t, [])
    by_site = {t.rows[i].resource.site.id: int(gid[i]) for i in range(len(t))}
    assert len(set(by_site.values())) == n + 1
    keys = {
        s: tuple(
            cand.request_key(q.request)
            for q in cand.questions(w, w.stages[0], sc.site(s), "H100-SXM", [], [])
        )
        for s in by_site
    }
    for a in by_site:  # same group <=> same questions
        for b in by_site:
            assert (by_site[a] == by_site[b]) == (keys[a] == keys[b])


# --- invariants over generated portfolios --------------------------------------------------------
@given(
    st.integers(0, 10_000),
    st.integers(1, 6),
    st.integers(2, 6),
    st.sampled_from(["enacted", "ai-diffusion"]),
    st.sampled_from(["cost", "time", "completion", "carbon", "cost+50*energy"]),
    st.sampled_from(["cpsat", "greedy", "lns"]),
)
def test_generated_plans_keep_every_invariant(
    seed: int, n: int, m: int, regime: str, objective: str, solver: str
) -> None:
    sc = generate(workloads=n, sites=m, seed=seed)
    plan = make_plan(sc, regime=regime, objective=objective, solver=solver, time_limit=4)
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
    if plan.bound_value is not None and plan.objective_value is not None:
        assert plan.bound_value <= plan.objective_value + 1e-6
    for d in plan.diagnosis:  # every rejection has a code, rule rejections cite their rule
        for r in d.rejections:
            assert isinstance(r.code, ReasonCode)
            assert (r.code in RULE_CODES) == (r.cite is not None)


@given(
    st.integers(0, 10_000),
    st.integers(1, 5),
    st.integers(2, 5),
    st.sampled_from(["enacted", "ai-diffusion"]),
)
def test_every_assignment_is_lawful_under_the_final_volumes(
    seed: int, n: int, m: int, regime: str
) -> None:
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
                ledger.add(
                    w.tenant, c, sc.date.year, users_export_id(w, stage, c), user_subjects(stage), 0
                )
    for a in plan.assignments:
        w = sc.workload(a.workload)
        stage = w.stage(a.stage)
        preds = []
        for p in stage.after:
            pa = plan.assignment(w.id, p)
            assert pa is not None
            preds.append(Predecessor(w.stage(p), sc.site(pa.site), ops[w.id][p]))
        qs = placement_questions(
            sc,
            w,
            stage,
            sc.site(a.site),
            a.chip,
            date=sc.date,
            regime=regime,
            training_ops=ops[w.id][stage.id],
            preds=preds,
            exports=[ledger],
            year=sc.date.year,
        )
        for q, d in zip(qs, rs.check_many([q.request for q in qs]), strict=True):
            assert d.decision == "allow", (a.workload, a.stage, q.label, d.to_json())


def _two_finetunes(authorizations: list[str], subjects: tuple[int, int]) -> dict[str, Any]:
    """A CN tenant fine-tunes two models on two Chinese personal datasets; offshore capacity
    is much cheaper than at home."""
    return {
        "straits": 1,
        "name": "cumulative",
        "date": dt.date(2025, 6, 1),
        "tenants": [{"id": "t", "hq": "CN", "authorizations": authorizations}],
        "sites": [
            {
                "id": "home",
                "country": "CN",
                "operator_hq": "CN",
                "pools": [{"chip": "H800-SXM", "count": 512, "usd_per_chip_hour": 9.0}],
            },
            {
                "id": "sg",
                "country": "SG",
                "operator_hq": "SG",
                "pools": [{"chip": "H100-SXM", "count": 512, "usd_per_chip_hour": 1.0}],
            },
        ],
        "datasets": [
            {
                "id": f"d{i}",
                "tokens": 1e10,
                "size_gb": 10,
                "located_at": "home",
                "origin": "CN",
                "classes": ["personal"],
                "subjects": n,
            }
            for i, n in enumerate(subjects)
        ],
        "workloads": [
            {
                "id": f"w{i}",
                "tenant": "t",
                "model": MODEL,
                "stages": [{"id": "sft", "kind": "finetune", "datasets": [f"d{i}"]}],
            }
            for i in range(2)
        ],
    }


@pytest.mark.parametrize(
    ("auths", "subjects", "offshore"),
    [
        ([], (50_000, 40_000), 2),  # 90,000 a year: exempt
        ([], (60_000, 60_000), 1),  # together 120,000: contract needed
        (["cac-standard-contract"], (600_000, 600_000), 1),  # together 1.2M: assessment needed
        (["cac-standard-contract"], (400_000, 500_000), 2),  # together 900,000: contract suffices
        (["cac-security-assessment"], (600_000, 600_000), 2),
    ],
)
def test_cac_volumes_add_up_over_the_year(
    auths: list[str], subjects: tuple[int, int], offshore: int
) -> None:
    sc = parse_scenario(_two_finetunes(auths, subjects))
    plan = make_plan(sc)
    assert not plan.unplaced
    assert sum(a.site == "sg" for a in plan.assignments) == offshore
    assert residency_violations(sc, plan) == []
