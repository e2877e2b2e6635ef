"""Pack versions: changelogs, released digests, and `rules diff` between two versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
import yaml
from click.testing import CliRunner

from straits.errors import PackError
from straits.rules import ruleset
from straits.rules.pack_loader import builtin_packs_dir, load_pack
from straits.rules.versions import EFFECT_ASPECTS, diff_packs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rule-packs" / "h20-letter"


def cli(*args: str) -> tuple[int, str, str]:
    from straits.cli import app

    res = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.parametrize("pack", ruleset().packs, ids=lambda p: p.name)
def test_every_shipped_pack_is_a_released_version(pack) -> None:  # type: ignore[no-untyped-def]
    """The newest changelog entry is the pack's version and records the policies as they are:
    a policy edited without a new version and changelog entry fails here."""
    assert pack.changelog and pack.changelog[0].version == pack.version
    assert pack.released is True, (
        f"{pack.name}'s policies changed since {pack.version}: bump `version`, add a changelog "
        f"entry with digest {pack.policy_digest}"
    )
    assert all(r.changes for r in pack.changelog)


def copy_pack(name: str, dest: Path) -> Path:
    out = dest / name
    shutil.copytree(builtin_packs_dir() / name, out)
    return out


def edit_meta(pack: Path, **changes: object) -> None:
    meta = yaml.safe_load((pack / "pack.yaml").read_text())
    meta.update(changes)
    (pack / "pack.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.mark.parametrize(
    ("changelog", "words"),
    [
        ("not a list", "must be a list"),
        ([{"version": "9", "date": "2026-01-01"}], "non-empty list of sentences"),
        ([{"version": "9", "date": "2026-13-01", "changes": ["x"]}], "not an ISO date"),
        ([{"version": "8", "date": "2026-01-01", "changes": ["x"]}], "newest changelog entry is"),
        (
            [
                {"version": "9", "date": "2026-01-01", "changes": ["x"]},
                {"version": "9", "date": "2025-01-01", "changes": ["y"]},
            ],
            "appears twice",
        ),
        (
            [
                {"version": "9", "date": "2025-01-01", "changes": ["x"]},
                {"version": "8", "date": "2026-01-01", "changes": ["y"]},
            ],
            "newest first",
        ),
        ([{"version": "9", "date": "2026-01-01", "changes": ["x"], "digest": "abc"}], "64-hex"),
        # printed by `rules packs` and `rules diff --packs`
        ([{"version": "9", "date": "2026-01-01", "changes": ["\x1b[2Jx"]}], "control character"),
    ],
)
def test_a_bad_changelog_names_the_file(tmp_path: Path, changelog: object, words: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    edit_meta(pack, version="9", changelog=changelog)
    with pytest.raises(PackError) as err:
        load_pack(pack)
    assert words in str(err.value) and "pack.yaml" in str(err.value)


def test_an_edited_policy_is_an_unreleased_change(tmp_path: Path) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    assert load_pack(pack).released is True
    cedar = pack / "advisory.cedar"
    cedar.write_text(cedar.read_text().replace('"2025-04-01"', '"2025-04-02"'))
    assert load_pack(pack).released is False
    code, out, _ = cli("rules", "packs", "--rules", str(pack), "--json")
    assert code == 0
    assert {p["name"]: p["released"] for p in json.loads(out)}["sg-guidance"] is False


def test_diff_classifies_added_removed_and_changed_rules(tmp_path: Path) -> None:
    """A new version of us-ear that loosens one rule, drops one, rewords one, adds a group
    member: each change is named with the aspects that differ."""
    pack = copy_pack("us-ear", tmp_path)
    ac = pack / "advanced-computing.cedar"
    text = ac.read_text()
    text = text.replace(
        '@presumption("denial")\n@effective_from("2023-11-17")\n@reason("A party',
        '@presumption("approval")\n@effective_from("2023-11-17")\n@reason("A party',
        1,
    )
    text = text.replace("Renting {chip} capacity", "Renting {chip} compute capacity")
    ac.write_text(text)
    h20 = pack / "h20.cedar"
    h20.write_text(h20.read_text().split('\n\n@id("us-ear-2025-h20-licensed")')[0])
    groups = yaml.safe_load((pack / "groups.yaml").read_text())
    assert "TH" not in groups["ear-d1"]["members"]
    groups["ear-d1"]["members"].append("TH")
    (pack / "groups.yaml").write_text(yaml.safe_dump(groups))
    d = diff_packs(ruleset().packs, ruleset((pack,)).packs)
    by_rule = {c.rule.id: c for c in d.rules}
    # the rules testing ear-d1 (or a group including it) change with its new member
    by_group = {rid: c for rid, c in by_rule.items() if c.aspects == ("groups",)}
    assert by_group and all(c.in_effect for c in by_group.values())
    assert all(any("+TH" in x for x in c.details()) for c in by_group.values())
    assert set(by_rule) - set(by_group) == {
        "us-ear-2023-headquarters",
        "us-ear-remote-access",
        "us-ear-2025-h20-licensed",
    }
    hq = by_rule["us-ear-2023-headquarters"]
    assert (hq.kind, hq.aspects, hq.in_effect) == ("changed", ("presumption",), True)
    assert hq.details() == ["presumption denial -> approval"]
    note = by_rule["us-ear-remote-access"]
    assert (note.kind, note.aspects, note.in_effect) == ("changed", ("reason",), False)
    assert by_rule["us-ear-2025-h20-licensed"].kind == "removed"
    [g] = [g for p in d.packs for g in p.groups]
    assert g.group == "ear-d1" and len(g.added) == 1 and g.removed == ()
    assert set(EFFECT_ASPECTS) >= {"condition", "window", "presumption"}


def test_diff_of_the_worked_example_is_the_h20_rule_and_its_release() -> None:
    code, out, err = cli(
        "rules",
        "diff",
        "--base",
        str(EXAMPLE / "before"),
        "--packs",
        str(EXAMPLE / "after"),
        "--json",
    )
    assert code == 0, err
    d = json.loads(out)
    assert (d["added"], d["removed"], d["changed_in_effect"]) == (1, 0, 0)
    [pack] = d["packs"]
    assert (pack["pack"], pack["before"], pack["after"]) == ("us-ear", "2025.03", "2025.04.09")
    assert [r["rule"] for r in pack["rules"]] == ["us-ear-2025-h20"]
    assert [r["version"] for r in pack["releases"]] == ["2025.04.09"]
    assert [(g["group"], g["change"]) for g in pack["groups"]] == [
        ("ear-h20-destinations", "added")
    ]
    code, text, _ = cli(
        "rules", "diff", "--base", str(EXAMPLE / "before"), "--packs", str(EXAMPLE / "after")
    )
    assert "+ us-ear-2025-h20" in text and "2025.03 -> 2025.04.09" in text


def test_the_worked_example_packs_pass_their_tables() -> None:
    for version in ("before", "after"):
        code, out, _ = cli("rules", "test", "us-ear", "--rules", str(EXAMPLE / version), "--json")
        assert code == 0, out
        assert json.loads(out)["coverage"]["policy_coverage"] == 100.0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("rules", "diff"), "give a date"),
        (("rules", "diff", "2025-01-01", "--packs", "x"), "not both"),
        (("rules", "diff", "--base", "x"), "--packs"),
    ],
)
def test_diff_bad_arguments(args: tuple[str, ...], words: str) -> None:
    code, _, err = cli(*args)
    assert code == 2 and words in err


# --- hostile pack files: a clear error naming the file, never a traceback or a blow-up ---------
BOMB = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} ["
    + ",".join([f"*{chr(96 + i)}"] * 9 if i else ['"x"'] * 9)
    + "]\n"
    for i in range(10)
)


@pytest.mark.parametrize(
    ("file", "content", "words"),
    [
        ("advisory.cedar", b"\xc1\xff\x00 binary", "not UTF-8 text"),
        ("pack.yaml", b"\xff\xfe\x00", "not UTF-8 text"),
        ("cases/advisory.yaml", b"\x89PNG\r\n\x1a\n", "not UTF-8 text"),
        (
            "cases/advisory.yaml",
            ("cases: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
            "advisory.yaml:1: nested deeper",
        ),
        (
            "cases/advisory.yaml",
            (BOMB + "defaults: {site: *j}\ncases: []\n").encode(),
            "advisory.yaml:1: aliases expand",
        ),
        ("groups.yaml", b"x: " + b"y" * (9 * 1024 * 1024), "larger than any rule pack file"),
        (
            "cases/advisory.yaml",
            b"cases: [{name: x, expect: {decision: allow}}]\ndefaults: [1]\n",
            "`defaults` must be a mapping",
        ),
        # case and boundary names are printed by `rules test`
        (
            "cases/advisory.yaml",
            b'cases: [{name: "a \\e[2J case", expect: {decision: allow}}]\n',
            "control character",
        ),
        (
            "cases/advisory.yaml",
            b'cases: []\nboundaries: [{name: "a \\e[2J b", rules: [sg-advisory-2025], '
            b"date: 2025-04-01, before: {decision: allow}, after: {decision: allow}}]\n",
            "control character",
        ),
        # a key given twice: the second silently won (the group's members were the last list)
        (
            "groups.yaml",
            b"g1: {source: x, confidence: V, members: [SG]}\n"
            b"g1: {source: y, confidence: V, members: [CN]}\n",
            "groups.yaml:2: duplicate key",
        ),
        (
            "cases/advisory.yaml",
            b"cases: [{name: x, expect: {decision: allow}, expect: {decision: deny}}]\n",
            "duplicate key",
        ),
    ],
)
def test_hostile_pack_files_are_named_errors(
    tmp_path: Path, file: str, content: bytes, words: str
) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / file).write_bytes(content)
    code, _, err = cli("rules", "test", "sg-guidance", "--rules", str(pack))
    assert code == 2 and words in err and file.split("/")[-1] in err


#: (id, text replaced in sg-guidance's advisory.cedar, its replacement, words the error has):
#: policies that loaded before, each a lie or a traceback later
POLICY_EDITS = [
    # a misspelt annotation was ignored: the rule stayed in force in every listing
    (
        "unknown-annotation",
        "@reading(",
        '@effective_untill("2025-06-01")\n@reading(',
        "@effective_untill",
    ),
    ("until-before-from", "@reading(", '@effective_until("2025-01-01")\n@reading(', "before"),
    # `{0}` was an IndexError traceback when the rule applied; `{chip.__class__}` read
    # attributes of Python objects; a misspelt name rendered as '?'
    ("reason-positional", "{chip}", "{0}", "{0}"),
    ("reason-attribute", "{chip}", "{chip.__class__}", "chip.__class__"),
    ("reason-misspelt", "{tenant_hq}", "{tenant-hq}", "tenant-hq"),
    ("reason-conversion", "{chip}", "{chip!r}", "chip"),
    ("reason-unbalanced", "{chip}", "{chip", "@reason"),
    # ids are listed, recorded, and named on the command line
    ("id-shell", '@id("sg-advisory-2025")', '@id("sg advisory $(touch x)")', "@id"),
    ("id-newline", '@id("sg-advisory-2025")', '@id("sg\\nadvisory")', "@id"),
    # `rules show` printed it raw: the terminal cleared itself
    ("reason-escape", "Singapore warns", "\x1b[2JSingapore warns", "control character"),
    # ... and the policy's text, as written
    ("cedar-escape", '@id("sg', '// \x1b[2J\n@id("sg', "control character"),
]


@pytest.mark.parametrize("text", ["", "// truncated\n", "\n\n"])
def test_a_policy_file_with_no_policy_is_refused(tmp_path: Path, text: str) -> None:
    """An empty (truncated) policy file replaced the shipped pack of its name with no rule:
    `check` then allowed what the Singapore advisory warns about, saying nothing."""
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "advisory.cedar").write_text(text)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and "no policy" in err and "advisory.cedar" in err, err


@pytest.mark.parametrize("text", ["", "\n", "# nothing yet\n", "---\n"])
def test_an_empty_pack_yaml_is_refused(tmp_path: Path, text: str) -> None:
    """It replaced the shipped pack of its directory's name with one of version "0", no title
    and no jurisdiction, with no word said (a hostile-input review)."""
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / "pack.yaml").write_text(text)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and "pack.yaml is empty" in err and "pack.yaml" in err, err


def test_a_policy_file_with_windows_line_ends_loads(tmp_path: Path) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "advisory.cedar"
    f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 0, err


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [p[1:] for p in POLICY_EDITS],
    ids=[p[0] for p in POLICY_EDITS],
)
def test_hostile_policies_are_named_errors(tmp_path: Path, old: str, new: str, words: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    f = pack / "advisory.cedar"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2, err
    assert words in err and "advisory.cedar:" in err, err


#: (id, file, content, words the error has): groups and pack metadata of the wrong type
META_EDITS = [
    ("members-int", "groups.yaml", "g1: {source: x, confidence: V, members: 5}\n", "members"),
    ("members-text", "groups.yaml", "g1: {source: x, confidence: V, members: SG}\n", "members"),
    ("group-confidence", "groups.yaml", "g1: {source: x, confidence: Z, members: [SG]}\n", "Z"),
    (
        "group-title-escape",
        "groups.yaml",
        'g1: {title: "\\e[2J", source: x, confidence: V}\n',
        "title",
    ),
    (
        "includes-unknown",
        "groups.yaml",
        "g1: {source: x, confidence: V, includes: [nope]}\n",
        "nope",
    ),
]


@pytest.mark.parametrize(
    ("file", "content", "words"),
    [p[1:] for p in META_EDITS],
    ids=[p[0] for p in META_EDITS],
)
def test_hostile_groups_are_named_errors(
    tmp_path: Path, file: str, content: str, words: str
) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    (pack / file).write_text(content)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2, err
    # the file of the pack that holds it (an unknown include named the shipped pack's path)
    assert words in err and str(pack / file) in err, err


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        # YAML reads 1.10 as the number 1.1: the pack claimed a version it does not have
        ("version", "1.10", "version"),
        ("title", "{a: 1}", "title"),
        ("name", '"sg\\e[2J"', "name"),
        ("name", "[a, b]", "name"),
    ],
)
def test_pack_metadata_of_the_wrong_type_is_refused(
    tmp_path: Path, field: str, value: str, words: str
) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    meta = yaml.safe_load((pack / "pack.yaml").read_text())
    text = "\n".join(f"{k}: {json.dumps(v, default=str)}" for k, v in meta.items() if k != field)
    if field == "version":  # the changelog says the same, as YAML reads it
        text = text.replace(json.dumps(meta["version"]), value)
    (pack / "pack.yaml").write_text(f"{text}\n{field}: {value}\n")
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2, err
    assert words in err and "pack.yaml" in err, err


def test_every_placeholder_a_reason_may_use_has_a_value() -> None:
    """The names the loader allows in ``@reason`` are those the renderer fills."""
    from straits.model.request import CheckRequest
    from straits.rules.decision import template_values
    from straits.rules.pack_loader import PLACEHOLDERS
    from test_rules_engine import DESIGN_REQUEST

    req = CheckRequest.model_validate({**DESIGN_REQUEST, "action": "procure", "quantity": 8})
    values = template_values(req)
    assert [p for p in PLACEHOLDERS if values[p] == "?"] == []


def test_an_unknown_pack_name_is_quoted_in_the_error() -> None:
    """`rules test NAME` echoed an unknown NAME raw: an escape sequence in it reached the
    terminal."""
    code, _, err = cli("rules", "test", "x\x1b[2J")
    assert code == 2 and "\x1b" not in err and "'x\\x1b[2J'" in err, err


def test_a_group_member_changes_the_rules_that_test_it_in_every_pack(tmp_path: Path) -> None:
    """`ear-d5: +SG` alone was '0 changed in effect': the group was listed, the rules testing
    it (through ear-d5-macau, or the diffusion pack's groups including it) counted unchanged."""
    pack = copy_pack("us-ear", tmp_path)
    groups = yaml.safe_load((pack / "groups.yaml").read_text())
    groups["ear-d5"]["members"].append("SG")
    (pack / "groups.yaml").write_text(yaml.safe_dump(groups))
    code, out, err = cli("rules", "diff", "--packs", str(pack), "--json")
    assert code == 0, err
    d = json.loads(out)
    rules = {r["rule"]: r for p in d["packs"] for r in p["rules"]}
    assert d["changed_in_effect"] == len(rules) > 0
    assert "us-ear-2023-d5-destination" in rules
    assert any(r["pack"] == "us-ear-diffusion" for r in rules.values())
    assert all(r["aspects"] == ["groups"] and r["in_effect"] for r in rules.values())
    assert rules["us-ear-2023-d5-destination"]["details"] == ["members of ear-d5-macau: +SG"]
    # the version is the same on both sides: the diff says the new policies are unreleased
    us_ear = next(p for p in d["packs"] if p["pack"] == "us-ear")
    assert us_ear["before"] == us_ear["after"] and us_ear["released"] is False
    _, table, _ = cli("rules", "diff", "--packs", str(pack))
    assert "(unreleased changes)" in table
