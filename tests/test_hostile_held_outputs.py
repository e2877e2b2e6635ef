"""An output never replaces a file the command itself keeps (atk66): ``ledger checkpoint -o
ledger.key`` replaced the log's signing key (the only copy: the database never holds it) and
``ledger export -o straits.db`` / ``ledger receipt 1 -o straits.db`` the whole database, each
exit 0. Now exit 2 naming ``-o``, and the file is as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from straits.store.keys import write_keys
from straits.store.note import Signer
from test_ledger_cli import fill, straits


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "ledger.key"
    write_keys(key, Signer.generate("straits.test/held"))
    db = tmp_path / "s.db"
    fill(f"sqlite:///{db}", 3)
    monkeypatch.setenv("STRAITS_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("STRAITS_LEDGER_KEY", str(key))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (the command, the file -o names, relative to the log's directory)
CASES = [
    (("ledger", "checkpoint"), "ledger.key"),
    (("ledger", "checkpoint"), "ledger.key.pub"),
    (("ledger", "export"), "s.db"),
    (("ledger", "export"), "s.db-wal"),
    (("ledger", "receipt", "1"), "s.db"),
    (("ledger", "receipt", "1"), "hard-link.db"),
    (("ledger", "export"), "sub/../s.db"),
]


@pytest.mark.parametrize(("command", "target"), CASES)
def test_an_output_that_is_a_kept_file_is_refused(
    log: Path, command: tuple[str, ...], target: str
) -> None:
    os.link(log / "s.db", log / "hard-link.db")
    (log / "sub").mkdir()
    before = keys(log)
    r = straits(*command, "-o", target)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "-o:" in r.stderr and "would replace it" in r.stderr, r.stderr
    assert keys(log) == before
    # the database (its pages move between the file and its WAL as it is read): still the log
    v = straits("ledger", "verify", "--json")
    assert v.returncode == 0 and json.loads(v.stdout)["entries"] == 3, (v.stdout, v.stderr)


def keys(log: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in log.glob("ledger.key*")}


def test_other_outputs_are_still_written(log: Path) -> None:
    assert straits("ledger", "checkpoint", "-o", "cp.txt").returncode == 0
    assert straits("ledger", "export", "-o", "export.jsonl").returncode == 0
    assert straits("ledger", "receipt", "1", "-o", "r.json").returncode == 0
    assert all((log / n).stat().st_size > 0 for n in ("cp.txt", "export.jsonl", "r.json"))
    r = straits("ledger", "verify", "--file", "export.jsonl", "--head", "cp.txt")
    assert r.returncode == 0, r.stderr
