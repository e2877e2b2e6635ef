"""A user pack's annotations as written by hand (pack51): an annotation of blanks only passed
as present, so a rule without a citation (the docs require one) or a title was listed,
recorded and shown with an empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.errors import PackError
from straits.rules.pack_loader import load_pack
from test_hostile_rule_dates import team_rule
from test_pack_versions import cli, copy_pack

START = 'context.date >= datetime("2025-04-10")'


@pytest.mark.parametrize(
    ("annotation", "blank"),
    [
        ('@citation("Team policy 9")', '@citation("   ")'),
        ('@title("Team: no H20")', '@title("\\t")'),
        ('@reason("no H20")', '@reason(" \\n ")'),
    ],
)
def test_an_annotation_of_blanks_is_missing(tmp_path: Path, annotation: str, blank: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, START)
    f = pack / "advisory.cedar"
    assert annotation in f.read_text()
    f.write_text(f.read_text().replace(annotation, blank))
    name = annotation.split("(")[0]
    with pytest.raises(PackError, match=f"lacks annotation.*{name}") as exc:
        load_pack(pack)
    assert "advisory.cedar:" in str(exc.value)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and name in err, err


@pytest.mark.parametrize(
    ("annotation", "name"),
    [('@reason("no H20")', "@reason"), ('@title("Team: no H20")', "@title")],
)
def test_an_annotation_of_megabytes_is_refused(tmp_path: Path, annotation: str, name: str) -> None:
    """A 3 MB `@reason` loaded: every decision citing the rule carried it, and one `check
    --record` of two requests wrote an 8 MB ledger entry."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, START)
    f = pack / "advisory.cedar"
    f.write_text(f.read_text().replace(annotation, f'{name}("{"x" * 3_000_000}")'))
    with pytest.raises(PackError, match=f"{name} is 3,000,000 characters") as exc:
        load_pack(pack)
    assert "advisory.cedar:" in str(exc.value)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and name in err and len(err) < 1000, err[:300]


def test_pack_text_at_the_limit_loads(tmp_path: Path) -> None:
    from straits.rules.pack_meta import MAX_TEXT

    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, START)
    f = pack / "advisory.cedar"
    f.write_text(f.read_text().replace('@reason("no H20")', f'@reason("{"x" * MAX_TEXT}")'))
    assert any(r.id == "team-h20" and len(r.reason) == MAX_TEXT for r in load_pack(pack).rules)


def _stray_pack(tmp_path: Path, where: str) -> Path:
    """A rules directory of two packs, with the team's deny rule written where it is not read."""
    rules = tmp_path / "rules"
    pack = copy_pack("sg-guidance", rules)
    team_rule(pack, START)
    text = (pack / "advisory.cedar").read_text()
    team = text[text.index('@id("team-h20")') :]
    (pack / "advisory.cedar").write_text(text[: text.index('@id("team-h20")')])
    other = copy_pack("my-sta", rules)
    target = {"pack.yml": other, "Cedar": pack, "sub": pack / "extra"}[where]
    if where == "pack.yml":
        (other / "pack.yaml").rename(other / "pack.yml")
        (other / "team.cedar").write_text(team)
    elif where == "Cedar":
        (pack / "team.Cedar").write_text(team)
    else:
        target.mkdir()
        (target / "team.cedar").write_text(team)
    return rules


@pytest.mark.parametrize("where", ["pack.yml", "Cedar", "sub"])
def test_a_policy_file_the_loader_skips_is_refused(tmp_path: Path, where: str) -> None:
    """A pack folder whose pack.yaml is named pack.yml, a `team.Cedar`, a `*.cedar` in a
    subfolder: each was skipped without a word, and the H20 purchase its rule denies allowed."""
    import json

    from test_hostile_rule_dates import H20_REQUEST

    rules = _stray_pack(tmp_path, where)
    req = tmp_path / "req.json"
    req.write_text(json.dumps({**H20_REQUEST, "date": "2025-06-01"}))
    code, out, err = cli("check", "--rules", str(rules), "--json", str(req))
    assert code == 2 and "would not be loaded" in err and str(rules) in err, out
