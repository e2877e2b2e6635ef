"""The ledger and its proofs under a hostile pass (atk29), table-driven: values the earlier
tamper tests did not try, each answered with its code and exit status, never a traceback, a
500, or a verdict about the log for a mistake in the command line (docs/robustness.md):

* the head row made negative, deleted, or a second one put beside it;
* checkpoint sizes over 2^63 - 1 or of 5,000 digits (stored, as ``--head``, in a receipt, to a
  witness), and a lone checkpoint row made negative;
* ``SEQ:HASH`` heads out of range; lone surrogates in receipts, exports and checkpoints;
* a tenant's consistency proofs bounded by the signed size, not the row's column;
* ``keygen --origin`` names; a database file that is not there; standard input given twice;
  a checkpoint co-signed with the witness's line first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, ledger
from straits.store.keys import Keys
from straits.store.note import MAX_SIZE, Checkpoint, NoteError, Signer
from straits.store.tokens import create_token
from test_ledger_cli import checkpointed_log, straits
from test_ledger_log import sql

SIGNER = Signer.generate("straits.test/tamper2")


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A SQLite log of 5 entries with a checkpoint at 5; the key and its .pub on disk."""
    yield checkpointed_log(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, SIGNER)


def _verify_json(*args: str) -> tuple[int, dict[str, object]]:
    r = straits("ledger", "verify", "-o", "json", *args)
    return r.returncode, json.loads(r.stdout)


# --- a negative head ---------------------------------------------------------------------------
NEGATIVE_HEAD = "UPDATE ledger_head SET seq = -1 WHERE id = 1"
SECOND_HEAD = "INSERT INTO ledger_head (id, seq, hash) SELECT 0, seq, hash FROM ledger_head"
NO_HEAD = "DELETE FROM ledger_head WHERE id = 1"
NO_CP = "DELETE FROM ledger_checkpoints"

HEAD_CASES: list[tuple[str, str, tuple[str, ...], str | None]] = [
    # what, SQL, verify's options, the code (None: a tenant's check, which names none of it)
    ("negative, full", NEGATIVE_HEAD, (), "head-altered"),
    ("negative, quick", NEGATIVE_HEAD, ("--quick",), "head-altered"),
    ("negative, quick, no checkpoint", f"{NEGATIVE_HEAD}; {NO_CP}", ("--quick",), "head-altered"),
    ("negative, tenant, no checkpoint", f"{NEGATIVE_HEAD}; {NO_CP}", ("--tenant", "a"), None),
    # the quick check read the first head row there was, not the log's (id 1)
    (
        "another row beside it, quick",
        f"{SECOND_HEAD}; {NEGATIVE_HEAD}",
        ("--quick",),
        "head-altered",
    ),
    ("moved to another row, quick", f"{SECOND_HEAD}; {NO_HEAD}", ("--quick",), "head-missing"),
    ("deleted, quick, no checkpoint", f"{NO_HEAD}; {NO_CP}", ("--quick",), "head-missing"),
    ("deleted, tenant, no checkpoint", f"{NO_HEAD}; {NO_CP}", ("--tenant", "a"), None),
]


@pytest.mark.parametrize(
    ("what", "statements", "options", "code"), HEAD_CASES, ids=[c[0] for c in HEAD_CASES]
)
def test_an_altered_head_is_reported_not_a_traceback(
    keyed: tuple[str, Path, Path],
    what: str,
    statements: str,
    options: tuple[str, ...],
    code: str | None,
) -> None:
    db, _, pub = keyed
    for statement in statements.split("; "):
        sql(db, statement)
    rc, doc = _verify_json("--db", db, "--pubkey", str(pub), *options)
    assert (rc, doc["ok"]) == (1, False)
    if code is not None:
        assert doc["code"] == code


def test_no_checkpoint_is_signed_over_a_negative_head(keyed: tuple[str, Path, Path]) -> None:
    db, key, _ = keyed
    sql(db, NEGATIVE_HEAD)
    r = straits("ledger", "checkpoint", "--db", db, "--key", str(key))
    assert r.returncode == 1 and "head" in r.stderr and not r.stdout
    rows = Store(db)
    with rows.session() as s:
        from sqlalchemy import func, select

        from straits.store.tables import LedgerCheckpoint

        assert s.execute(select(func.count()).select_from(LedgerCheckpoint)).scalar() == 1


