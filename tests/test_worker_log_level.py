"""``straits worker --log-level`` takes the levels its help lists, and only those (stop 62): it
took any name the logging module defines (``notset``, ``warn``, ``fatal``) while its help
said ``debug | info | warning``; ``serve`` refused the same names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from straits.cli.worker_cmd import WORKER_LEVELS
from straits.store import Store
from test_cli import one_line_error, straits
from test_hostile_service_ops import cli, stop, submit, wait_status


@pytest.mark.parametrize("level", ["notset", "warn", "fatal", "trace", "", "info ", "20"])
def test_a_level_the_help_does_not_list_is_exit_2_before_the_database(
    tmp_path: Path, level: str
) -> None:
    db = tmp_path / "s.db"
    p = straits("worker", "--db", f"sqlite:///{db}", "--log-level", level)
    one_line_error(p, "--log-level")
    assert not db.exists()


def test_the_help_lists_every_level_taken() -> None:
    help_text = " ".join(straits("worker", "--help").stdout.split())
    for name, value in WORKER_LEVELS.items():
        assert name in help_text
        assert logging.getLevelName(value) == name.upper()


def test_a_listed_level_in_any_case_runs_the_worker(tmp_path: Path, example_path: Path) -> None:
    """``ERROR`` is taken: the worker plans a queued job and stops on SIGTERM with exit 0."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    plan_id = submit(store, example_path)
    proc = cli("worker", "--db", store.url, "--log-level", "ERROR")
    try:
        assert wait_status(store, plan_id, {"done", "failed"}, proc) == "done"
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "--log-level" not in out
    store.close()
