"""A tenant's verification names what the log-wide check found, with the code the full and
quick checks give (led63).

Every failure of the quick check was reported to a tenant as ``history-rewritten`` ("the log
no longer extends its latest signed checkpoint: it was rewritten"): also a tenant giving the
wrong ``--pubkey``, a checkpoint row whose signature or size was altered, a head deleted or a
tail cut, where the full and quick checks say ``checkpoint-untrusted``, ``head-missing`` or
``tail-removed``. The text stays the tenant's own: no global number, no log size. And each
check said ``signatures: none`` of an untrusted checkpoint, as of a log that had signed
nothing: it says ``untrusted`` (chain64)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from straits.store import Store, checkpoints
from straits.store.integrity import verify_heads, verify_store
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.tenant_verify import verify_tenant
from test_ledger_cli import straits
from test_ledger_log import _truncate_everything, fill, sql

OTHER = Signer.generate("straits.test/other-log")

#: (what, the tamper on the database URL, the keys the tenant verifies with (None: the log's),
#: the code every check gives)
CASES: list[tuple[str, Callable[[str], None], Keys | None, str]] = [
    (
        "another key given",
        lambda url: None,
        Keys(verifiers=(OTHER.verifier,)),
        "checkpoint-untrusted",
    ),
    (
        "signature altered",
        lambda url: sql(url, "UPDATE ledger_checkpoints SET note = replace(note, '— ', '—  ')"),
        None,
        "checkpoint-untrusted",
    ),
    (
        "checkpoint size made negative",
        lambda url: sql(url, "UPDATE ledger_checkpoints SET size = -1"),
        None,
        "checkpoint-untrusted",
    ),
    ("tail cut with tree and head", lambda url: _truncate_everything(url, 4), None, "tail-removed"),
    ("head deleted", lambda url: sql(url, "DELETE FROM ledger_head"), None, "head-missing"),
]


@pytest.mark.parametrize(("what", "tamper", "given", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_tenant_is_told_what_the_log_wide_check_found(
    db_url: str,
    keys: Keys,
    what: str,
    tamper: Callable[[str], None],
    given: Keys | None,
    code: str,
) -> None:
    store = Store(db_url)
    fill(store, 8, ("a", "b", "a"))
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    store.close()
    tamper(db_url)
    used = given or Keys(verifiers=(keys.signer.verifier,))
    quick, full = verify_heads(Store(db_url), used, []), verify_store(Store(db_url), used)
    assert (quick.code, full.code) == (code, code)
    t = verify_tenant(Store(db_url), used, "a")
    assert (t.ok, t.code, t.first_bad) == (False, code, None), t
    if code == "checkpoint-untrusted":  # each said `none`, as of a log that signed nothing
        said = [v.to_json()["signatures"] for v in (quick, full, t)]
        assert said == ["untrusted"] * 3, said
    assert t.problem is not None and not any(ch.isdigit() for ch in t.problem), t.problem


def test_the_cli_names_a_wrong_pubkey_for_a_tenant(db_url: str, keys: Keys, tmp_path: Path) -> None:
    store = Store(db_url)
    fill(store, 3)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    store.close()
    pub = tmp_path / "other.pub"
    pub.write_text(OTHER.verifier.vkey + "\n")
    r = straits(
        "ledger", "verify", "--db", db_url, "--pubkey", str(pub), "--tenant", "a", "-o", "json"
    )
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["code"], doc["signatures"]) == ("checkpoint-untrusted", "untrusted")
