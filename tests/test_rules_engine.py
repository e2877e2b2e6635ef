"""The rule engine: the DESIGN.md contract, the decision algebra, the cache, malformed packs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.errors import PackError
from straits.model.request import CheckRequest
from straits.rules import RuleSet, ruleset

DESIGN_REQUEST: dict[str, Any] = {
    "date": "2025-06-01",
    "regime": "enacted",
    "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
    "data": {"origin": "CN", "classes": ["personal"], "subjects": 3000000, "sensitive_subjects": 0},
    "weights": {"training_ops": 3e25, "open": False, "from_country": "SG"},
}


def req(**changes: Any) -> CheckRequest:
    data = {**DESIGN_REQUEST, **changes}
    return CheckRequest.model_validate(data)


def test_design_example_is_conditional_on_security_assessment(rules: RuleSet) -> None:
    d = rules.check(req()).to_json()
    assert d["decision"] == "conditional"
    assert d["requires"] == ["cac-security-assessment"]
    assert d["reasons"][0]["rule"] == "cn-cbdf-2024-assessment"
    assert d["reasons"][0]["citation"] == "CAC Provisions on Cross-Border Data Flows (2024) Art. 7"
    assert d["reasons"][0]["effect"] == "requires"
    assert d["reasons"][0]["confidence"] == "V"
    assert "3,000,000 individuals" in d["reasons"][0]["text"]


def test_held_authorization_makes_it_allow(rules: RuleSet) -> None:
    d = rules.check(req(tenant={"hq": "CN", "authorizations": ["cac-security-assessment"]}))
    assert d.decision == "allow"
    assert d.requires == ()
    assert d.satisfied == ("cac-security-assessment",)
    assert d.reasons[0].outcome == "satisfied"


def test_certification_satisfies_standard_contract(rules: RuleSet) -> None:
    data = {"origin": "CN", "classes": ["personal"], "subjects": 200_000}
    without = rules.check(req(data=data))
    assert without.requires == ("cac-standard-contract",)
    held = rules.check(req(data=data, tenant={"hq": "CN", "authorizations": ["cac-certification"]}))
    assert held.decision == "allow"


@pytest.mark.parametrize(("regime", "lawful"), [("enacted", True), ("ai-diffusion", False)])
def test_cn_tenant_renting_h100_in_singapore(rules: RuleSet, regime: str, lawful: bool) -> None:
    d = rules.check(req(action="train", data=None, weights=None, regime=regime))
    assert (d.decision == "allow") is lawful
    if not lawful:
        assert any(r.rule == "us-diffusion-tier3-hq-compute" for r in d.reasons)


def test_warnings_never_change_the_decision(rules: RuleSet) -> None:
    d = rules.check(req(action="train", data=None, weights=None))
    assert d.decision == "allow"
    assert "us-guidance-2025-cloud-d5-training" in {w.rule for w in d.warnings}


def test_every_rule_has_the_required_annotations(rules: RuleSet) -> None:
    assert len(rules.rules) >= 30
    for r in rules.rules:
        assert r.id and r.citation and r.confidence in ("V", "V2", "D", "M")
        assert r.effect in ("requires", "deny", "warn", "note")
        assert (r.requires is not None) == (r.effect == "requires")


# --- the cache is exact -------------------------------------------------------------------------
requests = st.builds(
    lambda date, regime, action, hq, site, op, chip, subjects, auths, qty: CheckRequest(
        date=date,
        regime=regime,
        action=action,
        tenant={"hq": hq, "authorizations": auths},
        site={"country": site, "operator_hq": op},
        chip=chip,
        quantity=qty,
        data={"origin": "CN", "classes": ["personal"], "subjects": subjects},
        weights={"training_ops": 2e26, "open": False, "from_country": "US"},
    ),
    st.dates(dt.date(2021, 6, 1), dt.date(2026, 12, 31)),
    st.sampled_from(["enacted", "ai-diffusion"]),
    st.sampled_from(["train", "finetune", "serve", "procure", "transfer-data", "transfer-weights"]),
    st.sampled_from(["CN", "SG", "US", "MO", "VN"]),
    st.sampled_from(["CN", "SG", "MY", "US", "DE", "SA", "HK"]),
    st.sampled_from(["CN", "SG", "US"]),
    st.sampled_from(["H100-SXM", "H20", "A800-SXM", "B200", "H200-SXM", "Ascend-910B"]),
    st.integers(0, 3_000_000),
    st.lists(
        st.sampled_from(["bis-license", "cac-standard-contract", "cac-security-assessment"]),
        max_size=2,
        unique=True,
    ),
    st.integers(0, 5000),
)


@given(st.lists(requests, min_size=1, max_size=8))
def test_cached_decisions_equal_raw_cedar(reqs: list[CheckRequest]) -> None:
    rs = ruleset()
    cached = [d.to_json() for d in rs.check_many(reqs)]
    again = [d.to_json() for d in rs.check_many(reqs)]
    raw = [d.to_json() for d in rs.check_many(reqs, use_cache=False)]
    assert cached == raw == again


# --- malformed packs ----------------------------------------------------------------------------
GOOD_POLICY = """@id("t-one")
@title("Test")
@citation("Test Act s.1")
@confidence("V")
@effect("requires")
@requires("bis-license")
@effective_from("2025-01-01")
@reason("a test rule")
permit (principal, action == Straits::Action::"procure", resource)
when { context.date >= datetime("2025-01-01") };
"""


def _pack(tmp_path: Path, policy: str, groups: str | None = None) -> Path:
    d = tmp_path / "my-pack"
    d.mkdir()
    (d / "pack.yaml").write_text("name: my-pack\ntitle: test\nversion: '1'\n")
    (d / "rules.cedar").write_text(policy)
    if groups is not None:
        (d / "groups.yaml").write_text(groups)
    return d


def test_user_pack_loads_and_applies(tmp_path: Path) -> None:
    rs = ruleset((_pack(tmp_path, GOOD_POLICY),))
    d = rs.check(req(action="procure", data=None, weights=None, tenant={"hq": "SG"}))
    assert "t-one" in {r.rule for r in d.reasons}


@pytest.mark.parametrize(
    ("policy", "line", "words"),
    [
        (
            GOOD_POLICY + '\n// second\n@id("t-two")\npermit (principal, action, resource)\n'
            "when { context.date >= };\n",
            13,
            "Cedar syntax error",
        ),
        (
            GOOD_POLICY.replace("context.date >=", "context.nope > 1 && context.date >="),
            1,
            "does not fit the schema",
        ),
        (GOOD_POLICY.replace('@citation("Test Act s.1")\n', ""), 1, "@citation"),
        (GOOD_POLICY.replace('@effect("requires")', '@effect("maybe")'), 1, "@effect"),
        (GOOD_POLICY.replace('"bis-license"', '"visa"'), 1, "not a known authorization"),
        (GOOD_POLICY.replace("permit", "forbid"), 1, "permit"),
        (GOOD_POLICY.replace('2025-01-01")\n@reason', '2025-13-01")\n@reason'), 1, "ISO date"),
        (
            GOOD_POLICY.replace(
                'context.date >= datetime("2025-01-01")',
                'context.date >= datetime("2025-01-01") && '
                'context.site.country in Straits::Group::"nowhere"',
            ),
            1,
            "unknown group 'nowhere'",
        ),
    ],
)
def test_malformed_pack_names_file_and_line(
    tmp_path: Path, policy: str, line: int, words: str
) -> None:
    with pytest.raises(PackError) as exc:
        ruleset((_pack(tmp_path, policy),))
    assert f"my-pack/rules.cedar:{line}" in str(exc.value)
    assert words in str(exc.value)


def test_duplicate_rule_id_across_packs_is_an_error(tmp_path: Path) -> None:
    dup = GOOD_POLICY.replace('"t-one"', '"cn-cbdf-2024-assessment"')
    with pytest.raises(PackError, match="duplicate rule id"):
        ruleset((_pack(tmp_path, dup),))


def test_bad_group_member(tmp_path: Path) -> None:
    groups = "g:\n  title: x\n  source: y\n  confidence: V\n  members: [ZZ]\n"
    with pytest.raises(PackError, match="'ZZ' is not an ISO"):
        ruleset((_pack(tmp_path, GOOD_POLICY, groups),))


# --- a new fact reaches the cache key and the planner ----------------------------------------
def test_dpf_certification_reaches_the_cache_key(rules: RuleSet) -> None:
    """site.dpf_certified is read by the GDPR policies: the key plan keeps it, so two requests
    that differ only in it are never answered from each other's cache entry."""
    from straits.rules.cache_key import KeyPlan

    assert ("site", "dpf_certified") in KeyPlan([r.est for r in rules.rules]).exact
    base = {
        **DESIGN_REQUEST,
        "action": "train",
        "weights": None,
        "tenant": {"hq": "DE"},
        "data": {"origin": "DE", "classes": ["personal"], "subjects": 10},
    }
    certified = req(
        **{**base, "site": {"country": "US", "operator_hq": "US", "dpf_certified": True}}
    )
    other = req(**{**base, "site": {"country": "US", "operator_hq": "US"}})
    rs = ruleset()
    rs.clear_cache()
    first = rs.check_many([certified, other])
    again = rs.check_many([other, certified])
    assert [d.decision for d in first] == ["allow", "conditional"]
    assert [d.decision for d in again] == ["conditional", "allow"]


