"""`straits export` refuses the flags no target asked for reads (h49): `--image` is the
container image of Kubernetes and Karmada pods, `--ordered` SkyPilot's resources order;
`--to slurm --image I` wrote sbatch scripts that run no container, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app


@pytest.mark.parametrize(
    ("to", "flag"),
    [
        (["--to", "slurm"], ["--image", "nvcr.io/nvidia/pytorch:24.01-py3"]),
        (["--to", "skypilot"], ["--image", "nvcr.io/nvidia/pytorch:24.01-py3"]),
        (["--to", "slurm", "--to", "kubernetes"], ["--ordered"]),
    ],
)
def test_a_flag_no_target_reads_is_refused(
    example_path: Path, tmp_path: Path, to: list[str], flag: list[str]
) -> None:
    out = tmp_path / "jobs"
    args = ["export", str(example_path), *to, "-o", f"{out}/", "--run", "x", *flag]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert flag[0] in r.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("to", "flag"),
    [
        (["--to", "karmada"], ["--image", "nvcr.io/nvidia/pytorch:24.01-py3"]),
        (["--to", "skypilot"], ["--ordered"]),
    ],
)
def test_a_flag_its_target_reads_is_taken(
    example_path: Path, tmp_path: Path, to: list[str], flag: list[str]
) -> None:
    out = tmp_path / "jobs"
    args = ["export", str(example_path), *to, "-o", f"{out}/", "--run", "x", *flag]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert out.is_dir()
