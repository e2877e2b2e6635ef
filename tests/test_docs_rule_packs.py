"""docs/rule-packs.md names what the loader accepts: the example policy's annotations are every
annotation a policy may carry, and the list of `{placeholders}` is the loader's; the coverage
figure it quotes is the shipped packs'."""

from __future__ import annotations

import re
from pathlib import Path

from straits.rules.pack_loader import ANNOTATIONS, PLACEHOLDERS

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "rule-packs.md").read_text(encoding="utf-8")


def test_the_example_policy_shows_every_annotation() -> None:
    example = PAGE.split("## A rule", 1)[1].split("```cedar\n", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"^@(\w+)\(", example, flags=re.M)) == set(ANNOTATIONS)


def test_the_placeholders_are_the_loaders() -> None:
    item = PAGE.split("- **Reasons**", 1)[1].split("\n- ", 1)[0]
    listed = re.findall(r"`(\w+)`", item.split("filled from the request:", 1)[1])
    assert listed == list(PLACEHOLDERS)


def test_the_quoted_condition_coverage_is_the_shipped_packs() -> None:
    from straits.rules import ruleset
    from straits.rules.cases import run_cases
    from straits.rules.coverage import coverage

    rules = ruleset()
    report = coverage(rules, run_cases(rules))
    m = re.search(r"cover every policy and ([\d.]+)% of\s+conditions", PAGE)
    assert m is not None
    assert report.policy_pct == 100.0
    assert f"{report.condition_pct:.1f}" == m.group(1)


def test_the_example_policy_loads_as_a_pack_of_its_own(tmp_path: Path) -> None:
    """The page's example is a policy a user can copy: beside the shipped packs it loads (its
    id unique across them, its `@effective_until` the last day its condition allows; rev51
    found both wrong)."""
    import yaml

    from straits.rules import ruleset
    from straits.rules.pack_loader import builtin_packs_dir

    example = PAGE.split("## A rule", 1)[1].split("```cedar\n", 1)[1].split("```", 1)[0]
    pack = tmp_path / "team-data"
    pack.mkdir()
    meta = yaml.safe_load((builtin_packs_dir() / "cn-data" / "pack.yaml").read_text())
    meta["name"] = "team-data"
    (pack / "pack.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (pack / "team.cedar").write_text(example, encoding="utf-8")
    (rule_id,) = re.findall(r'^@id\("([^"]+)"\)', example, flags=re.M)
    rules = ruleset(tmp_path)
    assert rule_id in {r.id for r in rules.rules}
