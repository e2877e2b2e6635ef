"""User-supplied rule packs that loaded before (a traceback later, or a lie), found by the
hostile pass atk24: changelogs, case tables, policy text and pack directories."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml

from straits.errors import PackError
from straits.rules.pack_loader import load_pack, load_packs
from test_pack_versions import cli, copy_pack, edit_meta

DIGEST = "ab" * 32


def release(**extra: object) -> dict[str, object]:
    return {"version": "9", "date": "2026-01-01", "changes": ["x"], **extra}


@pytest.mark.parametrize(
    ("changelog", "words"),
    [
        # YAML reads `2026-01-01 10:00` as a timestamp: comparing it with the next release's
        # day was a TypeError traceback
        (
            [
                release(date=dt.datetime(2026, 1, 1, 10, 0)),
                release(version="8", date=dt.date(2025, 1, 1)),
            ],
            "is a timestamp, not a day",
        ),
        ([release(date=dt.datetime(2026, 1, 1, 10, 0))], "is a timestamp, not a day"),
        # 64 characters of anything passed as the digest, an escape sequence too
        ([release(digest="\x1b]0;x\x07" + "0" * 59)], "64-hex"),
        ([release(digest="g" * 64)], "64-hex"),
    ],
)
def test_a_bad_release_is_a_named_error(tmp_path: Path, changelog: object, words: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    edit_meta(pack, version="9", changelog=changelog)
    with pytest.raises(PackError) as err:
        load_pack(pack)
    assert words in str(err.value) and "pack.yaml" in str(err.value)
    code, _, out = cli("rules", "packs", "--rules", str(pack))
    assert code == 2 and words in out, out


def test_an_empty_changelog_is_no_release(tmp_path: Path) -> None:
    """`changelog: []` was an IndexError traceback in every command loading the pack."""
    pack = copy_pack("sg-guidance", tmp_path)
    edit_meta(pack, changelog=[])
    loaded = load_pack(pack)
    assert loaded.changelog == () and loaded.released is None
    code, _, err = cli("rules", "packs", "--rules", str(pack))
    assert code == 0, err


def test_a_digest_in_capitals_is_the_same_digest(tmp_path: Path) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    digest = load_pack(pack).policy_digest
    edit_meta(pack, version="9", changelog=[release(digest=digest.upper())])
    loaded = load_pack(pack)
    assert loaded.changelog[0].digest == digest and loaded.released is True


@pytest.mark.parametrize("bidi", ["\u202e", "\u2066", "\u2069", "\u202a"])
def test_a_policy_file_with_a_bidi_control_is_refused(tmp_path: Path, bidi: str) -> None:
    """A comment holding U+202E (RIGHT-TO-LEFT OVERRIDE) showed a reviewer other code than Cedar
    evaluates ("Trojan Source", CVE-2021-42574); it loaded. Cedar strings write it \\u{202e}."""
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "advisory.cedar"
    text = f.read_text()
    f.write_text(text.replace("when {", f"when {{ // {bidi} }} && false {bidi}\n", 1))
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2, err
    assert "control character" in err and "advisory.cedar:" in err, err


def test_two_packs_of_one_name_in_one_directory_are_refused(tmp_path: Path) -> None:
    """Two versions side by side under one --rules directory: the folder that sorted last
    replaced the other without a word."""
    root = tmp_path / "packs"
    root.mkdir()
    old = copy_pack("sg-guidance", root)
    shutil.copytree(old, root / "sg-guidance-new")
    with pytest.raises(PackError) as err:
        load_packs([root])
    assert "sg-guidance" in str(err.value) and "which one" in str(err.value)
    code, _, out = cli("rules", "list", "--rules", str(root))
    assert code == 2 and "which one" in out, out


def test_a_later_directory_still_replaces_a_pack(tmp_path: Path) -> None:
    """Across directories the documented order holds: the later one replaces the earlier."""
    first, second = tmp_path / "a", tmp_path / "b"
    copy_pack("sg-guidance", first)
    edit_meta(copy_pack("sg-guidance", second), version="9", changelog=[release()])
    packs = {p.name: p for p in load_packs([first, second])}
    assert packs["sg-guidance"].version == "9"


@pytest.mark.parametrize("request_", ["[1, 2]", "just text", "7"])
def test_a_case_request_that_is_no_mapping_is_a_named_error(tmp_path: Path, request_: str) -> None:
    """A case's `request` as a list or text was an AttributeError traceback in `rules test`."""
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "cases" / "advisory.yaml").write_text(
        f"cases: [{{name: x, request: {request_}, expect: {{decision: allow}}}}]\n"
    )
    code, _, err = cli("rules", "test", "sg-guidance", "--rules", str(pack))
    assert code == 2 and "`request` is" in err and "advisory.yaml" in err, err


