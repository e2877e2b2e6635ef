"""Slow steps show a spinner on a terminal's stderr (``common.working``), never on stdout, and
nothing with ``-q`` or when stderr is not a terminal."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

from straits.cli import common
from terminal import on_a_terminal


def test_a_market_run_says_what_it_simulates() -> None:
    rc, out, tty = on_a_terminal(["market", "--json"])
    assert rc == 0, tty
    assert "simulating the market under the enacted rules" in tty
    assert json.loads(out)["regime"] == "enacted"


def test_a_report_planned_now_says_so(example_path: Path, tmp_path: Path) -> None:
    rc, out, tty = on_a_terminal(
        ["report", str(example_path), "-o", str(tmp_path / "r.html"), "--time-limit", "5"]
    )
    assert rc == 0, tty
    assert "planning scenario" in tty and out == ""
    assert (tmp_path / "r.html").stat().st_size > 0


def test_a_replay_says_what_it_replays(tmp_path: Path) -> None:
    from straits.store import Store

    db = f"sqlite:///{tmp_path / 'r.db'}"
    Store(db).close()  # an empty log: replay reads one and makes none
    rc, out, tty = on_a_terminal(["rules", "replay", "--since", "2025-01-01", "--db", db, "--json"])
    assert rc == 0, tty
    assert "verifying the ledger" in tty and "replaying the decisions" in tty
    assert json.loads(out)["changes"] == []


@pytest.mark.parametrize(("quiet", "tty"), [(True, True), (False, False), (True, False)])
def test_nothing_is_drawn_when_quiet_or_not_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, quiet: bool, tty: bool
) -> None:
    monkeypatch.setattr(common.state, "quiet", quiet)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert isinstance(common.working("x"), nullcontext)
