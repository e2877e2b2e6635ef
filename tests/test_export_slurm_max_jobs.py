"""A Slurm export whose chains need more jobs than the cluster holds at once is refused.

``submit.sh`` submits every job of the plan up front; a long stage under a short MaxTime is a
chain of thousands of jobs, and sbatch refuses the one past the cluster's ``MaxJobCount`` half
way through the submission. The export says so first (exit 2, the field to change, nothing
written), and a site that states a larger ``max_jobs`` is exported as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.export.slurm import chain

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"


def _straits(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())  # type: ignore[no-any-return]


def _with(doc: dict[str, Any], **slurm: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc, default=str))
    for site in doc["sites"]:
        s = (site.get("targets") or {}).get("slurm")
        if s is not None:
            s.update(slurm)
    return doc


@pytest.mark.parametrize(
    ("slurm", "code"),
    [
        ({"max_time": "10:00"}, 2),  # months of pre-training in 10-minute jobs: some 23,000
        ({"max_time": "10:00", "max_jobs": 10_000_000}, 0),  # the cluster says it holds them
        ({"max_time": "14-00:00:00", "max_jobs": 1}, 2),  # more than one job, room for one
        # chains of one-minute jobs: no room for the warning a job checkpoints on, so each is
        # killed at its limit and afterok cancels the rest (a fresh-eye attack)
        ({"max_time": "1", "max_jobs": 10_000_000}, 2),
        ({}, 0),  # the example as shipped
    ],
)
def test_chains_beyond_the_clusters_jobs_are_refused(
    doc: dict[str, Any], slurm: dict[str, Any], code: int, tmp_path: Path
) -> None:
    sc = tmp_path / "sc.yaml"
    sc.write_text(yaml.safe_dump(_with(doc, **slurm)))
    out = tmp_path / "out"
    p = _straits("export", str(sc), "--to", "slurm", "-o", str(out), cwd=tmp_path)
    assert p.returncode == code, p.stderr
    if code == 2:
        assert "targets.slurm.max_time" in p.stderr
        assert "Traceback" not in p.stderr
        assert not out.exists() or not any(out.rglob("*"))  # nothing half-written
    else:
        assert any(out.rglob("submit.sh"))


def test_the_refusal_counts_what_submit_sh_would_submit() -> None:
    """A year of planned time in hour-long jobs is far beyond Slurm's default 10,000."""
    parts, minutes = chain(365 * 24.0, 60)
    assert minutes <= 60 and parts > 10_000
