"""Rule packs whose dates said one thing and decided another, found by the hostile pass atk40:
a boundary inside a day, and annotations that disagree with the condition's dates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from straits.errors import PackError
from straits.rules.pack_loader import load_pack
from test_pack_versions import cli, copy_pack

H20_REQUEST = {
    "action": "procure",
    "quantity": 1,
    "chip": "H20",
    "tenant": {"hq": "SG"},
    "site": {"country": "SG", "operator_hq": "SG"},
}


def team_rule(pack: Path, condition: str, window: str = '@effective_from("2025-04-10")') -> None:
    f = pack / "advisory.cedar"
    f.write_text(
        f.read_text()
        + '\n@id("team-h20")\n@title("Team: no H20")\n@citation("Team policy 9")\n'
        + f'@confidence("V")\n@effect("deny")\n{window}\n@reason("no H20")\n'
        + "permit (principal, action, resource)\n"
        + f'when {{ context has chip && context.chip.id == "H20" && {condition} }};\n'
    )


@pytest.mark.parametrize(
    "literal", ["2025-04-09T23:00:00-0800", "2025-04-09T12:00:00Z", "2025-04-10T00:00:00Z"]
)
def test_a_datetime_that_is_not_a_day_is_refused(tmp_path: Path, literal: str) -> None:
    """`context.date >= datetime("2025-04-09T23:00:00-0800")` (2025-04-10 07:00 UTC) loaded;
    the cache keys read the literal as 2025-04-09, so 2025-04-10 (not yet: allow) and
    2025-04-11 (deny) shared a key, and each got the answer of whichever was asked first."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f'context.date >= datetime("{literal}")')
    with pytest.raises(PackError, match="is not a day"):
        load_pack(pack)
    days = [{**H20_REQUEST, "date": d} for d in ("2025-04-10", "2025-04-11")]
    stdin = tmp_path / "req.json"
    stdin.write_text(json.dumps(days))
    code, _, err = cli("check", "--rules", str(pack), "--json", str(stdin))
    assert code == 2 and "advisory.cedar:" in err, err