def test_a_misspelt_not_rules_id_fails_the_case(tmp_path: Path) -> None:
    """`not_rules: [sg-advisory-2O25]` (a letter O) never applies, so the case passed whatever
    the rule did; `rules:` already refused an unknown id."""
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "cases" / "advisory.yaml"
    doc = yaml.safe_load(f.read_text())
    doc["cases"][0]["expect"]["not_rules"] = ["sg-advisory-2O25"]
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = cli("rules", "test", "sg-guidance", "--rules", str(pack), "--json")
    assert code == 1

    failed = [c for c in json.loads(out)["cases"] if not c["ok"]]
    assert [c["problems"] for c in failed] == [["rule 'sg-advisory-2O25' does not exist"]]


@pytest.mark.parametrize(
    ("groups", "cycle"),
    [
        (
            "g1: {source: x, confidence: V, includes: [g2], members: [SG]}\n"
            "g2: {source: x, confidence: V, includes: [g1]}\n",
            "g1 -> g2 -> g1",
        ),
        ("g3: {source: x, confidence: V, includes: [g3]}\n", "g3 -> g3"),
        (
            "a: {source: x, confidence: V, includes: [b, c]}\n"
            "b: {source: x, confidence: V, members: [SG]}\n"
            "c: {source: x, confidence: V, includes: [d]}\n"
            "d: {source: x, confidence: V, includes: [b, c]}\n",
            "c -> d -> c",
        ),
    ],
)
def test_groups_including_each_other_are_a_named_error(
    tmp_path: Path, groups: str, cycle: str
) -> None:
    """A circle of `includes` was Cedar's 'transitive closure' error, a traceback in every
    command loading the pack."""
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "groups.yaml").write_text(groups)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2, err
    assert cycle in err and str(pack / "groups.yaml") in err, err


def test_groups_sharing_an_include_are_no_circle(tmp_path: Path) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "groups.yaml").write_text(
        "a: {source: x, confidence: V, includes: [b, c]}\n"
        "b: {source: x, confidence: V, includes: [c]}\n"
        "c: {source: x, confidence: V, members: [SG]}\n"
    )
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 0, err


def boundary_table(date: str) -> str:
    head = (builtin_cases("sg-guidance") / "advisory.yaml").read_text().split("cases:")[0]
    return (
        f"{head}cases: []\nboundaries: [{{name: b, rules: [sg-advisory-2025], date: {date}, "
        "before: {decision: allow}, after: {decision: allow}}]\n"
    )


def builtin_cases(pack: str) -> Path:
    from straits.rules.pack_loader import builtin_packs_dir

    return builtin_packs_dir() / pack / "cases"


def test_a_boundary_outside_the_planning_dates_is_a_named_error(tmp_path: Path) -> None:
    """The day before a boundary on 0001-01-01 was an OverflowError traceback."""
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "cases" / "advisory.yaml").write_text(boundary_table("0001-01-01"))
    code, _, err = cli("rules", "test", "sg-guidance", "--rules", str(pack))
    assert code == 2 and "outside the dates" in err and "boundaries[0]" in err, err


def test_a_rule_in_force_to_the_last_day_there_is_has_no_day_after(tmp_path: Path) -> None:
    """@effective_until("9999-12-31") named by a boundary: the day it stops applying was an
    OverflowError traceback; it neither starts nor stops on the boundary's date."""
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "advisory.cedar"
    f.write_text(
        f.read_text()
        .replace(
            '@effective_from("2025-04-01")',
            '@effective_from("2025-04-01")\n@effective_until("9999-12-31")',
        )
        .replace(  # the condition says it too, or the pack is refused (test_hostile_rule_dates)
            'context.date >= datetime("2025-04-01")',
            'context.date >= datetime("2025-04-01") && context.date <= datetime("9999-12-31")',
        )
    )
    (pack / "cases" / "advisory.yaml").write_text(boundary_table("2030-01-01"))
    code, out, _ = cli("rules", "test", "sg-guidance", "--rules", str(pack), "--json")
    assert code == 1
    problems = [p for c in json.loads(out)["cases"] for p in c["problems"]]
    assert any("neither starts nor stops applying on 2030-01-01" in p for p in problems)


