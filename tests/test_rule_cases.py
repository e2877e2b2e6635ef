"""The packs' case tables, run by pytest, and the consistency of every rule's annotations."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from click.testing import CliRunner

from straits.model.request import ACTIONS
from straits.model.types import Regime
from straits.rules import ruleset
from straits.rules.cases import load_cases, run_cases
from straits.rules.est import date_comparisons
from straits.rules.listing import diff, in_force

RULES = ruleset()
RESULTS = run_cases(RULES)


@pytest.mark.parametrize("result", RESULTS, ids=[f"{r.case.pack}: {r.case.name}" for r in RESULTS])
def test_case(result) -> None:  # type: ignore[no-untyped-def]
    assert result.ok, "\n".join(result.problems) + f"\n{json.dumps(result.to_json(), default=str)}"


def test_enough_cases_over_every_pack_action_and_regime() -> None:
    assert len(RESULTS) >= 80
    assert {p.name for p in RULES.packs} == {r.case.pack for r in RESULTS}
    seen = {(r.case.request.action, r.case.request.regime) for r in RESULTS}
    regimes = Regime.__args__  # type: ignore[attr-defined]
    assert seen == {(a, g) for a in ACTIONS for g in regimes}


def test_every_rule_is_shown_to_apply_by_a_case_of_its_own_pack() -> None:
    covered = {(r.case.pack, rid) for r in RESULTS for rid in r.case.expect.rules}
    covered |= {
        (r.case.pack, rid)
        for r in RESULTS
        if r.case.boundary is not None
        for rid in r.case.boundary[0]
    }
    assert [r.id for r in RULES.rules if (r.pack, r.id) not in covered] == []


@pytest.mark.parametrize("rule", RULES.rules, ids=[r.id for r in RULES.rules])
def test_annotations_match_the_condition(rule) -> None:  # type: ignore[no-untyped-def]
    """@effective_from / @effective_until say what the Cedar condition says."""
    cmps = date_comparisons(rule.est)
    assert (">=", rule.effective_from) in cmps
    ends = {(op, d) for op, d in cmps if op in ("<", "<=")}
    if rule.effective_until is None:
        assert ends == set()
    else:
        assert ends == {("<", rule.effective_until + dt.timedelta(days=1))}


#: change dates without a boundary table: the GDPR's start (the 1995 Directive before it is out
#: of scope, so Straits cannot say what applied the day before) and rules older than 2018
NO_BOUNDARY = {
    ("eu-gdpr-ch5-transfer", dt.date(2018, 5, 25)),
    ("eu-gdpr-adequacy", dt.date(2018, 5, 25)),
    ("eu-gdpr-ch5-transfer-uk-2020", dt.date(2018, 5, 25)),
}


def change_dates(rule) -> list[dt.date]:  # type: ignore[no-untyped-def]
    ends = [rule.effective_until + dt.timedelta(days=1)] if rule.effective_until else []
    return [
        d
        for d in (rule.effective_from, *ends)
        if d.year >= 2018 and (rule.id, d) not in NO_BOUNDARY
    ]


def test_every_rule_change_has_a_boundary_table_in_its_pack() -> None:
    """The day before, the day of and the day after every date a rule starts or stops
    applying, in the rule's own pack (each day's case also checks the rule applies exactly
    when its window says)."""
    tried: dict[tuple[str, str, dt.date], set[int]] = {}
    for r in RESULTS:
        if r.case.boundary is not None:
            rules, date = r.case.boundary
            for rid in rules:
                tried.setdefault((r.case.pack, rid, date), set()).add(
                    (r.case.request.date - date).days
                )
    missing = [
        (rule.pack, rule.id, d)
        for rule in RULES.rules
        for d in change_dates(rule)
        if tried.get((rule.pack, rule.id, d)) != {-1, 0, 1}
    ]
    assert missing == []
    assert {pack for pack, _, _ in tried} == {p.name for p in RULES.packs}


def test_a_boundary_on_a_date_the_rule_does_not_change_fails(tmp_path: Path) -> None:
    pack = tmp_path / "eu-gdpr"
    shutil.copytree(RULES.packs[[p.name for p in RULES.packs].index("eu-gdpr")].path, pack)
    (pack / "cases" / "wrong.yaml").write_text(WRONG_BOUNDARY)
    results = run_cases(ruleset((pack,)), ["eu-gdpr"])
    wrong = [r for r in results if r.case.file.endswith("wrong.yaml")]
    assert len(wrong) == 3 and all(not r.ok for r in wrong)
    assert all(
        "neither starts nor stops applying on 2023-07-11" in " ".join(r.problems) for r in wrong
    )


WRONG_BOUNDARY = """
defaults: {date: 2025-06-01, action: train, tenant: {hq: DE}, chip: H100-SXM,
           site: {country: US, operator_hq: US, dpf_certified: true},
           data: {origin: DE, classes: [personal], subjects: 10}}
