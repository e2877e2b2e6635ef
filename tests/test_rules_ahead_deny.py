"""A rule of a user's pack that denies, coming into force while a planned stage runs, is named in
the plan's notes as a licence requirement is (date51). `rules_ahead` asked again only on the
days a `requires` rule came into force ("only a requires rule can block"), so a team rule
`@effect("deny")` from 2025-04-10 left a stage on H20s from 2025-04-08 to 2025-04-17 in the
plan without a word, where `check` of that day answers deny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_hostile_rule_dates import team_rule
from test_pack_versions import cli, copy_pack

SCENARIO = {
    "straits": 1,
    "name": "ahead",
    "date": "2025-04-08",
    "tenants": [{"id": "t", "hq": "SG"}],
    "sites": [
        {
            "id": "s",
            "country": "SG",
            "operator_hq": "SG",
            "pools": [{"chip": "H20", "count": 256, "usd_per_chip_hour": 2.0}],
        }
    ],
    "datasets": [
        {
            "id": "d",
            "tokens": 1e10,
            "size_gb": 10,
            "located_at": "s",
            "origin": "SG",
            "classes": ["public"],
        }
    ],
    "workloads": [
        {
            "id": "w",
            "tenant": "t",
            "model": {
                "params": 7e9,
                "layers": 32,
                "d_model": 4096,
                "heads": 32,
                "kv_heads": 8,
                "seq_len": 4096,
            },
            "stages": [{"id": "ft", "kind": "finetune", "datasets": ["d"]}],
        }
    ],
}

# (the rule's effect, what the request must then hold)
EFFECTS = [("deny", ""), ("requires", '@requires("bis-license")\n')]


@pytest.mark.parametrize(("effect", "requires"), EFFECTS)
def test_a_blocking_rule_from_a_day_the_stage_runs_is_noted(
    tmp_path: Path, effect: str, requires: str
) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, 'context.date >= datetime("2025-04-10")')
    f = pack / "advisory.cedar"
    f.write_text(f.read_text().replace('@effect("deny")\n', f'@effect("{effect}")\n{requires}'))
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(SCENARIO))
    code, out, err = cli(
        "plan", str(scenario), "--solver", "greedy", "--rules", str(pack), "-o", "json"
    )
    assert code == 0, err
    plan = json.loads(out)
    [a] = plan["assignments"]
    assert a["start"] < "2025-04-10" < a["end"], a  # it runs on the rule's first day
    noted = [n for n in plan["notes"] if "team-h20" in n]
    assert len(noted) == 1 and "2025-04-10" in noted[0], plan["notes"]
