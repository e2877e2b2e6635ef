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