def test_the_api_refuses_a_fresh_checkpoint_over_a_negative_head(
    keyed: tuple[str, Path, Path],
) -> None:
    db, _, _ = keyed
    store = Store(db)
    admin, _ = create_token(store, "a", "admin")
    sql(db, NEGATIVE_HEAD)
    app = create_app(store, settings=Settings())
    app.state.ledger_keys = Keys(SIGNER)
    with TestClient(app, raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {admin}"}
        assert (
            client.get("/v1/ledger/checkpoint", params={"fresh": "true"}, headers=h).status_code
            == 409
        )
        assert (
            client.get("/v1/ledger/verify", params={"quick": "true"}, headers=h).json()["ok"]
            is False
        )
    store.close()


# --- checkpoint sizes beyond any log -----------------------------------------------------------
ROOT = base64.b64encode(bytes(32)).decode()
SIZES: list[tuple[str, str]] = [
    ("5000 digits", "9" * 5000),
    ("2^63", str(2**63)),
    ("2^64", str(2**64)),
]


@pytest.mark.parametrize(("what", "size"), SIZES, ids=[s[0] for s in SIZES])
def test_a_checkpoint_size_beyond_2_63_is_malformed(what: str, size: str) -> None:
    with pytest.raises(NoteError, match="over"):
        Checkpoint.parse_text(f"o\n{size}\n{ROOT}\n")


def test_the_largest_size_parses() -> None:
    assert Checkpoint.parse_text(f"o\n{MAX_SIZE}\n{ROOT}\n").size == MAX_SIZE


def _signed(size: str) -> str:
    return SIGNER.sign(f"{SIGNER.name}\n{size}\n{ROOT}\n")


@pytest.mark.parametrize(("what", "size"), SIZES, ids=[s[0] for s in SIZES])
def test_a_signed_oversized_checkpoint_is_refused_everywhere(
    keyed: tuple[str, Path, Path], tmp_path: Path, what: str, size: str
) -> None:
    """What only the key's holder can make (a malicious operator): refused, exit 1."""
    db, _, pub = keyed
    note = _signed(size)
    cp = tmp_path / "cp"
    cp.write_text(note)
    export = tmp_path / "l.jsonl"
    assert straits("ledger", "export", "--db", db, "-o", str(export)).returncode == 0
    for args in (
        ("--db", db, "--head", str(cp)),
        ("--db", db, "--quick", "--head", str(cp)),
        ("--file", str(export), "--head", str(cp)),
    ):
        rc, doc = _verify_json("--pubkey", str(pub), *args)
        assert (rc, doc["ok"]) == (1, False), args
    receipt = tmp_path / "r.json"
    assert (
        straits(
            "ledger", "receipt", "2", "--db", db, "--pubkey", str(pub), "-o", str(receipt)
        ).returncode
        == 0
    )
    doc = json.loads(receipt.read_text())
    receipt.write_text(json.dumps({**doc, "checkpoint": note}))
    r = straits("ledger", "verify-receipt", str(receipt), "--pubkey", str(pub), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(tmp_path / "w.json"),
        "--checkpoint", str(cp), "--json",
    )  # fmt: skip
    assert r.returncode == 1
    assert [c["status"] for c in json.loads(r.stdout)["checkpoints"]] == ["rejected"]


def test_a_stored_checkpoint_of_5000_digits_is_untrusted(keyed: tuple[str, Path, Path]) -> None:
    """The database writer's row: read without a key too (``ledger checkpoint`` prints it)."""
    db, _, pub = keyed
    sql(
        db,
        "UPDATE ledger_checkpoints SET note = replace(note, :a, :b)",
        a="\n5\n",
        b="\n" + "9" * 5000 + "\n",
    )
    for keys in ((), ("--pubkey", str(pub))):
        rc, doc = _verify_json("--db", db, *keys)
        assert (rc, doc["code"]) == (1, "checkpoint-untrusted"), keys
    r = straits("ledger", "checkpoint", "--db", db)
    assert r.returncode == 1 and not r.stdout


# --- a tenant's consistency proofs stop at the signed size -------------------------------------
def test_a_tenants_proofs_stop_at_the_size_the_checkpoint_signs(
    keyed: tuple[str, Path, Path],
) -> None:
    """A tenant may have proofs up to the latest checkpoint only (the head is for admins); the
    bound was the row's ``size`` column, which the database writer can raise to the head."""
    db, _, _ = keyed
    store = Store(db)
    for i in range(3):  # entries 6 to 8, after the checkpoint of 5
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    viewer, _ = create_token(store, "a", "viewer")
    app = create_app(store, settings=Settings())
    app.state.ledger_keys = Keys(SIGNER)
    with TestClient(app, raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {viewer}"}

        def proof(second: int) -> int:
            q = {"first": "2", "second": str(second)}
            return int(client.get("/v1/ledger/consistency", params=q, headers=h).status_code)

        assert (proof(5), proof(8)) == (200, 400)
        sql(db, "UPDATE ledger_checkpoints SET size = 1000")
        assert (proof(5), proof(8)) == (409, 409)
    store.close()


# --- SEQ:HASH heads ----------------------------------------------------------------------------
HASH = "ab" * 32
HEADS: list[tuple[str, str, int, str | None]] = [
    # what, --head, exit status, verify's code (exit 1) or None (exit 2 naming --head)
    ("5000 digits", "9" * 5000 + ":" + HASH, 2, None),  # was a ValueError traceback
    ("2^63", f"{2**63}:{HASH}", 2, None),
    ("2^63 - 1", f"{2**63 - 1}:{HASH}", 1, "tail-removed"),
    ("a Devanagari digit", "\u096d:" + HASH, 2, None),  # was read as 7
    ("a forged root of 0", f"0:{HASH}", 1, "head-forged"),
]


@pytest.mark.parametrize(("what", "head", "status", "code"), HEADS, ids=[h[0] for h in HEADS])
def test_a_seq_hash_head_out_of_range_is_bad_input(
    keyed: tuple[str, Path, Path],
    tmp_path: Path,
    what: str,
    head: str,
    status: int,
    code: str | None,
) -> None:
    db, _, pub = keyed
    export = tmp_path / "l.jsonl"
    assert straits("ledger", "export", "--db", db, "-o", str(export)).returncode == 0
    for where in (("--db", db), ("--db", db, "--quick"), ("--file", str(export))):
        r = straits("ledger", "verify", "-o", "json", "--pubkey", str(pub), "--head", head, *where)
        assert r.returncode == status, (where, r.stderr)
        if code is None:
            assert "--head" in r.stderr and not r.stdout
        else:
            assert json.loads(r.stdout)["code"] == code


# --- lone surrogates: JSON's "\ud800" is no UTF-8 text ----------------------------------------
def _surrogate_in_receipt_entry(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "entry": {**doc["entry"], "tenant": "\ud800"}}


def _surrogate_in_receipt_checkpoint(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "checkpoint": doc["checkpoint"].replace("\n", "\ud800\n", 1)}


SURROGATES: list[tuple[str, str, int]] = [
    # what, where, exit status (each was a UnicodeEncodeError traceback)
    ("a receipt's entry", "receipt-entry", 2),
    ("a receipt's checkpoint", "receipt-checkpoint", 1),
    ("an export's entry", "export", 2),
    ("a checkpoint offered to a witness", "witness", 1),
]


@pytest.mark.parametrize(("what", "where", "status"), SURROGATES, ids=[c[0] for c in SURROGATES])
def test_a_lone_surrogate_is_refused_not_a_traceback(
    keyed: tuple[str, Path, Path], tmp_path: Path, what: str, where: str, status: int
) -> None:
    db, _, pub = keyed
    receipt = tmp_path / "r.json"
    r = straits("ledger", "receipt", "2", "--db", db, "--pubkey", str(pub), "-o", str(receipt))
    assert r.returncode == 0
    doc = json.loads(receipt.read_text())
    if where == "export":
        export = tmp_path / "l.jsonl"
        assert straits("ledger", "export", "--db", db, "-o", str(export)).returncode == 0
        lines = export.read_text().splitlines()
        lines[1] = json.dumps({**json.loads(lines[1]), "actor": "\udcff"})
        export.write_text("\n".join(lines) + "\n")
        r = straits("ledger", "verify", "--file", str(export))
        assert r.returncode == status and "line 2" in r.stderr
        return
    bad = (
        _surrogate_in_receipt_entry
        if where == "receipt-entry"
        else _surrogate_in_receipt_checkpoint
    )(doc)
    receipt.write_text(json.dumps(bad))  # ASCII: the surrogate as \ud800
    if where == "witness":
        state = str(tmp_path / "w.json")
        r = straits(
            "ledger", "witness", "--pubkey", str(pub), "--state", state,
            "--checkpoint", str(receipt), "--json",
        )  # fmt: skip
        assert r.returncode == status
        assert [c["status"] for c in json.loads(r.stdout)["checkpoints"]] == ["rejected"]
        return
    r = straits("ledger", "verify-receipt", str(receipt), "--pubkey", str(pub), "--json")
    assert r.returncode == status
    if status == 2:
        assert "entry.tenant" in r.stderr and not r.stdout
        assert f"{receipt}:" in r.stderr  # the file, as every command names it
    else:
        assert json.loads(r.stdout)["ok"] is False


# --- the log's name ----------------------------------------------------------------------------
ORIGINS: list[tuple[str, str, int]] = [
    # what, --origin, exit status
    ("non-ASCII", "\u00e9/ledger", 2),  # a UnicodeEncodeError traceback writing the key
    ("an em dash", "\u2014", 2),  # the same
    ("a right-to-left override", "a\u202eb", 2),  # the same
    ("an ESC sequence", "a\x1b[2Jb", 2),  # made a key no checkpoint could be signed with
    ("DEL", "a\x7fb", 2),
    ("201 characters", "a" * 201, 2),  # signed on SQLite, refused by PostgreSQL's column
    ("200 characters", "a" * 200, 0),
    ("a URL without its scheme", "example.com/ledger", 0),
]


@pytest.mark.parametrize(("what", "origin", "status"), ORIGINS, ids=[o[0] for o in ORIGINS])
def test_a_log_is_named_in_printable_ascii(
    tmp_path: Path, what: str, origin: str, status: int
) -> None:
    key = tmp_path / "k"
    r = straits("ledger", "keygen", "--origin", origin, "-o", str(key), "--json")
    assert r.returncode == status, r.stderr
    if status:
        assert "--origin" in r.stderr and not key.exists() and not r.stdout
        return
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    ledger.record(store, tenant="a", actor="t", kind="check", body={})
    store.close()
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(key)).returncode == 0


# --- a path that names no database -------------------------------------------------------------
@pytest.mark.parametrize(
    "options", [(), ("--quick",), ("--tenant", "a")], ids=["full", "quick", "tenant"]
)
def test_verifying_a_database_that_is_not_there_makes_none(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    """A mistyped --db made an empty database there, and `ledger verify` said it verifies."""
    missing = tmp_path / "typo.db"
    r = straits("ledger", "verify", "--db", f"sqlite:///{missing}", *options)
    assert r.returncode == 1 and "cannot open the database" in r.stderr and not r.stdout
    assert not missing.exists()


def test_exporting_a_database_that_is_not_there_makes_none(tmp_path: Path) -> None:
    """It wrote an empty export (`wrote 0 entries`), which then verified."""
    missing, out = tmp_path / "typo.db", tmp_path / "l.jsonl"
    r = straits("ledger", "export", "--db", f"sqlite:///{missing}", "-o", str(out))
    assert r.returncode == 1 and "cannot open the database" in r.stderr
    assert not missing.exists() and not out.exists()


# --- standard input given twice ----------------------------------------------------------------
@pytest.mark.parametrize(
    "where",
    [("--file", "-", "--head", "-"), ("--head", "-", "--head", "-")],
    ids=["--file - and --head -", "--head - twice"],
)
def test_standard_input_is_read_once(
    keyed: tuple[str, Path, Path], tmp_path: Path, where: tuple[str, ...]
) -> None:
    """The second read found nothing: a checkpoint on stdin made the export empty (`tail-removed`,
    exit 1), or the second head 'forged' (exit 1); it is bad input, exit 2."""
    db, key, pub = keyed
    cp = straits("ledger", "checkpoint", "--db", db, "--key", str(key))
    assert cp.returncode == 0
    r = straits("ledger", "verify", "--db", db, "--pubkey", str(pub), *where, stdin=cp.stdout)
    assert r.returncode == 2 and "--head" in r.stderr and not r.stdout


def test_a_witness_reads_standard_input_once(keyed: tuple[str, Path, Path], tmp_path: Path) -> None:
    """A second `--checkpoint -` was 'rejected: not a signed note', exit 1 (as a forged one)."""
    db, key, pub = keyed
    cp = straits("ledger", "checkpoint", "--db", db, "--key", str(key))
    state = tmp_path / "w.json"
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(state),
        "--checkpoint", "-", "--checkpoint", "-", stdin=cp.stdout,
    )  # fmt: skip
    assert r.returncode == 2 and "--checkpoint" in r.stderr and not state.exists()


# --- co-signed checkpoints ---------------------------------------------------------------------
def test_a_checkpoint_co_signed_before_the_log_opens_by_the_logs_signature() -> None:
    """Signature lines have no order (c2sp.org/signed-note): with the witness's line first and
    both keys trusted, the checkpoint was refused as 'signed by key witness...'."""
    from straits.store.note import open_checkpoint

    witness = Signer.generate("witness.test/w")
    text = Checkpoint(SIGNER.name, 5, bytes(32)).text
    log_line = SIGNER.sign(text)[len(text) + 1 :]
    witness_line = witness.sign(text)[len(text) + 1 :]
    trusted = [SIGNER.verifier, witness.verifier]
    for lines in (log_line + witness_line, witness_line + log_line):
        assert open_checkpoint(f"{text}\n{lines}", trusted).key == SIGNER.verifier
    with pytest.raises(NoteError, match="no signature by a trusted key"):  # the witness alone
        open_checkpoint(f"{text}\n{witness_line}", trusted)


# --- a checkpoint row made negative ------------------------------------------------------------
@pytest.mark.parametrize(
    "options", [(), ("--quick",), ("--tenant", "a")], ids=["full", "quick", "tenant"]
)
def test_a_checkpoint_made_negative_is_not_passed_over(
    keyed: tuple[str, Path, Path], options: tuple[str, ...]
) -> None:
    """The quick and tenant checks (and every proven read) took the latest checkpoint among rows
    of size 0 or more: one set to -1 was as if the log had issued none (`verifies`,
    `signatures: none`), while the full check found it altered."""
    db, _, pub = keyed
    sql(db, "UPDATE ledger_checkpoints SET size = -1")
    rc, doc = _verify_json("--db", db, "--pubkey", str(pub), *options)
    assert (rc, doc["ok"]) == (1, False)
    assert doc["code"] == "checkpoint-untrusted"  # the tenant's too (it said history-rewritten)


@pytest.mark.parametrize(
    "command",
    [
        ("ledger", "show"),
        ("ledger", "show", "3"),
        ("ledger", "receipt", "1"),
        ("ledger", "witness", "--checkpoint", "cp", "--pubkey", "k.pub", "--state", "w.json"),
        ("ledger", "checkpoint", "--key", "k"),
        ("impact", "--date", "2025-04-10"),
        ("rules", "replay", "--since", "2025-01-01"),
        ("tokens", "list"),
        ("tokens", "revoke", "abc123"),
        ("report", "0123456789ab", "-o", "r.html"),
        ("export", "0123456789ab", "--to", "slurm", "-o", "out"),
    ],
    ids=[
        "show",
        "show-seq",
        "receipt",
        "witness",
        "checkpoint",
        "impact",
        "replay",
        "tokens-list",
        "tokens-revoke",
        "report",
        "export",
    ],
)
def test_reading_a_database_that_is_not_there_makes_none(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`ledger show` printed `[]` (or `no ledger entry 3`), `ledger receipt` `no entry 1` and
    `ledger witness --db` asked an empty log for proofs: each made an empty database at the
    mistyped path first (atk32); so did `ledger checkpoint` (signing an empty log), `impact`
    and `rules replay` (no recorded plans), `tokens list` and the commands reading a plan by
    its id."""
    missing = tmp_path / "typo.db"
    assert straits("ledger", "keygen", "-o", str(tmp_path / "k")).returncode == 0
    (tmp_path / "cp").write_text("not read\n")
    files = ("cp", "k", "k.pub", "w.json", "r.html", "out")
    args = [str(tmp_path / a) if a in files else a for a in command]
    r = straits(*args, "--db", f"sqlite:///{missing}")
    assert r.returncode == 1 and "cannot open the database" in r.stderr and not r.stdout
    assert not missing.exists()