cases: []
boundaries:
  - name: one day late
    rules: [eu-gdpr-dpf-2023]
    date: 2023-07-11
    before: {decision: allow}
    after: {decision: allow}
"""


def test_diff_names_the_h20_rule() -> None:
    d = diff(RULES.rules, (dt.date(2025, 4, 8), "enacted"), (dt.date(2025, 4, 10), "enacted"))
    assert [r.id for r in d.added] == ["us-ear-2025-h20"]
    assert d.removed == ()


def test_regime_diff_is_the_diffusion_pack() -> None:
    on = dt.date(2025, 6, 1)
    d = diff(RULES.rules, (on, "enacted"), (on, "ai-diffusion"))
    assert {r.pack for r in d.added} == {"us-ear-diffusion"}
    assert all(r.pack != "us-ear-diffusion" for r in in_force(RULES.rules, on, "enacted"))


# --- the CLI: `straits rules test` ---------------------------------------------------------------
WRONG_CASE = """
defaults: {date: 2025-06-01, action: finetune, tenant: {hq: CN},
           site: {country: SG, operator_hq: SG}, chip: H100-SXM}
cases:
  - name: deliberately wrong expectation
    request: {data: {origin: CN, classes: [personal], subjects: 3000000}}
    expect: {decision: allow}
"""


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, in a process of its own (one end-to-end run)."""
    return subprocess.run(
        [sys.executable, "-m", "straits", *args], capture_output=True, text=True, timeout=300
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _straits(*args: str) -> Ran:
    """The real command line, in this process (its imports are paid once)."""
    from straits.cli import app

    res = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.stderr)


def test_rules_test_cli_passes() -> None:
    p = _process("rules", "test")
    assert p.returncode == 0, p.stdout
    assert f"{len(RESULTS)} passed, 0 failed" in p.stdout


def test_a_wrong_expectation_fails_with_request_expected_actual(tmp_path: Path) -> None:
    pack = tmp_path / "team-policy"
    (pack / "cases").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: team-policy\ntitle: t\nversion: '1'\n")
    (pack / "policy.cedar").write_text(
        '@id("team-no-b200")\n@title("Team: no B200")\n@citation("Team policy 1")\n'
        '@confidence("V")\n@effect("deny")\n@effective_from("2025-01-01")\n'
        '@reason("the team does not use {chip}")\n'
        "permit (principal, action, resource) when { context has chip && "
        'context.chip.id == "B200" && context.date >= datetime("2025-01-01") };\n'
    )
    (pack / "cases" / "wrong.yaml").write_text(WRONG_CASE)
    assert len(load_cases(ruleset((pack,)).packs[-1])) == 1
    p = _straits("rules", "test", "team-policy", "--rules", str(pack))
    assert p.returncode == 1
    out = " ".join(p.stdout.split())
    assert "FAIL" in out and "deliberately wrong expectation" in out
    assert "expected allow, got conditional" in out
    assert "request:" in out and "expected:" in out and "actual:" in out
    j = json.loads(_straits("rules", "test", "team-policy", "--rules", str(pack), "--json").stdout)
    assert j["failed"] == 1 and j["cases"][0]["actual"]["decision"] == "conditional"


def test_rules_list_show_diff_cli() -> None:
    listed = json.loads(_straits("rules", "list", "--date", "2025-04-10", "--json").stdout)
    assert "us-ear-2025-h20" in {r["rule"] for r in listed}
    assert "us-diffusion-tier3-hq-compute" not in {r["rule"] for r in listed}
    shown = _straits("rules", "show", "us-ear-2025-h20")
    assert "Form 8-K" in " ".join(shown.stdout.split())
    d = json.loads(_straits("rules", "diff", "2025-04-08", "2025-04-10", "--json").stdout)
    assert [r["rule"] for r in d["added"]] == ["us-ear-2025-h20"]
    bad = _straits("rules", "show", "no-such-rule")
    assert bad.returncode == 2 and "unknown rule" in bad.stderr
    bad_date = _straits("rules", "list", "--date", "2025-02-30")
    assert bad_date.returncode == 2 and "--date" in bad_date.stderr
