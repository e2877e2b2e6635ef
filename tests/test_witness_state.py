"""The witness's state file under hostile contents, concurrent runs and failed writes
(``straits.store.witness_state``): a state the witness never wrote is exit 2 naming
``--state`` (it was a KeyError, AttributeError or TypeError traceback; a FIFO hung, /dev/zero
ate memory), two runs on one state take turns so a split view between them is reported (both
could accept, trust on first use, one of two trees signed for one size), and a write that
fails leaves the old state whole."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from straits.errors import InputError
from straits.store import witness_state
from straits.store.note import Checkpoint, Signer, sign_checkpoint
from test_ledger_cli import straits

ORIGIN = "straits.test/witness-state"
ITEM = {"size": 3, "root": "ab" * 32, "note": "n", "source": "s", "seen_at": "t"}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def checkpoint(tmp_path: Path, signer: Signer, name: str, size: int, root: bytes) -> Path:
    path = tmp_path / name
    path.write_text(sign_checkpoint(Checkpoint(ORIGIN, size, root), signer))
    return path


def witness(state: Path, signer: Signer, *checkpoints: Path) -> list[str]:
    args = ["ledger", "witness", "--pubkey", signer.verifier.vkey, "--state", str(state)]
    for cp in checkpoints:
        args += ["--checkpoint", str(cp)]
    return [*args, "--json"]


def one_error(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], lines[0]


def state(logs: Any) -> str:
    return json.dumps({"format": "straits-witness/1", "logs": logs})


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"format": "straits-witness/1"}', "at logs"),
        (state([]), "at logs"),
        (state({ORIGIN: []}), f"logs[{ORIGIN!r}]"),
        (state({ORIGIN: {"seen": {}, "latest": None}}), ".seen"),
        (state({ORIGIN: {"seen": [5], "latest": None}}), ".seen[0]"),
        (state({ORIGIN: {"seen": [{**ITEM, "size": "3"}], "latest": None}}), ".seen[0].size"),
        (state({ORIGIN: {"seen": [{**ITEM, "size": True}], "latest": None}}), ".seen[0].size"),
        (state({ORIGIN: {"seen": [{**ITEM, "size": -1}], "latest": None}}), ".seen[0].size"),
        (state({ORIGIN: {"seen": [{**ITEM, "root": "zz"}], "latest": None}}), ".seen[0].root"),
        (state({ORIGIN: {"seen": [{**ITEM, "note": None}], "latest": None}}), ".seen[0].note"),
        (state({ORIGIN: {"seen": [ITEM], "latest": 5}}), ".latest"),
        (state({ORIGIN: {"seen": [], "latest": ITEM}}), "not among those seen"),
        ('{"format": "straits-witness/1", "logs": {', "cannot read the witness state"),
        ("", "cannot read the witness state"),  # a state cut short
        ('{"format": "other"}', "not a witness state file"),
    ],
)
def test_a_state_the_witness_never_wrote_is_exit_2(
    tmp_path: Path, signer: Signer, content: str, field: str
) -> None:
    cp = checkpoint(tmp_path, signer, "cp", 3, b"\x01" * 32)
    path = tmp_path / "state.json"
    path.write_text(content)
    p = straits(*witness(path, signer, cp))
    assert p.returncode == 2, p.stdout + p.stderr
    one_error(p.stderr, "--state", field)
    assert path.read_text() == content  # nothing recorded


def test_a_state_that_is_no_file_is_refused_at_once(tmp_path: Path, signer: Signer) -> None:
    cp = checkpoint(tmp_path, signer, "cp", 3, b"\x01" * 32)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it hung the witness
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")  # read until memory ran out
    real = tmp_path / "real.json"
    real.write_text(state({}))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    (tmp_path / "dir").mkdir()
    for path, words in (
        (fifo, ("FIFO",)),
        (zero, ("symbolic link",)),
        (link, ("symbolic link",)),
        (tmp_path / "dir", ("directory",)),
        (Path("-"), ("standard output",)),
    ):
        p = subprocess.run(
            [sys.executable, "-m", "straits", *witness(path, signer, cp)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 2, (path, p.stdout, p.stderr)
        one_error(p.stderr, "--state", *words)
    assert real.read_text() == state({})


def test_a_run_waits_for_another_on_the_same_state_then_gives_up(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = checkpoint(tmp_path, signer, "cp", 3, b"\x01" * 32)
    path = tmp_path / "state.json"
    monkeypatch.setattr(witness_state, "LOCK_WAIT_S", 0.2)
    with witness_state.locked(path):
        p = straits(*witness(path, signer, cp))
    assert p.returncode == 2
    one_error(p.stderr, "--state", "another witness run", "nothing was recorded")
    assert not path.exists()
    after = straits(*witness(path, signer, cp))
    assert after.returncode == 0 and json.loads(after.stdout)["checkpoints"][0]["status"] == (
        "accepted"
    )


def test_two_runs_at_once_see_each_others_checkpoint(tmp_path: Path, signer: Signer) -> None:
    """Two witness runs, each shown one of two trees the log signed for 5 entries, started
    together: they take turns, so the second reports the split view and the state keeps the
    first's checkpoint. Without the lock both read the empty state and both accepted."""
    a = checkpoint(tmp_path, signer, "a", 5, b"\x0a" * 32)
    b = checkpoint(tmp_path, signer, "b", 5, b"\x0b" * 32)
    path = tmp_path / "state.json"
    with witness_state.locked(path):  # both runs start, then wait here together
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "straits", *witness(path, signer, cp)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for cp in (a, b)
        ]
        time.sleep(3)  # let both reach the lock (the outcome is the same if one is later)
    outs = [p.communicate(timeout=120) for p in procs]
    statuses = sorted(
        (p.returncode, json.loads(out)["checkpoints"][0]["status"])
        for p, (out, _) in zip(procs, outs, strict=True)
    )
    assert statuses == [(0, "accepted"), (1, "split-view")], outs
    seen = json.loads(path.read_text())["logs"][ORIGIN]["seen"]
    assert len(seen) == 1


