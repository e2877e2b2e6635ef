"""A market model the estimator says fits no cluster of a chip is noted, not used silently."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from straits.market import simulate
from straits.market.loading import shipped_raw, validate

HUGE = {"params": 9.0e13, "layers": 80, "d_model": 8192, "heads": 64, "seq_len": 8192}


def test_a_train_model_no_ascend_cluster_holds_is_noted() -> None:
    raw = copy.deepcopy(shipped_raw())
    raw["models"]["train"] = dict(HUGE)
    doc = simulate(validate(raw, "huge"), firms=30).to_json()
    notes = doc["notes"]
    assert len(notes) == 1
    assert "models.train" in notes[0] and "Ascend-910B" in notes[0]


def test_the_shipped_market_has_no_notes() -> None:
    assert "notes" not in simulate(validate(shipped_raw(), "shipped"), firms=30).to_json()


def test_the_cli_says_it_and_exits_0(tmp_path: Path) -> None:
    f = tmp_path / "huge.yaml"
    f.write_text("extends: shipped\nname: huge\nmodels:\n  train: " + json.dumps(HUGE) + "\n")
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "straits", "market", str(f), "--firms", "30"]
    table = subprocess.run(run, capture_output=True, text=True, timeout=600, env=env)
    assert table.returncode == 0, table.stderr
    assert "note:" in table.stdout and "models.train" in table.stdout
    js = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert js.returncode == 0, js.stderr
    assert any("Ascend-910B" in n for n in json.loads(js.stdout)["notes"])
    page = tmp_path / "m.html"
    html = subprocess.run(
        [*run, "-o", str(page)], capture_output=True, text=True, timeout=600, env=env
    )
    assert html.returncode == 0, html.stderr
    assert "fits no cluster of Ascend-910B" in page.read_text()
