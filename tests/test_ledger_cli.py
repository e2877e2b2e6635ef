"""The ledger's commands end to end (real subprocesses): keygen, checkpoint, verify with older
heads (with and without --file), receipts checked offline with nothing but the public key,
witnesses catching a split view; migration of a ledger made by the first schema; kill -9
mid-append."""

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


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "ledger.key"
    p = straits_process("ledger", "keygen", "--origin", ORIGIN, "-o", str(path), "--json")
    assert p.returncode == 0, p.stderr  # the real entry point, once
    out = json.loads(p.stdout)
    assert out["pubkey"].startswith(ORIGIN + "+")
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(out["pubkey_file"]).read_text().strip() == out["pubkey"]
    return path


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
    doc = json.loads(lines[2])
    doc["body"] = doc["body"].replace('"i":2', '"i":7')
    lines[2] = json.dumps(doc)
    export.write_text("\n".join(lines) + "\n")
    bad = straits(*base)
    assert bad.returncode == 1 and json.loads(bad.stdout)["first_bad"] == 3


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


def test_a_witness_catches_a_split_view(tmp_path: Path, keyfile: Path) -> None:
    """The log shows party A one history and party B another (two copies of the database
    diverging after entry 4, both signed with the log's key)."""
    a_db, b_db = tmp_path / "a.db", tmp_path / "b.db"
    fill(f"sqlite:///{a_db}", 4)
    shutil.copy(a_db, b_db)
    fill(f"sqlite:///{a_db}", 3, ("a",))
    fill(f"sqlite:///{b_db}", 3, ("mallory",))
    cps = {}
    for name, db in (("a", a_db), ("b", b_db)):
        for size in ("4", "7"):
            out = tmp_path / f"{name}-{size}"
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


# --- migration from the first schema -------------------------------------------------------------
def test_a_ledger_made_by_the_first_schema_verifies_after_the_upgrade(
    db_url: str, tmp_path: Path
) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from straits.store.ledger import GENESIS, Entry, canonical

    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        prev = GENESIS
        for seq in range(1, 12):  # entries exactly as the first version wrote them
            e = Entry(
                seq,
                f"2026-01-0{1 + seq % 9}T00:00:00.000000+00:00",
                "ab"[seq % 2],
                "old",
                "check",
                canonical({"i": seq}),
                prev,
                "",
            )
            h = e.expected_hash()
            conn.execute(
                text(
                    "INSERT INTO ledger (seq, recorded_at, tenant, actor, kind, body, "
                    "prev_hash, hash) VALUES (:s, :r, :t, :a, :k, :b, :p, :h)"
                ),
                {
                    "s": seq,
                    "r": e.recorded_at,
                    "t": e.tenant,
                    "a": e.actor,
                    "k": e.kind,
                    "b": e.body,
                    "p": prev,
                    "h": h,
                },
            )
            prev = h
        conn.execute(
            text("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 11, :h)"), {"h": prev}
        )
    engine.dispose()
    published = f"11:{prev}"
    store = Store(db_url)  # upgrades to the latest revision, building the tree
    v = verify_store(store, Keys())
    assert v.ok, v.problem
    assert [e.tenant_seq for e in ledger.entries(store, tenant="b")] == list(range(1, 7))
    fill(db_url, 2)
    p = straits("ledger", "verify", "--db", db_url, "--head", published, "--json")
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["entries"] == 13


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


