"""`plan --solver greedy --seed N` is exit 2 naming --seed: the greedy baseline draws no random
numbers, yet the seed was taken, recorded in the document's options and changed the plan's id
(doc49's left-over). A plan document made by greedy and planned again with --seed is refused
too; CP-SAT and a frontier (searched by CP-SAT) read the seed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_cli_conventions import run

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml")


def _refused(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("error: --seed:"), r.stderr


def test_greedy_refuses_a_seed(tmp_path: Path) -> None:
    _refused(run("plan", EXAMPLE, "--solver", "greedy", "--seed", "5"))
    doc = run("plan", EXAMPLE, "--solver", "greedy", "-o", "json")
    assert doc.returncode == 0, doc.stderr
    assert json.loads(doc.stdout)["inputs"]["options"]["seed"] == 0
    path = tmp_path / "plan.json"
    path.write_text(doc.stdout)
    _refused(run("plan", str(path), "--seed", "5"))  # planned again by its own solver
    again = run("plan", str(path), "--seed", "5", "--solver", "cpsat", "-o", "json")
    assert again.returncode in (0, 3), again.stderr  # planned (3: a stage left unplaced)
    assert json.loads(again.stdout)["inputs"]["options"]["seed"] == 5


def test_greedy_refuses_a_seed_with_server() -> None:
    """With --server the refusal comes before any request (nothing listens on the port)."""
    _refused(
        run("--server", "http://127.0.0.1:9", "plan", EXAMPLE, "--solver", "greedy", "--seed", "5")
    )
