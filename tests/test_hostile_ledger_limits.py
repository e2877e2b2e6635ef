"""The largest batch `check --record` accepts makes a ledger entry whose receipt verifies
offline: the receipt of a 10,000-request entry was 27 MB and refused by `verify-receipt` (then
capped at 1 MiB, which the 2.7 MB receipt of a 1,000-request entry, the API's cap per call,
also exceeded). One more request than the cap is exit 2 before anything is recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hostile_corpus import DESIGN_REQUEST
from straits.limits import MAX_RECORDED_CHECK_REQUESTS


def _straits(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _batch(n: int) -> str:
    return json.dumps(
        [{**DESIGN_REQUEST, "data": {**DESIGN_REQUEST["data"], "subjects": i}} for i in range(n)]
    )


def test_the_largest_recordable_batch_has_a_receipt_that_verifies(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert _straits("ledger", "keygen", "-o", "k", cwd=tmp_path).returncode == 0
    p = _straits(
        "check",
        "--json",
        "--record",
        "--db",
        db,
        cwd=tmp_path,
        stdin=_batch(MAX_RECORDED_CHECK_REQUESTS),
    )
    assert p.returncode == 0, p.stderr
    p = _straits("ledger", "receipt", "1", "--db", db, "--key", "k", "-o", "r.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = _straits("ledger", "verify-receipt", "r.json", "--pubkey", "k.pub", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_one_more_is_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    p = _straits(
        "check",
        "--json",
        "--record",
        "--db",
        db,
        cwd=tmp_path,
        stdin=_batch(MAX_RECORDED_CHECK_REQUESTS + 1),
    )
    assert p.returncode == 2
    assert "--record" in p.stderr and not p.stdout
    # refused before the database was opened: none was made, so nothing can be in it (`ledger
    # show` of it printed `[]` by making an empty one; it refuses a file that is not there)
    assert not (tmp_path / "l.db").exists()
    p = _straits("ledger", "show", "--db", db, "--json", cwd=tmp_path)
    assert p.returncode == 1 and not p.stdout and not (tmp_path / "l.db").exists()