def test_the_planner_reads_dpf_certification_per_site(rules: RuleSet) -> None:
    """Two US sites of the same operator country, the cheaper one not certified: EU personal
    data trains on the certified one (the planner's verdict memo keeps them apart)."""
    from straits.loading import parse_scenario
    from straits.plan import make_plan

    pool = {"chip": "H100-SXM", "count": 512}
    sc = parse_scenario(
        {
            "straits": 1,
            "name": "dpf",
            "date": "2025-06-01",
            "tenants": [{"id": "eu-lab", "hq": "DE"}],
            "sites": [
                {
                    "id": "us-cheap",
                    "country": "US",
                    "operator_hq": "US",
                    "pools": [{**pool, "usd_per_chip_hour": 1.0}],
                },
                {
                    "id": "us-dpf",
                    "country": "US",
                    "operator_hq": "US",
                    "dpf_certified": True,
                    "pools": [{**pool, "usd_per_chip_hour": 2.0}],
                },
                {"id": "eu-store", "country": "DE", "operator_hq": "DE"},
            ],
            "datasets": [
                {
                    "id": "eu-chats",
                    "tokens": 1e9,
                    "size_gb": 10,
                    "located_at": "eu-store",
                    "origin": "DE",
                    "classes": ["personal"],
                    "subjects": 50000,
                }
            ],
            "workloads": [
                {
                    "id": m,
                    "tenant": "eu-lab",
                    "model": {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16},
                    "stages": [{"id": "ft", "kind": "finetune", "datasets": ["eu-chats"]}],
                }
                for m in ("a", "b")
            ],
        }
    )
    plan = make_plan(sc, rules=rules, solver="greedy")
    assert {a.site for a in plan.assignments} == {"us-dpf"} and len(plan.assignments) == 2
