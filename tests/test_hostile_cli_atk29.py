"""A hostile pass (atk29) on the command line as a new user and an attacker runs it: serving
estimates at chips other than their target's, a sweep of a serving estimate, and numbers
written in other scripts' digits (objectives, settings in the environment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from straits.catalog import get_chip
from straits.cli import app
from straits.errors import InputError
from straits.estimate.serving import serving_plan
from straits.limits import env_number
from straits.model.scenario import ModelSpec
from straits.plan.objectives import objective

ROOT = Path(__file__).resolve().parents[1]
GQA_70B = {"params": 7e10, "layers": 80, "d_model": 8192, "heads": 64, "kv_heads": 8}
SERVE: dict[str, Any] = {
    "kind": "serve",
    "model": {**GQA_70B, "seq_len": 8192},
    "chip": "H100-SXM",
    "days": 30,
    "tokens_per_s": 50_000,
}


def _run(args: list[str], stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, input=stdin)
    return result.exit_code, result.output


# --- serving at chips other than the target's ---------------------------------------------------
@pytest.mark.parametrize("chips", [1, 3, 4, 5, 6, 7, 8, 9, 76, 77, 200])
def test_chips_serve_whole_replicas_only(chips: int) -> None:
    """6 chips of 4-chip replicas are one replica (as the export runs them): they were said to
    serve one and a half replicas' tokens."""
    sp = serving_plan(ModelSpec(**SERVE["model"]), get_chip("H100-SXM"), 50_000)
    assert sp.replica_chips == 4
    assert sp.held(chips) == chips // 4
    assert sp.served(chips) == (chips // 4) * sp.tokens_per_s_per_replica
    assert sp.served(chips) <= chips / 4 * sp.tokens_per_s_per_replica


@pytest.mark.parametrize("chips", [6, 8, 72, 76, 200])
def test_the_table_says_the_replicas_of_the_chips_it_is_for(chips: int) -> None:
    """`chips 8 (as asked)` stood beside `serving 19 replicas x 4 chips` (the target's): the
    table said 8 chips held 19 replicas."""
    code, out = _run(["estimate", "-"], json.dumps({**SERVE, "chips": chips}))
    assert code == 0, out
    row = next(line for line in out.splitlines() if "serving" in line)
    held = f"{chips // 4:,} replicas x 4 chips"
    assert held in row
    code, doc = _run(["estimate", "-", "-o", "json"], json.dumps({**SERVE, "chips": chips}))
    answer = json.loads(doc)
    target = answer["serving"]["replicas"]  # the JSON's are the target's (docs/contracts.md)
    assert answer["chips"] == chips and answer["serving"]["replica_chips"] == 4
    assert (f"target needs {target}" in row) == (chips != target * 4)


def test_a_serving_estimate_is_no_sweep(tmp_path: Path) -> None:
    """`--sweep chips` of a serving request printed 30.0 days and 0.0% MFU on every row (a
    serving stage holds its chips for its days): exit 2 naming --sweep, no chart written."""
    for extra in ([], ["-o", str(tmp_path / "s.html")], ["-o", "json"]):
        code, out = _run(["estimate", "-", "--sweep", "chips", *extra], json.dumps(SERVE))
        assert code == 2, out
        assert "--sweep" in out
    assert not (tmp_path / "s.html").exists()


# --- digits of other scripts ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "cost+\u0668\u0660*carbon",  # Arabic-Indic 80
        "cost+\u096e\u0966*carbon",  # Devanagari 80
        "cost+\uff18\uff10*carbon",  # fullwidth 80
        "cost+80*carbon+\u0661*time",
    ],
)
def test_an_objective_weight_is_written_in_ascii_digits(spec: str) -> None:
    """`cost+٨٠*carbon` was planned as cost+80*carbon: Python's \\d and float() read any
    script's digits. A weight is ASCII, as every other number Straits reads."""
    with pytest.raises(InputError):
        objective(spec)
    assert objective("cost+80*carbon").name == "cost+80*carbon"


@pytest.mark.parametrize("value", ["\u0661\u0666", "\uff11\uff16", "\u0967\u096c", "1\u0666"])
def test_a_number_in_the_environment_is_written_in_ascii_digits(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STRAITS_MAX_INPUT_BYTES=١٦ capped every file at 16 bytes."""
    monkeypatch.setenv("STRAITS_ATK29", value)
    with pytest.raises(InputError) as e:
        env_number("STRAITS_ATK29", 5.0, 1, 100, integer=True)
    assert e.value.path == "STRAITS_ATK29"
    monkeypatch.setenv("STRAITS_ATK29", " 16 ")
    assert env_number("STRAITS_ATK29", 5.0, 1, 100, integer=True) == 16