def add_policy(pack: Path, condition: str) -> None:
    f = pack / "advisory.cedar"
    f.write_text(
        f.read_text()
        + '\n@id("sg-long")\n@title("t")\n@citation("c")\n@confidence("M")\n@effect("note")\n'
        + '@effective_from("2025-04-01")\n@reason("r")\npermit (principal, action, resource)\n'
        + f"when {{ {condition} }};\n"
    )


def test_coverage_of_a_long_condition_is_measured(tmp_path: Path) -> None:
    """A condition of 60 `||` terms (or 300 conditions) loaded and decided, but `rules test` was
    a traceback: its probes went to Cedar as JSON nested deeper than Cedar reads (128)."""
    pack = copy_pack("sg-guidance", tmp_path)
    ors = " || ".join(f"context.quantity == {i}" for i in range(60, 0, -1))
    ands = " && ".join(f"context.quantity != {i}" for i in range(1000, 1300))
    add_policy(pack, f'context.date >= datetime("2025-04-01") && ({ors}) && {ands}')
    code, out, err = cli("rules", "test", "sg-guidance", "--rules", str(pack), "--json")
    assert code == 1, err  # the new policy applies in no case: every case buys 64 chips
    report = json.loads(out)["coverage"]
    (long,) = [p for p in report["packs"][0]["policies"] if p["rule"] == "sg-long"]
    assert len(long["conditions"]) == 302
    # the date lets cases through, the `||` of quantities 1..60 stops every one of them
    date, listed = long["conditions"][:2]
    assert date["passed"] > 0 and listed["passed"] == 0
    assert listed["stopped"] == date["passed"]


def test_a_condition_too_deep_to_load_is_a_named_error(tmp_path: Path) -> None:
    """600 `||` terms: Python's JSON reader gave up on Cedar's form of the policy (a
    RecursionError traceback in every command loading the pack)."""
    pack = copy_pack("sg-guidance", tmp_path)
    add_policy(pack, " || ".join(f"context.quantity == {i}" for i in range(600)))
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and "nests too deeply" in err and "advisory.cedar:" in err, err


def test_balancing_keeps_the_operands_in_order() -> None:
    from straits.rules.est import _chain, balanced, conjoin

    terms = [{"Value": i} for i in range(100)]
    tree = balanced(conjoin(terms))
    assert _chain(tree, "&&") == terms

    def depth(node: object) -> int:
        if isinstance(node, dict):
            return 1 + max((depth(v) for v in node.values()), default=0)
        return 0

    assert depth(tree) <= 2 * 7 + 2
    nested = {"!": {"arg": {"||": {"left": conjoin(terms[:3]), "right": {"Value": 9}}}}}
    assert balanced(nested) == {
        "!": {"arg": {"||": {"left": balanced(conjoin(terms[:3])), "right": {"Value": 9}}}}
    }


def test_coverage_names_every_scope_and_unless_once(tmp_path: Path) -> None:
    """`principal is T` was shown as `principal is ...`, and an `unless` condition as
    `unless unless { ... }`."""
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "advisory.cedar"
    f.write_text(
        f.read_text().replace("permit (principal,", "permit (principal is Straits::Tenant,")
        + '\n@id("sg-unless")\n@title("t")\n@citation("c")\n@confidence("M")\n@effect("note")\n'
        '@effective_from("2025-04-01")\n@reason("r")\npermit (principal, action, resource)\n'
        'when { context.date >= datetime("2025-04-01") }\n'
        'unless { context.site.country == Straits::Country::"US" };\n'
    )
    code, out, err = cli("rules", "test", "sg-guidance", "--rules", str(pack), "--coverage")
    assert code in (0, 1), err
    assert "principal is Straits::Tenant, action == Straits::Action::" in out, out
    assert "unless unless" not in out
    assert '. unless { context.site.country == Straits::Country::"US" }' in out, out


def test_rules_list_of_a_misspelt_pack_is_an_error() -> None:
    """`rules list --pack us-eer` listed no rule, exit 0: as if nothing were in force."""
    code, _, err = cli("rules", "list", "--pack", "us-ear", "--pack", "us-eer")
    assert code == 2 and "'us-eer'" in err and "us-ear-diffusion" in err, err
    code, out, err = cli("rules", "list", "--pack", "us-ear", "--json")
    assert code == 0 and {r["pack"] for r in json.loads(out)} == {"us-ear"}, err


