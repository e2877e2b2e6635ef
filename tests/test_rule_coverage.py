"""Policy and condition coverage of the case tables (`straits rules test`)."""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import pytest
import typer
from click.testing import CliRunner

from straits.catalog import catalog, classify_2023
from straits.rules import ruleset
from straits.rules.cases import run_cases
from straits.rules.coverage import coverage
from straits.rules.est import conjuncts, expr_text

RULES = ruleset()
REPORT = coverage(RULES, run_cases(RULES))


def cli(*args: str) -> tuple[int, str, str]:
    from straits.cli import app

    res = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def test_every_shipped_policy_applies_in_a_case_of_its_own_pack() -> None:
    assert REPORT.policy_pct == 100.0 and REPORT.uncovered == []
    assert {p.pack for p in REPORT.packs} == {p.name for p in RULES.packs}


def _untestable() -> dict[tuple[str, str], str]:
    """Conditions no case can make stop their rule, each with the reason, computed from the
    catalog where the catalog is the reason (a chip added later makes them testable, and this
    test then asks for the case)."""
    chips = list(catalog())
    out: dict[tuple[str, str], str] = {}
    pre_2018 = "a date before the rule's first day (pre-2018: out of scope for the tables)"
    out[("eu-gdpr-ch5-transfer", 'context.date >= datetime("2018-05-25")')] = pre_2018
    out[("eu-gdpr-adequacy", 'context.date >= datetime("2018-05-25")')] = pre_2018
    out[("eu-gdpr-ch5-transfer-uk-2020", 'context.date >= datetime("2018-05-25")')] = pre_2018
    out[("us-ear-entity-list", 'context.date >= datetime("1997-02-03")')] = pre_2018
    for rid in ("cuba", "north-korea", "iran", "syria"):
        out[(f"us-ear-embargo-{rid}", 'context.date >= datetime("1996-03-25")')] = pre_2018
    if all(c.datacenter for c in chips if c.origin == "US"):
        for rid in (
            "my-sta-2025-permit",
            "us-ear-2024-hbm",
            "us-ear-2025-h20",
            "us-ear-2025-h20-licensed",
        ):
            out[(rid, "context.chip.datacenter")] = "every US catalog chip is a data-centre part"
    if not any(
        c.origin == "US"
        and classify_2023(c).cls != "not-controlled"
        and c.tpp_upper < 21000
        and c.hbm_tbps.upper * 1000 >= 6500
        for c in chips
    ):
        for rid in ("us-ear-2026-case-by-case", "us-ear-2026-reexport"):
            out[(rid, "context.chip.mem_bw_gbps < 6500")] = (
                "no 3A090 catalog chip has TPP < 21,000 and 6,500 GB/s or more"
            )
    matching = (
        '(((context.chip.id == "H20") || (context.chip.id == "MI308X")) || '
        "(context.chip.mem_bw_gbps >= 4000)) || (context.chip.io_gbps >= 900)"
    )
    if not any(
        c.origin == "US"
        and classify_2023(c).cls == "not-controlled"
        and c.id != "H20"
        and c.hbm_tbps.upper * 1000 < 4000
        and (c.io_gbps or 1e9) < 900
        for c in chips
    ):
        for rid in ("us-ear-2025-h20", "us-ear-2025-h20-licensed"):
            out[(rid, matching)] = "every uncontrolled US catalog chip matches the H20"
    return out


def test_every_condition_the_catalog_allows_is_shown_to_matter() -> None:
    """Each condition lets its rule through in some case and stops it in another, except
    those the catalog or the tables' scope make impossible (listed with the reason)."""
    uncovered = {
        (p.rule.id, c.text) for p in REPORT.policies for c in p.conditions if not c.covered
    }
    assert uncovered == set(_untestable())


def test_condition_texts_are_cedar_that_parses_back_to_the_same_condition() -> None:
    for rule in RULES.rules:
        for cond in rule.est["conditions"]:
            for c in conjuncts(cond["body"]):
                text = f"permit (principal, action, resource) when {{ {expr_text(c)} }};"
                back = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
                assert back["policy0"]["conditions"][0]["body"] == c, expr_text(c)


POLICY = """
@id("team-big-us-orders")
@title("Team: big US orders")
@citation("Team policy 2")
@confidence("V")
@effect("requires")
@requires("bis-license")
@effective_from("2025-01-01")
@reason("{quantity} chips for the US need the export desk")
permit (principal, action == Straits::Action::"procure", resource)
when {
  context.quantity > 100 &&
  context.site.country == Straits::Country::"US" &&
  context.date >= datetime("2025-01-01")
}
unless { context.tenant.hq == Straits::Country::"US" };
"""
CASES = """
defaults: {date: 2025-06-01, action: procure, quantity: 500, chip: H100-SXM,
           tenant: {hq: DE}, site: {country: US, operator_hq: US}}
cases:
  - name: a big order
    expect: {decision: conditional, requires: [bis-license], rules: [team-big-us-orders]}
  - name: a small order
    request: {quantity: 10}
    expect: {decision: allow, not_rules: [team-big-us-orders]}
"""
MORE = """
  - name: a big order elsewhere
    request: {site: {country: DE, operator_hq: DE}}
    expect: {decision: allow}
  - name: before the policy
    request: {date: 2024-12-31}
    expect: {decision: allow}
  - name: a US buyer
    request: {tenant: {hq: US}}
    expect: {decision: allow}
  - name: renting
    request: {action: train}
    expect: {decision: allow}
"""