# --- a real server, a witness and a tenant over HTTP ---------------------------------------------
@pytest.mark.slow
def test_a_witness_and_a_tenant_against_a_real_server(tmp_path: Path, keyfile: Path) -> None:
    import socket
    import time
    import urllib.request

    from straits.store.tokens import create_token

    db = f"sqlite:///{tmp_path / 'served.db'}"
    store = Store(db)
    admin = create_token(store, "ops", "admin")[0]
    tenant = create_token(store, "a", "planner")[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "STRAITS_LEDGER_KEY": str(keyfile)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "straits",
            "serve",
            "--port",
            str(port),
            "--db",
            db,
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def call(path: str, token: str, body: object = None) -> tuple[dict[str, str], object]:
        req = urllib.request.Request(
            base + path,
            method="POST" if body else "GET",
            data=json.dumps(body).encode() if body else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return dict(r.headers), json.loads(r.read())

    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        from test_rules_engine import DESIGN_REQUEST

        for _ in range(3):
            call("/v1/check?record=true", tenant, DESIGN_REQUEST)
        call("/v1/ledger/checkpoint?fresh=true", admin)
        state = tmp_path / "w.json"
        w = (
            "ledger",
            "witness",
            "--pubkey",
            pub(keyfile),
            "--state",
            str(state),
            "--json",
            "--token",
            tenant,
            "--checkpoint",
            base + "/v1/ledger/checkpoint",
        )
        assert straits(*w).returncode == 0
        for _ in range(2):
            call("/v1/check?record=true", tenant, DESIGN_REQUEST)
        call("/v1/ledger/checkpoint?fresh=true", admin)
        grown = straits(*w)  # asks with since=3 and checks the proof that comes back
        assert grown.returncode == 0, grown.stdout + grown.stderr
        assert json.loads(grown.stdout)["checkpoints"][0]["message"].startswith(
            "checkpoint 5 extends 3"
        )
        _, receipt = call("/v1/ledger/entries/2/receipt", tenant)
        r = tmp_path / "r.json"
        r.write_text(json.dumps(receipt))
        ok = straits("ledger", "verify-receipt", str(r), "--pubkey", pub(keyfile))
        assert ok.returncode == 0 and "receipt verifies" in ok.stdout
        # the same through the CLI's --server mode: the server's receipt of the tenant's entry
        # 2 and its latest checkpoint, never the local database's (there is none here)
        remote = ("--server", base, "--token", tenant)
        r2 = tmp_path / "r2.json"
        got = straits_process(*remote, "ledger", "receipt", "2", "-o", str(r2))
        assert got.returncode == 0, got.stderr
        assert json.loads(r2.read_text()) == receipt
        cp = straits_process(*remote, "ledger", "checkpoint", "--since", "3")
        assert cp.returncode == 0, cp.stderr
        assert json.loads(cp.stdout)["size"] == 5
        assert json.loads(cp.stdout)["consistency"]["from"] == 3
        missing = straits_process(*remote, "ledger", "receipt", "99")
        assert missing.returncode == 2 and "no ledger entry 99" in missing.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("first_bad", "entries", "says"),
    [
        (3, 2, "2 entries verified before it"),  # the chain walk stopped at entry 3
        (1, 6, "the hash chain of its 6 entries verifies"),  # a stored row, found after the walk
        (6, 6, "the hash chain of its 6 entries verifies"),  # a tree node or checkpoint
        (None, 6, "the hash chain of its 6 entries verifies"),
    ],
)
def test_a_broken_ledger_says_what_verified_before_the_problem(
    first_bad: int | None, entries: int, says: str
) -> None:
    from straits.cli.ledger_verdicts import verified_part
    from straits.store.ledger import Verification

    v = Verification(
        ok=False,
        entries=entries,
        head_seq=entries,
        head_hash="00",
        first_bad=first_bad,
        problem="x",
    )
    assert verified_part(v) == says


def test_a_witness_sends_its_token_to_the_log_only_not_where_it_redirects() -> None:
    """urllib keeps every header on a redirect: a log (or anyone on a plain-HTTP path to it)
    answering 302 to another host was sent the witness's bearer token."""
    import http.server
    import threading

    from straits.cli.ledger_proof_cmd import _get

    seen: list[str | None] = []

    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"checkpoint")

        def log_message(self, *args: Any) -> None:
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), Other)
    where = f"http://localhost:{other.server_address[1]}/elsewhere"  # another origin

    class Log(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(302)
            self.send_header("Location", where)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    log = http.server.HTTPServer(("127.0.0.1", 0), Log)
    for server in (other, log):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _get(f"http://127.0.0.1:{log.server_address[1]}/away", "st_a_b") == "checkpoint"
        assert seen == ["Bearer st_a_b", None]
    finally:
        for server in (other, log):
            server.shutdown()
            server.server_close()


def test_a_witness_gives_up_on_a_log_that_dribbles_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STRAITS_WITNESS_TIMEOUT bounded each read of the socket, not the fetch: a log sending
    a byte just inside it each time held a witness (a cron job) for as long as it liked."""
    import http.server
    import threading
    import time

    from straits.cli.ledger_proof_cmd import _get
    from straits.errors import InputError

    stop = threading.Event()

    class Dribble(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if stop.is_set():
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dribble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STRAITS_WITNESS_TIMEOUT", "1")
    try:
        with pytest.raises(InputError, match="within"):
            _get(f"http://127.0.0.1:{server.server_address[1]}/checkpoint", None)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o644, True)])
def test_a_signing_key_others_can_read_is_used_with_a_warning(
    keyfile: Path, tmp_path: Path, mode: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """ssh refuses a private key others can read; Straits warns (Kubernetes mounts secrets
    0644 by default) and goes on."""
    from straits.store.keys import load_signer

    copy = tmp_path / f"key-{mode:o}"
    shutil.copyfile(keyfile, copy)
    copy.chmod(mode)
    with caplog.at_level("WARNING", logger="straits.store.keys"):
        signer = load_signer(copy)
    assert signer.name == ORIGIN
    shown = [r for r in caplog.records if r.name == "straits.store.keys" and str(copy) in r.message]
    assert bool(shown) is warned


def test_verify_one_tenant_names_its_own_first_bad_entry(db_url: str, keyfile: Path) -> None:
    """`ledger verify --tenant T` answers what T's own GET /v1/ledger/verify answers: T's
    entries proven and numbered as T numbers them; another tenant's damage is not T's."""
    fill(db_url, 6)  # a: 1, 3, 5 (its 1, 2, 3); b: 2, 4, 6
    assert straits("ledger", "checkpoint", "--key", str(keyfile), "--db", db_url).returncode == 0
    ok = straits(
        "ledger", "verify", "--db", db_url, "--tenant", "a", "--key", str(keyfile), "-o", "json"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {
        "tenant": "a",
        "ok": True,
        "entries": 3,
        "checked": 3,
        "signatures": "checked",
        "first_bad": None,
        "problem": None,
    }
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET actor = 'mallory' WHERE seq = 3"))
    engine.dispose()
    bad = straits("ledger", "verify", "--db", db_url, "--tenant", "a", "--json")
    assert bad.returncode == 1
    assert (json.loads(bad.stdout)["first_bad"], json.loads(bad.stdout)["checked"]) == (2, 1)
    table = straits("ledger", "verify", "--db", db_url, "--tenant", "a")
    assert table.returncode == 1 and "Traceback" not in table.stderr + table.stdout
    assert straits("ledger", "verify", "--db", db_url, "--tenant", "b").returncode == 0
    for extra in (["--quick"], ["--file", "-"], ["--head", "1:" + "0" * 64]):
        refused = straits("ledger", "verify", "--db", db_url, "--tenant", "a", *extra, stdin="")
        assert refused.returncode == 2, (extra, refused.stderr)
