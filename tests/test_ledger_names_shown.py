"""Names from the log are printed as they are (atk78 D1: a tenant ``acme[hidden]`` was printed
as Rich markup, ``acme``), and the console names no entry ``#None`` (D3)."""

from __future__ import annotations

import json
from pathlib import Path

from straits.store import Store
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.tokens import Principal
from straits.web.ledger import tenant_verification
from test_ledger_cli import straits
from test_ledger_log import fill, sql

NAME = "acme[hidden]"
ORIGIN = "x.example/[b]log"


def test_a_tenant_name_with_markup_prints_verbatim(db_url: str, tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    key = tmp_path / "k.key"
    key.write_text(signer.skey + "\n")
    key.chmod(0o600)
    fill(Store(db_url), 2, (NAME,))
    receipt = tmp_path / "[red]r.json"
    r = straits("ledger", "receipt", "1", "--db", db_url, "--key", str(key), "-o", str(receipt))
    assert r.returncode == 0 and str(receipt) in r.stderr, r.stderr
    assert json.loads(receipt.read_text())["entry"]["tenant"] == NAME
    pub = signer.verifier.vkey
    v = straits("ledger", "verify-receipt", str(receipt), "--pubkey", pub)
    assert v.returncode == 0, v.stderr
    assert f"of tenant {NAME}," in v.stdout and f"in log {ORIGIN} of" in v.stdout, v.stdout
    t = straits("ledger", "verify", "--db", db_url, "--tenant", NAME, "--pubkey", pub)
    assert t.returncode == 0 and f"tenant {NAME!r} verifies" in t.stdout, t.stdout
    full = straits("ledger", "verify", "--db", db_url, "--pubkey", pub)
    assert full.returncode == 0 and f"entries, {ORIGIN} (" in full.stdout, full.stdout
    sql(db_url, "DELETE FROM ledger WHERE seq = 1")
    bad = straits("ledger", "verify", "--db", db_url, "--tenant", NAME, "--pubkey", pub)
    assert bad.returncode == 1 and f"tenant {NAME!r} broken" in bad.stdout, bad.stdout
    cp = tmp_path / "[b]cp"
    cp.write_text(json.loads(receipt.read_text())["checkpoint"])
    w = ("ledger", "witness", "--pubkey", pub, "--state", str(tmp_path / "w.json"))
    out = straits(*w, "--checkpoint", str(cp))
    assert out.returncode == 0 and f"{cp}: first checkpoint of log {ORIGIN}" in out.stdout


def test_the_console_names_no_entry_none(db_url: str) -> None:
    """An entry deleted after the tenant's last: no entry of the tenant to name."""
    store = Store(db_url)
    fill(store, 2, ("alice", "bob"))
    sql(db_url, "DELETE FROM ledger WHERE seq = 2")
    check = tenant_verification(Store(db_url), Principal("t1", "alice", "viewer"), Keys())
    assert not check.ok
    assert "None" not in check.text and check.text.startswith("your entries do not verify: ")
