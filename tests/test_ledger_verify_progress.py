"""``ledger verify`` tells how it goes: the store reports each step of a full verification in
order (and stops at the walk when the chain breaks), and the command draws it on a terminal's
stderr only, never on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app
from straits.store import Store, integrity
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.ledger import Verification
from terminal import on_a_terminal
from test_ledger_log import fill, sql


@pytest.fixture
def url(tmp_path: Path) -> str:
    u = f"sqlite:///{tmp_path / 'v.db'}"
    fill(Store(u), 7)
    return u


def _calls(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> tuple[Verification, list[tuple[str, int, int]]]:
    monkeypatch.setattr(integrity, "EVERY", 2)
    seen: list[tuple[str, int, int]] = []
    v = verify_store(store, Keys(), progress=lambda *a: seen.append(a))
    return v, seen


def test_every_step_is_reported_in_order(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(url)
    v, seen = _calls(store, monkeypatch)
    assert v == verify_store(store, Keys())  # the report changes nothing
    assert v.ok
    entries = [c[1:] for c in seen if c[0] == "entries"]
    assert entries == [(0, 7), (2, 7), (4, 7), (6, 7), (7, 7)]
    assert [c[0] for c in seen if c[0] != "entries"] == ["tree", "checkpoints", "heads", "records"]
    assert seen.index(("tree", 0, 0)) > seen.index(("entries", 7, 7))


def test_a_broken_chain_ends_the_report_at_the_walk(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(url, "UPDATE ledger SET actor = 'someone else' WHERE seq = 3")
    v, seen = _calls(Store(url), monkeypatch)
    assert not v.ok and v.first_bad == 3
    assert {c[0] for c in seen} == {"entries"}


def test_an_empty_ledger_reports_nothing_to_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v, seen = _calls(Store(f"sqlite:///{tmp_path / 'e.db'}"), monkeypatch)
    assert v.ok and v.entries == 0
    assert seen[0] == ("entries", 0, 0)


@pytest.mark.parametrize("flag", ["--progress", "--no-progress"])
def test_stdout_carries_the_result_alone(url: str, flag: str) -> None:
    r = CliRunner().invoke(app, ["ledger", "verify", "--db", url, flag, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["entries"] == 7


def test_a_terminal_sees_the_steps_and_quiet_hides_them(url: str) -> None:
    rc, out, tty = on_a_terminal(["ledger", "verify", "--db", url, "--json"])
    assert rc == 0 and json.loads(out)["ok"] is True
    assert "verify" in tty and "plan and decision rows" in tty
    rc, out, tty = on_a_terminal(["-q", "ledger", "verify", "--db", url, "--json"])
    assert rc == 0 and json.loads(out)["ok"] is True
    assert "plan and decision rows" not in tty