def test_a_failed_write_keeps_the_old_state(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = checkpoint(tmp_path, signer, "first", 3, b"\x01" * 32)
    later = checkpoint(tmp_path, signer, "later", 3, b"\x02" * 32)
    path = tmp_path / "state.json"
    assert straits(*witness(path, signer, first)).returncode == 0
    before = path.read_text()

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("straits.fileio.write_all", full)
    p = straits(*witness(path, signer, later))
    assert p.returncode == 1  # a full disk is not the input's fault (mig31: fileio.FULL)
    one_error(p.stderr, "state.json", "No space left on device")
    assert path.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".state")) == [
        ".state.json.lock"
    ]
    monkeypatch.undo()
    split = straits(*witness(path, signer, later))  # the first checkpoint was kept
    assert split.returncode == 1
    assert json.loads(split.stdout)["checkpoints"][0]["status"] == "split-view"


def _items(sizes: range, note: str = "n") -> list[dict[str, Any]]:
    return [{**ITEM, "size": n, "root": f"{n:064x}", "note": note} for n in sizes]


def test_the_state_keeps_a_bounded_number_of_checkpoints(tmp_path: Path, signer: Signer) -> None:
    """Each accepted checkpoint was kept forever: after ~39,000 the witness wrote a state over
    the 16 MiB it reads back, and refused it on every later run (atk78 D2). A state of the old
    kind, longer than kept now, is still read, and compacted when written."""
    path = tmp_path / "w.json"
    seen = _items(range(1, 3001))
    latest = seen[-1]
    path.write_text(state({ORIGIN: {"seen": seen, "latest": latest}}))
    keep = witness_state.KEEP_SEEN
    s = witness_state.read_state(path)  # an old state, longer than what is kept now
    witness_state.write_state(path, s)
    log = witness_state.read_state(path)["logs"][ORIGIN]
    assert len(log["seen"]) == keep and log["latest"] == latest
    sizes = [x["size"] for x in log["seen"]]
    assert sizes == [1, *range(3001 - (keep - 1), 3001)]  # the first, and the latest ones


def test_the_latest_is_kept_when_larger_ones_were_seen() -> None:
    seen = _items(range(1, 2000))
    latest = seen[9]  # size 10, its root as seen holds it (atk93: a state refuses another)
    log: dict[str, Any] = {"seen": seen, "latest": latest}
    s: dict[str, Any] = {"format": "straits-witness/1", "logs": {ORIGIN: log}}
    witness_state.compact(s)
    assert len(log["seen"]) == witness_state.KEEP_SEEN
    assert any(x["size"] == 10 for x in log["seen"])
    witness_state.check_state(s, "s")


def test_a_state_too_large_to_read_back_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(state({}))
    big = "x" * 100_000
    logs = {f"log{i}": {"seen": [{**ITEM, "note": big}], "latest": None} for i in range(200)}
    with pytest.raises(InputError, match="over the 16,777,216 bytes a witness reads back") as e:
        witness_state.write_state(path, {"format": "straits-witness/1", "logs": logs})
    assert e.value.path == "--state"
    assert json.loads(path.read_text()) == json.loads(state({}))  # as it was
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]  # nothing half-written
