"""An export that fails into a folder leaves no lock file it made, nor a folder it made (web33).

`straits export PLAN -o NEW/DIR` on a full disk (``RLIMIT_FSIZE``, as
``tests/test_hostile_fresh32.py`` simulates it) was exit 1 with nothing of the export written,
but left ``NEW/DIR/.straits-export.lock`` behind (fresh32's "not done"): a folder the user had
not got before the command. A lock an earlier export made stays, and a lock removed while
another export waits on it is not taken for held."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from straits.export.bundle import LOCK, _locked


def _at_most(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _export(scenario: Path, out: Path, limit: int | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", "export", str(scenario), "--to", "slurm", "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=None if limit is None else lambda: _at_most(limit),
        timeout=300,
    )


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory, example_path: Path) -> Path:
    """The shipped example planned once (so each export below only writes)."""
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    with out.open("w") as f:
        p = subprocess.run(
            [sys.executable, "-m", "straits", "plan", str(example_path), "--json"],
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert p.returncode == 0, p.stderr
    return out


def test_a_failed_export_into_folders_it_made_leaves_none(tmp_path: Path, plan_file: Path) -> None:
    out = tmp_path / "new" / "bundle"
    p = _export(plan_file, out, 1024)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "new").exists()  # neither folder, nor the lock in it


def test_a_failed_export_into_a_folder_of_the_users_leaves_it_as_it_was(
    tmp_path: Path, plan_file: Path
) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "old.txt").write_text("kept")
    p = _export(plan_file, folder, 1024)
    assert p.returncode == 1, p.stderr
    assert sorted(f.name for f in folder.iterdir()) == ["old.txt"]


def test_a_lock_an_earlier_export_made_stays(tmp_path: Path, plan_file: Path) -> None:
    folder = tmp_path / "bundle"
    assert _export(plan_file, folder, None).returncode == 0
    before = sorted(f.name for f in folder.rglob("*"))
    assert LOCK in before
    p = _export(plan_file, folder, 1024)
    assert p.returncode == 1, p.stderr
    assert sorted(f.name for f in folder.rglob("*")) == before


def test_a_lock_removed_while_another_export_waits_is_opened_again(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    first, second = _locked(folder), _locked(folder)
    first.__enter__()
    assert first.created
    held = threading.Event()

    def wait() -> None:
        second.__enter__()
        held.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert not held.wait(0.3)  # it waits on the first one's lock file
    first.remove()
    folder.rmdir()  # as a failed export that made the folder
    first.__exit__(None, None, None)
    waiter.join(10)
    assert held.is_set()
    # the lock the second holds is the folder's lock file, made again (with the folder)
    assert second.created and second._current()
    second.__exit__(None, None, None)
