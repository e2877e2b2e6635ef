"""`straits export` refuses the flags no target asked for reads (h49): `--image` is the
container image of Kubernetes and Karmada pods, `--ordered` SkyPilot's resources order;
`--to slurm --image I` wrote sbatch scripts that run no container, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app

IMAGE = ["--image", "nvcr.io/nvidia/pytorch:24.01-py3"]


@pytest.mark.parametrize(
    ("to", "flag", "read"),
    [
        (["--to", "slurm"], IMAGE, False),
        (["--to", "skypilot"], IMAGE, False),
        (["--to", "slurm", "--to", "kubernetes"], ["--ordered"], False),
        (["--to", "karmada"], IMAGE, True),
        (["--to", "skypilot"], ["--ordered"], True),
    ],
)
def test_a_flag_is_refused_unless_a_target_reads_it(
    example_path: Path, tmp_path: Path, to: list[str], flag: list[str], read: bool
) -> None:
    out = tmp_path / "jobs"
    args = ["export", str(example_path), *to, "-o", f"{out}/", "--run", "x", *flag]
    r = CliRunner().invoke(app, args)
    if read:
        assert r.exit_code == 0, r.output
        assert out.is_dir()
    else:
        assert r.exit_code == 2
        assert flag[0] in r.output
        assert not out.exists()