def test_two_cases_of_one_name_are_refused(tmp_path: Path) -> None:
    """A case copied and edited under the same name: a failure named either one."""
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "cases" / "advisory.yaml"
    doc = yaml.safe_load(f.read_text())
    (pack / "cases" / "more.yaml").write_text(
        yaml.safe_dump({"defaults": doc["defaults"], "cases": doc["cases"][:1]})
    )
    code, _, err = cli("rules", "test", "sg-guidance", "--rules", str(pack))
    assert code == 2 and "named twice" in err and "advisory.yaml" in err, err


@pytest.mark.parametrize(
    ("line", "words"),
    [
        # explicit tags on text they cannot hold: ValueError / KeyError tracebacks from PyYAML
        ("x: !!int zz", "not an integer"),
        ("x: !!bool maybe", "not true or false"),
        ("x: !!float .", "not a number"),
        # a day that does not exist, read as a date by PyYAML (packs keep dates as dates)
        ("x: !!timestamp 2025-13-45", "month must be in"),
    ],
)
def test_a_tag_its_text_cannot_hold_is_a_named_error(tmp_path: Path, line: str, words: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    groups = pack / "pack.yaml"
    groups.write_text(groups.read_text() + line + "\n")
    with pytest.raises(PackError) as err:
        load_pack(pack)
    assert words in str(err.value) and "pack.yaml" in str(err.value)
    code, _, out = cli("rules", "packs", "--rules", str(pack))
    assert code == 2 and words in out and "Traceback" not in out, out


def test_a_rule_cedar_cannot_evaluate_is_named_by_its_id_and_line(tmp_path: Path) -> None:
    """Cedar stops on an integer overflow; the error named `policy1`, Cedar's positional id,
    which no pack holds, instead of the rule and where it is written."""
    pack = copy_pack("sg-guidance", tmp_path)
    add_policy(
        pack, 'context.date >= datetime("2025-04-01") && context.quantity * 100000000000000000 > 0'
    )
    request = {
        "date": "2025-06-01",
        "action": "procure",
        "quantity": 2048,
        "chip": "H100-SXM",
        "tenant": {"hq": "US"},
        "site": {"country": "SG", "operator_hq": "SG"},
    }
    f = tmp_path / "req.json"
    f.write_text(json.dumps(request))
    code, _, err = cli("check", "--rules", str(pack), str(f))
    assert code == 2, err
    assert "`sg-long` (" in err and "advisory.cedar:" in err and "`policy" not in err, err


CRASHED_CEDAR = {
    "1,000 nested parentheses": "(" * 1000 + "context.quantity == 1" + ")" * 1000,
    "20,000 chained &&": " && ".join(["true"] * 20_000),
    "6,000 nested if": "if true then " * 6000 + "true" + " else true" * 6000,
    "20,000 member accesses": "context" + ".quantity" * 20_000 + " == 1",
}


@pytest.mark.parametrize("condition", CRASHED_CEDAR.values(), ids=list(CRASHED_CEDAR))
def test_a_policy_cedar_cannot_parse_without_crashing_is_a_named_error(
    tmp_path: Path, condition: str
) -> None:
    """Each of these killed the process inside cedarpy's parser (SIGSEGV, exit 139, no
    message): run as a process of its own, so a crash fails this test and not the suite."""
    import os
    import subprocess
    import sys

    pack = copy_pack("sg-guidance", tmp_path)
    add_policy(pack, condition)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    run = subprocess.run(
        [sys.executable, "-m", "straits", "rules", "list", "--rules", str(pack)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert "nests" in run.stderr and "advisory.cedar:" in run.stderr, run.stderr[-2000:]


def test_brackets_and_operators_in_strings_and_comments_are_not_counted() -> None:
    from straits.rules.cedar import MAX_DEPTH, MAX_OPERATORS, CedarSyntaxError, _shallow

    deep, many = "(" * (MAX_DEPTH + 1), "&&" * (MAX_OPERATORS + 1)
    _shallow(f'permit (principal, action, resource) when {{ "{deep}{many}" == "a" }}; // {deep}')
    _shallow(f"permit (principal, action, resource) when {{ {'true && ' * 300}true }};\n" * 10)
    for text in (deep, f"permit (principal, action, resource) when {{ {many} }};"):
        with pytest.raises(CedarSyntaxError, match="nests"):
            _shallow(text)
