"""The signer's own record of what it signed (``store/signed_record.py``): a database writer who
rewrites the log and hides the checkpoint that covers the rewrite (its row's ``size`` lowered,
or the row deleted) cannot get the log to sign a second root for a size it signed (atk78 D4),
by ``ledger checkpoint``, ``ledger receipt`` or the API's receipt route."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.errors import LedgerError, OutputError
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, checkpoints
from straits.store.keys import Keys, configured
from straits.store.note import Signer
from straits.store.signed_record import RECORD_ENV
from test_api import Api
from test_ledger_cli import straits
from test_ledger_log import _rewrite_everything, fill, sql

ORIGIN = "straits.test/signed-record"


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key made by `ledger keygen`, its record beside it (``STRAITS_LEDGER_SIGNED`` unset)."""
    monkeypatch.delenv(RECORD_ENV, raising=False)
    path = tmp_path / "keys" / "ledger.key"
    assert straits("ledger", "keygen", "--origin", ORIGIN, "-o", str(path)).returncode == 0
    return path


def _signed_twice_then_forged(db_url: str, key: Path, tmp_path: Path) -> None:
    """The repro: checkpoints at 3 and 4 entries, then entry 4 rewritten (chain, tree, head
    recomputed) and checkpoint #2's size lowered so that #1 looked like the latest."""
    fill(Store(db_url), 3)
    cp = ("ledger", "checkpoint", "--db", db_url, "--key", str(key))
    assert straits(*cp, "-o", str(tmp_path / "cp3")).returncode == 0
    fill(Store(db_url), 1)
    assert straits(*cp, "-o", str(tmp_path / "cp4")).returncode == 0
    _rewrite_everything(db_url, 4)


def test_a_hidden_checkpoint_does_not_get_a_rewritten_log_signed(
    db_url: str, key: Path, tmp_path: Path
) -> None:
    _signed_twice_then_forged(db_url, key, tmp_path)
    record = key.with_name("ledger.key.signed")
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert record.read_text() == (tmp_path / "cp4").read_text()  # the last one signed
    sql(db_url, "UPDATE ledger_checkpoints SET size = 2 WHERE id = 2")
    cp = ("ledger", "checkpoint", "--db", db_url, "--key", str(key), "-o", str(tmp_path / "x"))
    r = straits(*cp)
    assert r.returncode == 1, r.stderr
    assert "refusing to sign a second root for the same size" in r.stderr
    assert not (tmp_path / "x").exists()
    sql(db_url, "DELETE FROM ledger_checkpoints WHERE id = 2")  # gone altogether: the same
    assert straits(*cp).returncode == 1
    # more entries on the rewritten log: not an extension of what was signed (receipts too)
    fill(Store(db_url), 2)
    r = straits(*cp)
    assert r.returncode == 1 and "does not extend" in r.stderr, r.stderr
    rc = straits("ledger", "receipt", "6", "--db", db_url, "--key", str(key))
    assert rc.returncode == 1 and "does not extend" in rc.stderr, rc.stderr
    assert record.read_text() == (tmp_path / "cp4").read_text()  # nothing else was signed


def test_normal_growth_still_signs_and_the_record_follows(
    db_url: str, key: Path, tmp_path: Path
) -> None:
    record = key.with_name("ledger.key.signed")
    fill(Store(db_url), 3)
    cp = ("ledger", "checkpoint", "--db", db_url, "--key", str(key), "-o")
    have = 3
    for size in (3, 5, 9):
        fill(Store(db_url), size - have)
        have = size
        out = tmp_path / f"cp{size}"
        assert straits(*cp, str(out)).returncode == 0
        assert f"\n{size}\n" in out.read_text() and record.read_text() == out.read_text()
    again = tmp_path / "again"
    assert straits(*cp, str(again)).returncode == 0  # not grown: the same checkpoint
    assert again.read_text() == (tmp_path / "cp9").read_text()
    # its row deleted while the log did not grow: the record's checkpoint, stored again
    sql(db_url, "DELETE FROM ledger_checkpoints")
    assert straits(*cp, str(again)).returncode == 0
    assert again.read_text() == (tmp_path / "cp9").read_text()
    signer = configured(key).signer
    assert signer is not None
    latest = checkpoints.latest(Store(db_url), Keys(signer))
    assert latest is not None and latest.note == again.read_text()


def test_without_a_record_the_stored_checkpoints_are_checked(
    db_url: str, key: Path, tmp_path: Path
) -> None:
    """No record (the first signature after an upgrade): an edited size column of any row a
    trusted key signed is found, whichever row looks the latest."""
    _signed_twice_then_forged(db_url, key, tmp_path)
    key.with_name("ledger.key.signed").unlink()
    sql(db_url, "UPDATE ledger_checkpoints SET size = 2 WHERE id = 2")
    r = straits("ledger", "checkpoint", "--db", db_url, "--key", str(key))
    assert r.returncode == 1 and "the row was altered" in r.stderr, r.stderr
    signer = configured(key).signer
    assert signer is not None
    # and with no record path at all (a key from a pipe), the row stored last is looked at
    with pytest.raises(LedgerError, match="altered"):
        checkpoints.issue(Store(db_url), signer)


def test_without_a_record_a_fork_of_a_stored_checkpoint_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    signer = Signer.generate(ORIGIN)
    record = tmp_path / "rec"
    store = Store(db_url)
    fill(store, 5)
    checkpoints.issue(store, signer, (), record)
    fill(store, 3)
    checkpoints.issue(store, signer, (), record)
    _rewrite_everything(db_url, 2)
    record.unlink()
    sql(db_url, "DELETE FROM ledger_checkpoints WHERE id = 2")  # the latest hidden
    fill(Store(db_url), 1)
    with pytest.raises(LedgerError, match="does not extend checkpoint #1"):
        checkpoints.issue(Store(db_url), signer, (), record)
    assert not record.exists()


def test_a_record_that_is_not_the_keys_or_cannot_be_written_signs_nothing(
    db_url: str, tmp_path: Path
) -> None:
    signer = Signer.generate(ORIGIN)
    store = Store(db_url)
    fill(store, 2)
    forged = tmp_path / "forged"
    other = checkpoints.issue(Store(db_url), Signer.generate(ORIGIN), (), tmp_path / "o")
    forged.write_text(other.note)
    sql(db_url, "DELETE FROM ledger_checkpoints")  # the other key's row
    with pytest.raises(LedgerError, match="cannot be used"):
        checkpoints.issue(store, signer, (), forged)
    fill(store, 1)
    with pytest.raises(OutputError, match=RECORD_ENV):  # nowhere to record it (any user)
        checkpoints.issue(store, signer, (), tmp_path / "missing" / "rec")
    latest = checkpoints.latest(store, Keys(signer))
    assert latest is None or latest.checkpoint.size != 3  # nothing signed for 3 entries


def test_the_api_receipt_route_refuses_a_rewritten_log(db_url: str, tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    record = tmp_path / "rec"
    store = Store(db_url)
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = Keys(signer, (), record)
    fill(store, 4, ("t",))
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, store)
        h = api.auth("t", "viewer")
        assert client.get("/v1/ledger/entries/4/receipt", headers=h).status_code == 200
        _rewrite_everything(db_url, 4)
        sql(db_url, "DELETE FROM ledger_checkpoints")
        fill(store, 1, ("t",))
        r = client.get("/v1/ledger/entries/5/receipt", headers=h)
        assert r.status_code == 409, r.text
    assert "\n4\n" in record.read_text()
