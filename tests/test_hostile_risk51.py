"""risk51: a plan's risk (`--risk`, the scenario's `risk`) through every shell that shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from straits.cli import app


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def docs(example_path: Path) -> dict[str, dict[str, Any]]:
    """The example's greedy plan at p50 and at p90, as `plan --json` prints them."""
    out = {}
    for risk in ("p50", "p90"):
        r = _invoke("plan", str(example_path), "--solver", "greedy", "--risk", risk, "--json")
        assert r.exit_code == 0, r.output
        out[risk] = json.loads(r.stdout)
    return out


def _as_new(doc: dict[str, Any], tmp_path: Path, **edits: Any) -> Path:
    """``doc`` edited as a new plan (its `id` and `digest` deleted, as the error asks)."""
    new = {k: v for k, v in doc.items() if k not in ("id", "digest")}
    new.update(edits)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(new))
    return path


SHELLS = [
    ("show", ["plan", "{doc}", "--show"]),
    ("report", ["report", "{doc}", "-o", "{tmp}/r.html"]),
    ("export", ["export", "{doc}", "--to", "slurm", "-o", "{tmp}/ex"]),
]


@pytest.mark.parametrize(("made", "said"), [("p50", "p90"), ("p90", "p50")])
@pytest.mark.parametrize(("shell", "argv"), SHELLS, ids=[s for s, _ in SHELLS])
def test_a_plan_edited_to_another_risk_is_refused(
    docs: dict[str, dict[str, Any]],
    tmp_path: Path,
    made: str,
    said: str,
    shell: str,
    argv: list[str],
) -> None:
    """A p50 plan edited to say `risk: p90` (its id and digest deleted) was shown as "training
    at p90 (the estimates' high end)" over its central figures, and a p90 plan edited to p50
    carried the recorded p90 plan's id; the risk is its scenario's, as the date and regime."""
    path = _as_new(docs[made], tmp_path, risk=said)
    r = _invoke(*(a.format(doc=path, tmp=tmp_path) for a in argv))
    assert r.exit_code == 2, r.output
    assert f"{path}: risk: " in r.output
    # as printed (only id and digest gone) it is read
    ok = _as_new(docs[made], tmp_path)
    assert _invoke(*(a.format(doc=ok, tmp=tmp_path) for a in argv)).exit_code == 0
