"""The ledger's commands end to end (real subprocesses): keygen, checkpoint, verify with older
heads (with and without --file), receipts checked offline with nothing but the public key,
witnesses catching a split view; kill -9 mid-append. (Migration of a ledger made by the first
schema, one tenant's export and chain-hash heads: test_ledger_cli_verify_inputs.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from straits.store import Store, ledger
from straits.store.integrity import verify_store
from straits.store.keys import Keys, configured
from test_cli import straits as straits_process


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def straits(*args: str, stdin: str | None = None) -> Ran:
    """The CLI in this process (Typer's runner): what a subprocess would print and return,
    without an interpreter start per command. The offline receipt check and the kill -9 test
    use real processes."""
    import typer
    from click.testing import CliRunner

    from straits.cli import app

    r = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), list(args), input=stdin)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Ran(r.exit_code, r.stdout, r.stderr)


ORIGIN = "straits.test/cli-ledger"


def fill(db: str, n: int, tenants: tuple[str, ...] = ("a", "b")) -> None:
    store = Store(db)
    for i in range(n):
        ledger.record(
            store, tenant=tenants[i % len(tenants)], actor="t", kind="check", body={"i": i}
        )
    store.close()


def checkpointed_log(db: str, directory: Path, signer: Any, n: int = 5) -> tuple[str, Path, Path]:
    """A log of ``n`` entries of tenant ``a`` in ``db`` with a checkpoint at ``n`` signed by
    ``signer`` (a ``note.Signer``); its key and ``.pub`` written in ``directory``."""
    fill(db, n, ("a",))
    key, pub = directory / "k", directory / "k.pub"
    key.write_text(signer.skey + "\n")
    key.chmod(0o600)
    pub.write_text(signer.verifier.vkey + "\n")
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(key)).returncode == 0
    return db, key, pub


def new_keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signing key made by `ledger keygen` (the real entry point) under ORIGIN."""
    path = tmp_path_factory.mktemp("keys") / "ledger.key"
    p = straits_process("ledger", "keygen", "--origin", ORIGIN, "-o", str(path), "--json")
    assert p.returncode == 0, p.stderr  # the real entry point, once
    out = json.loads(p.stdout)
    assert out["pubkey"].startswith(ORIGIN + "+")
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(out["pubkey_file"]).read_text().strip() == out["pubkey"]
    return path


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_keyfile(tmp_path_factory)


def pub(keyfile: Path) -> str:
    return str(keyfile) + ".pub"


def test_keygen_refuses_to_replace_a_key(keyfile: Path) -> None:
    p = straits("ledger", "keygen", "--origin", ORIGIN, "-o", str(keyfile))
    assert p.returncode == 2 and "--force" in p.stderr
    bad = straits("ledger", "keygen", "--origin", "has space", "-o", str(keyfile) + "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_checkpoint_verify_and_older_heads(db_url: str, keyfile: Path, tmp_path: Path) -> None:
    fill(db_url, 5)
    old = tmp_path / "checkpoint-5"
    p = straits("ledger", "checkpoint", "--db", db_url, "--key", str(keyfile), "-o", str(old))
    assert p.returncode == 0, p.stderr
    assert old.read_text().splitlines()[:2] == [ORIGIN, "5"]
    head5 = json.loads(straits("ledger", "verify", "--db", db_url, "--json").stdout)
    fill(db_url, 4)
    args = ("ledger", "verify", "--db", db_url, "--pubkey", pub(keyfile), "--json")
    # an older checkpoint, an older chain head and an older Merkle root: all proven
    ok = straits(
        *args,
        "--head",
        str(old),
        "--head",
        f"5:{head5['head_hash']}",
        "--head",
        f"5:{head5['root_hash']}",
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    v = json.loads(ok.stdout)
    assert v["entries"] == 9 and len(v["heads"]) == 3 and v["signatures"] == "checked"
    quick = straits(*args, "--quick", "--head", str(old))
    assert quick.returncode == 0 and json.loads(quick.stdout)["heads"][0]["head"].startswith(
        "checkpoint 5:"
    )
    # a forged SEQ:HASH head fails without --file too (it used to be ignored)
    forged = straits(*args, "--head", "5:" + "ab" * 32)
    assert forged.returncode == 1 and json.loads(forged.stdout)["first_bad"] == 5
    # an unsigned checkpoint and one signed by another key fail; no key to check: bad input
    unsigned = tmp_path / "unsigned"
    unsigned.write_text(old.read_text().split("\n\n")[0] + "\n\n")
    other = tmp_path / "other.key"
    assert straits("ledger", "keygen", "--origin", ORIGIN, "-o", str(other)).returncode == 0
    stranger = tmp_path / "stranger"
    assert (
        straits(
            "ledger", "checkpoint", "--db", db_url, "--key", str(other), "-o", str(stranger)
        ).returncode
        == 1  # the log's latest checkpoint is not signed by it: no fork signed on top of it
    )
    assert (
        straits(
            "ledger",
            "checkpoint",
            "--db",
            db_url,
            "--key",
            str(other),
            "--pubkey",
            f"{keyfile}.pub",  # a rotation: the log's earlier key is trusted
            "-o",
            str(stranger),
        ).returncode
        == 0
    )
    for bad in (unsigned, stranger):
        r = straits(*args, "--head", str(bad))
        assert r.returncode == 1 and "forged or unsigned" in r.stdout, r.stdout + r.stderr
    nokey = straits("ledger", "verify", "--db", db_url, "--head", str(old))
    assert nokey.returncode == 2 and "public key" in nokey.stderr
    # the stored checkpoint by the other key is not trusted by ours: verify says so
    mixed = straits(*args)
    assert mixed.returncode == 1 and "not trustworthy" in json.loads(mixed.stdout)["problem"]


def test_verify_an_export_against_heads(db_url: str, keyfile: Path, tmp_path: Path) -> None:
    fill(db_url, 6)
    cp = tmp_path / "cp"
    assert (
        straits(
            "ledger", "checkpoint", "--db", db_url, "--key", str(keyfile), "-o", str(cp)
        ).returncode
        == 0
    )
    v6 = json.loads(straits("ledger", "verify", "--db", db_url, "--json").stdout)
    fill(db_url, 3)
    export = tmp_path / "ledger.jsonl"
    assert straits("ledger", "export", "--db", db_url, "-o", str(export)).returncode == 0
    base = ("ledger", "verify", "--file", str(export), "--pubkey", pub(keyfile), "--json")
    ok = straits(*base, "--head", str(cp), "--head", f"6:{v6['head_hash']}")
    assert ok.returncode == 0, ok.stdout + ok.stderr  # older heads are not "tampering"
    assert json.loads(ok.stdout)["root_hash"] == verify_store(Store(db_url), Keys()).root_hash
    lines = export.read_text().splitlines()
    export.write_text("\n".join(lines[:4]) + "\n")
    cut = straits(*base, "--head", str(cp))
    assert cut.returncode == 1 and "removed from the end" in json.loads(cut.stdout)["problem"]
    assert json.loads(cut.stdout)["code"] == "tail-removed"  # it had none
    forged = straits(*base, "--head", "3:" + "ab" * 32)
    assert (forged.returncode, json.loads(forged.stdout)["code"]) == (1, "head-forged")
    doc = json.loads(lines[2])
    doc["body"] = doc["body"].replace('"i":2', '"i":7')
    lines[2] = json.dumps(doc)
    export.write_text("\n".join(lines) + "\n")
    bad = straits(*base)
    assert bad.returncode == 1 and json.loads(bad.stdout)["first_bad"] == 3
    assert json.loads(bad.stdout)["code"] == "entry-altered"


def test_receipts_verify_offline_with_only_the_public_key(
    db_url: str, keyfile: Path, tmp_path: Path
) -> None:
    fill(db_url, 11)
    r = tmp_path / "r.json"
    p = straits("ledger", "receipt", "4", "--db", db_url, "--key", str(keyfile), "-o", str(r))
    assert p.returncode == 0, p.stderr
    receipt = json.loads(r.read_text())
    assert receipt["entry"]["seq"] == 4 and receipt["tree_size"] == 11
    assert "prev_hash" not in receipt["entry"]  # nothing about the neighbouring entry
    vkey = Path(pub(keyfile)).read_text().strip()
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("STRAITS_")}
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "ledger",
            "verify-receipt",
            str(r),
            "--pubkey",
            vkey,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_free,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout) == {
        **json.loads(ok.stdout),
        "ok": True,
        "seq": 4,
        "tenant": "b",
        "tenant_seq": 2,
        "tree_size": 11,
    }

    def altered(change: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(r.read_text())
        if change == "body":
            doc["entry"]["body"] = doc["entry"]["body"].replace('"i":3', '"i":4')
        elif change == "tenant":
            doc["entry"]["tenant"] = "a"
        elif change == "seq":
            doc["entry"]["seq"] = 5
        elif change == "proof":
            doc["inclusion_proof"][0] = doc["inclusion_proof"][1]
        elif change == "size":
            doc["tree_size"] = 12
        elif change == "checkpoint":
            doc["checkpoint"] = doc["checkpoint"].replace("\n11\n", "\n12\n")
        return doc

    for change in ("body", "tenant", "seq", "proof", "size", "checkpoint"):
        f = tmp_path / f"{change}.json"
        f.write_text(json.dumps(altered(change)))
        bad = straits("ledger", "verify-receipt", str(f), "--pubkey", vkey)
        assert bad.returncode == 1, (change, bad.stdout, bad.stderr)
        assert "does not verify" in bad.stdout
    for junk in (
        "[]",
        "{}",
        '{"receipt": "straits-ledger-receipt/1", "entry": []}',
        "\x00",
        "[" * 100_000,
        '{"receipt": "straits-ledger-receipt/1", "entry": {"seq": true}}',
    ):
        f = tmp_path / "junk.json"
        f.write_text(junk)
        q = straits("ledger", "verify-receipt", str(f), "--pubkey", vkey)
        assert q.returncode == 2 and "Traceback" not in q.stderr, q.stderr
    missing = straits("ledger", "receipt", "40", "--db", db_url, "--key", str(keyfile))
    assert missing.returncode == 2 and "no ledger entry 40" in missing.stderr


def test_a_witness_catches_a_split_view(
    tmp_path: Path, keyfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log shows party A one history and party B another (two copies of the database
    diverging after entry 4, both signed with the log's key: an operator who holds the key
    can, throwing away the record its signer keeps of what it signed)."""
    a_db, b_db = tmp_path / "a.db", tmp_path / "b.db"
    fill(f"sqlite:///{a_db}", 4)
    shutil.copy(a_db, b_db)
    fill(f"sqlite:///{a_db}", 3, ("a",))
    fill(f"sqlite:///{b_db}", 3, ("mallory",))
    cps = {}
    for name, db in (("a", a_db), ("b", b_db)):
        for size in ("4", "7"):
            out = tmp_path / f"{name}-{size}"
            monkeypatch.setenv("STRAITS_LEDGER_SIGNED", str(tmp_path / f"signed-{name}{size}"))
            if size == "4":
                db4 = tmp_path / f"{name}-4.db"
                shutil.copy(b_db if name == "b" else a_db, db4)
                Store(f"sqlite:///{db4}")
                engine = create_engine(f"sqlite:///{db4}")
                with engine.begin() as c:  # the log as it was at 4 entries
                    c.execute(text("DELETE FROM ledger WHERE seq > 4"))
                    c.execute(text("DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > 4"))
                    h = c.execute(text("SELECT hash FROM ledger WHERE seq = 4")).scalar_one()
                    c.execute(text("UPDATE ledger_head SET seq = 4, hash = :h"), {"h": h})
                engine.dispose()
                src = db4
            else:
                src = db
            p = straits(
                "ledger",
                "checkpoint",
                "--db",
                f"sqlite:///{src}",
                "--key",
                str(keyfile),
                "-o",
                str(out),
            )
            assert p.returncode == 0, p.stderr
            cps[f"{name}{size}"] = out
    assert cps["a4"].read_text() == cps["b4"].read_text()  # the common history
    state_a = tmp_path / "witness-a.json"
    w = ("ledger", "witness", "--pubkey", pub(keyfile), "--state", str(state_a), "--json")
    first = straits(*w, "--checkpoint", str(cps["a4"]))
    assert (
        first.returncode == 0 and json.loads(first.stdout)["checkpoints"][0]["status"] == "accepted"
    )
    unproven = straits(*w, "--checkpoint", str(cps["a7"]))
    assert unproven.returncode == 1
    assert json.loads(unproven.stdout)["checkpoints"][0]["status"] == "unproven"
    grown = straits(*w, "--checkpoint", str(cps["a7"]), "--db", f"sqlite:///{a_db}")
    assert grown.returncode == 0, grown.stdout
    assert json.loads(grown.stdout)["checkpoints"][0]["status"] == "accepted"
    again = straits(*w, "--checkpoint", str(cps["a7"]))
    assert json.loads(again.stdout)["checkpoints"][0]["status"] == "seen"
    # B's checkpoint of the same size, shown to A's witness: two signed roots for 7 entries
    split = straits(*w, "--checkpoint", str(cps["b7"]))
    assert split.returncode == 1
    out = json.loads(split.stdout)["checkpoints"][0]
    assert out["status"] == "split-view" and len(out["evidence"]) == 2
    # B's witness, having seen B's 7, cannot get B's log to prove A's history
    state_b = tmp_path / "witness-b.json"
    wb = ("ledger", "witness", "--pubkey", pub(keyfile), "--state", str(state_b), "--json")
    assert straits(*wb, "--checkpoint", str(cps["b7"])).returncode == 0
    fork = straits(*wb, "--checkpoint", str(cps["a4"]), "--db", f"sqlite:///{b_db}")
    assert json.loads(fork.stdout)["checkpoints"][0]["status"] == "older-consistent"
    forged = tmp_path / "forged"
    forged.write_text(cps["a7"].read_text().replace(f"{ORIGIN}\n7\n", f"{ORIGIN}\n8\n"))
    bad = straits(*wb, "--checkpoint", str(forged))
    assert bad.returncode == 1 and json.loads(bad.stdout)["checkpoints"][0]["status"] == "rejected"
    for junk in ("{" * 100_000, '{"checkpoint": 5}', "\xff\xfe"):  # hostile documents: exit 2
        forged.write_text(junk, encoding="latin-1")
        assert straits(*wb, "--checkpoint", str(forged)).returncode == 2
    state_b.write_text("[" * 100_000)
    assert straits(*wb, "--checkpoint", str(cps["b7"])).returncode == 2


# --- crashes -------------------------------------------------------------------------------------
KILLED = textwrap.dedent("""
    import sys, time
    from straits.store import Store
    from straits.store.ledger import append
    store = Store(sys.argv[1])
    def hang(entry):
        print("appending", entry.seq, flush=True)
        time.sleep(120)
    with store.write() as s:
        append(s, tenant="t", actor="doomed", kind="check", body={"half": True},
               before_commit=hang)
""")


def test_kill_9_mid_append_leaves_a_verifiable_log(db_url: str, keyfile: Path) -> None:
    """Entry 8 completes three levels of the tree: its leaf and nodes are written, not
    committed, when the process is killed."""
    fill(db_url, 7)
    store = Store(db_url)
    keys = configured(keyfile)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, db_url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["appending", "8"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    v = verify_store(store, keys)
    assert v.ok and v.entries == 7, v.problem
    fill(db_url, 2)  # the lock is released and the tree goes on from 7
    from straits.store import checkpoints

    assert keys.signer is not None
    cp = checkpoints.issue(store, keys.signer)
    v = verify_store(store, keys)
    assert v.ok and v.entries == 9 and cp.checkpoint.size == 9, v.problem


@pytest.mark.parametrize(
    "command",
    [["ledger", "checkpoint"], ["ledger", "verify"], ["ledger", "receipt", "1", "-o", "r.json"]],
)
def test_a_bad_key_from_the_variable_is_named_as_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """user32: `export STRAITS_LEDGER_KEY=ledger.key` (the README tour) naming a file that is not
    there made `ledger checkpoint|verify|receipt` say `--key: cannot read ...`, a flag the user
    never typed: click had filled --key from the variable. The error names the variable; a
    --key typed stays --key; a file that is no key says what is expected once."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    fill(db, 1, ("a",))
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.key"
    monkeypatch.setenv("STRAITS_LEDGER_KEY", str(missing))
    p = straits(*command, "--db", db)
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {missing}: STRAITS_LEDGER_KEY: "), p.stderr
    p = straits(*command, "--db", db, "--key", str(missing))
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {missing}: --key: "), p.stderr
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    junk.chmod(0o600)
    monkeypatch.setenv("STRAITS_LEDGER_KEY", str(junk))
    p = straits(*command, "--db", db)
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {junk}: STRAITS_LEDGER_KEY: ")
    assert p.stderr.count("(expected") == 1, p.stderr


@pytest.mark.parametrize("bad", ["/dev/null", "DIR", "SINCE", "KEY", "PUB", "DB"])
def test_a_checkpoint_refused_as_bad_input_is_not_signed(
    db_url: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, bad: str
) -> None:
    """`ledger checkpoint --key K -o /dev/null` (a directory, a --since past the log) was exit
    2 after it had signed: the checkpoint stored and the signer's record moved on (a fresh-eye
    attack). Exit 2 means nothing was done."""
    key = new_keyfile(tmp_path_factory)
    fill(db_url, 3)
    args = ["ledger", "checkpoint", "--db", db_url, "--key", str(key)]
    held = {"KEY": str(key), "PUB": str(key) + ".pub", "DB": db_url.removeprefix("sqlite:///")}
    if bad == "SINCE":
        args += ["--since", "99"]
    elif bad in held:
        if bad == "DB" and not db_url.startswith("sqlite:///"):
            pytest.skip("the database is a file only on SQLite")
        args += ["-o", held[bad]]  # files this run holds: refused, but once it had signed
    else:
        args += ["-o", str(tmp_path) if bad == "DIR" else bad]
    p = straits(*args)
    assert p.returncode == 2, p.stderr
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_checkpoints")).scalar() == 0
    engine.dispose()
    assert not Path(str(key) + ".signed").exists()
