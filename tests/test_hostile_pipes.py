"""Files that are FIFOs nothing writes to (hostile pass atk39): `ledger verify --file FIFO`,
`ledger verify-receipt FIFO`, `ledger witness --checkpoint FIFO` and `check FIFO` blocked in
``open`` forever. They wait :data:`straits.pipes.PIPE_WAIT_S` for the file, then exit 2 naming
it; a pipe that delivers (a process substitution) is read as before."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits import pipes
from straits.store import Store, ledger
from test_ledger_cli import new_keyfile, straits


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_keyfile(tmp_path_factory)


@pytest.fixture
def fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(pipes, "PIPE_WAIT_S", 0.5)
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path


def test_a_fifo_nothing_writes_to_is_an_input_error_not_a_hang(
    fifo: Path, key: Path, tmp_path: Path
) -> None:
    pub = str(key) + ".pub"
    state = str(tmp_path / "w.json")
    for args in (
        ("ledger", "verify", "--file", str(fifo)),
        ("ledger", "verify-receipt", str(fifo), "--pubkey", pub),
        ("ledger", "witness", "--pubkey", pub, "--state", state, "--checkpoint", str(fifo)),
        ("check", str(fifo)),
    ):
        r = straits(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert str(fifo) in r.stderr


def test_a_fifo_that_delivers_is_read(fifo: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    for i in range(3):
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    store.close()
    export = tmp_path / "ledger.jsonl"
    assert straits("ledger", "export", "--db", db, "-o", str(export)).returncode == 0

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(export.read_bytes())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    pipes.PIPE_WAIT_S = 10.0  # restored by the fixture's monkeypatch
    r = straits("ledger", "verify", "--file", str(fifo))
    writer.join(5)
    assert r.returncode == 0, r.stdout + r.stderr