def team_pack(tmp_path: Path, cases: str) -> Path:
    pack = tmp_path / "team"
    (pack / "cases").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: team\ntitle: Team policy\nversion: '1'\n")
    (pack / "policy.cedar").write_text(POLICY)
    (pack / "cases" / "t.yaml").write_text(cases)
    return pack


def test_conditions_are_counted_in_evaluation_order(tmp_path: Path) -> None:
    pack = team_pack(tmp_path, CASES)
    rs = ruleset((pack,))
    [policy] = coverage(rs, run_cases(rs, ["team"])).policies
    assert (policy.cases, policy.applied) == (2, 1)
    got = [(c.kind, c.passed, c.stopped) for c in policy.conditions]
    # scope passes both; quantity stops the small order; the rest never stop anything
    assert got == [
        ("scope", 2, 0),
        ("when", 1, 1),
        ("when", 1, 0),
        ("when", 1, 0),
        ("unless", 1, 0),
    ]
    code, out, _ = cli(
        "rules", "test", "team", "--rules", str(pack), "--json", "--min-condition-coverage", "100"
    )
    assert code == 1
    cov = json.loads(out)["coverage"]
    assert cov["policy_coverage"] == 100.0 and cov["condition_coverage"] == 20.0
    full = team_pack(tmp_path / "full", CASES + MORE)
    code, out, _ = cli(
        "rules", "test", "team", "--rules", str(full), "--json", "--min-condition-coverage", "100"
    )
    assert code == 0, out
    assert json.loads(out)["coverage"]["condition_coverage"] == 100.0


def test_a_policy_no_case_of_its_pack_exercises_fails_rules_test(tmp_path: Path) -> None:
    pack = team_pack(
        tmp_path,
        CASES.split("  - name: a big order")[0]
        + "  - name: only small\n    request: {quantity: 10}\n"
        "    expect: {decision: allow}\n",
    )
    code, out, _ = cli("rules", "test", "team", "--rules", str(pack))
    text = " ".join(out.split())
    assert code == 1 and "1 passed, 0 failed" in text
    assert "NO CASE OF ITS PACK MAKES IT APPLY" in text and "team-big-us-orders" in text


@pytest.mark.parametrize(
    "bad",
    [
        "boundaries: {}\ncases: []\n",
        "cases: []\nboundaries:\n  - {name: x, rules: [], date: 2025-01-01, "
        "before: {decision: allow}, after: {decision: allow}}\n",
        "cases: []\nboundaries:\n  - {name: x, rules: [team-big-us-orders], date: 2025-01-01}\n",
        "cases: []\nboundaries:\n  - just text\n",
    ],
)
def test_a_malformed_boundary_table_names_the_file(tmp_path: Path, bad: str) -> None:
    pack = team_pack(tmp_path, bad)
    code, _, err = cli("rules", "test", "team", "--rules", str(pack))
    assert code == 2 and "team/cases/t.yaml" in err


def test_a_case_file_is_named_by_its_path_not_its_packs_name(tmp_path: Path) -> None:
    """A pack's `name` need not be its folder's: `my-pack/pack.yaml` saying `name: team` had
    its case files named `team/cases/t.yaml` (a path that is not there) in `rules test`'s
    errors and its JSON, where its policies were named by their path (user64)."""
    pack = team_pack(tmp_path, "cases:\n  - {name: x, request: {chip: 5}, expect: {}}\n")
    pack = pack.rename(tmp_path / "my-pack")
    code, _, err = cli("rules", "test", "team", "--rules", str(pack))
    assert code == 2 and str(pack / "cases" / "t.yaml") in err
    (pack / "cases" / "t.yaml").write_text(CASES)
    code, out, _ = cli("rules", "test", "team", "--rules", str(pack), "--json")
    files = {c["file"] for c in json.loads(out)["cases"]}
    assert files == {str(pack / "cases" / "t.yaml")}
    code, out, _ = cli("rules", "test", "us-ear", "--json")
    policy = json.loads(out)["coverage"]["packs"][0]["policies"][0]["file"]
    assert {c["file"].split("/")[0] for c in json.loads(out)["cases"]} == {policy.split("/")[0]}


def test_a_users_pack_under_a_folder_named_packs_keeps_its_path(tmp_path: Path) -> None:
    """Any path with a folder named `packs` was cut there: a user's pack in
    `/srv/packs/team/` was named `packs/team/...` (a path not there, and for a pack named
    `us-ear` the shipped pack's own name) in `rules test`'s errors and JSON (rev64c)."""
    (tmp_path / "packs").mkdir()
    pack = team_pack(tmp_path / "packs", "cases:\n  - {name: x, request: {chip: 5}, expect: {}}\n")
    code, _, err = cli("rules", "test", "team", "--rules", str(pack))
    assert code == 2 and str(pack / "cases" / "t.yaml") in err
    (pack / "cases" / "t.yaml").write_text(CASES)
    code, out, _ = cli("rules", "test", "team", "--rules", str(pack), "--json")
    doc = json.loads(out)
    assert {c["file"] for c in doc["cases"]} == {str(pack / "cases" / "t.yaml")}
    [team] = [p for p in doc["coverage"]["packs"] if p["pack"] == "team"]
    assert team["policies"][0]["file"] == str(pack / "policy.cedar")
    code, out, _ = cli("rules", "test", "us-ear", "--json")
    assert all(c["file"].startswith("packs/us-ear/cases/") for c in json.loads(out)["cases"])
