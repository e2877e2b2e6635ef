"""The suite's split over pytest-xdist workers (``make test``: ``-n 2 --dist loadfile``):
every module that drives the one Slurm cluster is in the unit that runs on one worker
(``conftest.SLURM_MODULES``), and each worker's PostgreSQL database is its own."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import SLURM_MODULES

HERE = Path(__file__).resolve().parent
DRIVES_SLURM = re.compile(r"SLURM_CONF|sbatch|REQUIRE_SLURM")


def test_every_module_that_drives_slurm_runs_in_the_slurm_unit() -> None:
    drives = {
        p.stem
        for p in HERE.glob("test_*.py")
        if p.name != Path(__file__).name and DRIVES_SLURM.search(p.read_text(encoding="utf-8"))
    }
    assert drives, "no module drives Slurm: the pattern no longer finds them"
    assert drives <= SLURM_MODULES, sorted(drives - SLURM_MODULES)
    assert {p.stem for p in HERE.glob("test_*.py")} >= SLURM_MODULES, "a listed module is gone"


def test_a_worker_database_is_named_for_its_worker() -> None:
    from conftest import _worker_database

    # already the worker's: nothing made, nothing renamed (conftest imported a second time)
    url = "postgresql+psycopg://u@127.0.0.1:1/straits_test_gw1"
    assert _worker_database(url, "gw1") == url
