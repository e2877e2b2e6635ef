"""A witness shown consistency proofs that are not proofs (hostile pass atk39).

``ledger witness --log URL`` asks a server for the proof between the checkpoint it saw last and
the one it is offered. A server answering a proof holding a number was a TypeError traceback,
one nested deeper than the JSON parser goes a RecursionError traceback, and a hash of another
size than 32 bytes was reported as a split view (exit 1 with both signed checkpoints as
"evidence", though nothing shows they disagree). Each is now ``unproven``: the log gave no proof.
A proof attached to the checkpoint document itself (``GET /v1/ledger/checkpoint?since=N``)
with such a hash, or sizes that are no whole numbers, is a malformed document, exit 2.

Also here: checkpoints and receipts as editors save them (CRLF line ends, a byte-order mark),
which were called forged or not JSON.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits.store import Store, ledger
from test_ledger_cli import new_keyfile, straits


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_keyfile(tmp_path_factory)


@pytest.fixture
def log(tmp_path: Path, key: Path) -> tuple[Path, Path, Path, dict[str, object]]:
    """A log with a checkpoint at 3 witnessed, and its checkpoint at 5 with the proof 3 -> 5:
    (state, the .pub, the note of 5 as a file, the document of 5)."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)

    def grow(n: int) -> None:
        for i in range(n):
            ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})

    grow(3)
    cp3 = tmp_path / "cp3"
    assert (
        straits("ledger", "checkpoint", "--db", db, "--key", str(key), "-o", str(cp3)).returncode
        == 0
    )
    state, pub = tmp_path / "w.json", str(key) + ".pub"
    assert (
        straits(
            "ledger", "witness", "--pubkey", pub, "--state", str(state), "--checkpoint", str(cp3)
        ).returncode
        == 0
    )
    grow(2)
    r = straits("ledger", "checkpoint", "--db", db, "--key", str(key), "--since", "3")
    doc = json.loads(r.stdout)
    note = tmp_path / "cp5"
    note.write_text(doc["checkpoint"])
    store.close()
    return state, Path(pub), note, doc


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    """A server answering every GET with the body in the list (JSON)."""
    body: list[bytes] = [b"{}"]

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body[0])))
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *args: object) -> None:
            return None

    srv = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", body
    srv.shutdown()
    srv.server_close()


NOT_PROOFS = [
    ("a number", b'{"proof": [1]}'),
    ("a short hash", b'{"proof": ["AAAA"]}'),
    ("nested too deep", b'{"proof": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("an object", b'{"proof": [{}]}'),
]


@pytest.mark.parametrize(("what", "answer"), NOT_PROOFS, ids=[n[0] for n in NOT_PROOFS])
def test_a_server_answering_no_proof_leaves_the_checkpoint_unproven(
    log: tuple[Path, Path, Path, dict[str, object]],
    server: tuple[str, list[bytes]],
    what: str,
    answer: bytes,
) -> None:
    state, pub, note, _ = log
    url, body = server
    body[0] = answer
    before = state.read_text()
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(state),
        "--checkpoint", str(note), "--log", url, "--json",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)["checkpoints"][0]
    assert (out["status"], out["evidence"]) == ("unproven", [])
    assert json.loads(state.read_text())["logs"] == json.loads(before)["logs"]


def test_the_honest_proof_is_accepted(
    log: tuple[Path, Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    state, pub, _, doc = log
    f = tmp_path / "cp5.json"
    f.write_text(json.dumps(doc))
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(state), "--checkpoint", str(f)
    )
    assert r.returncode == 0, r.stdout + r.stderr


ATTACHED = [
    ("a short hash", {"proof": ["AAAA"]}),
    ("from as a float", {"from": 3.0}),
    ("to as a boolean", {"to": True}),
    ("from as text", {"from": "3"}),
]


@pytest.mark.parametrize(("what", "change"), ATTACHED, ids=[a[0] for a in ATTACHED])
def test_a_malformed_attached_proof_is_bad_input_not_a_split_view(
    log: tuple[Path, Path, Path, dict[str, object]],
    tmp_path: Path,
    what: str,
    change: dict[str, object],
) -> None:
    state, pub, _, doc = log
    consistency = doc["consistency"]
    assert isinstance(consistency, dict)
    f = tmp_path / "cp5.json"
    f.write_text(json.dumps({**doc, "consistency": {**consistency, **change}}))
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(state), "--checkpoint", str(f)
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "consistency" in r.stderr


def test_a_checkpoint_url_naming_since_is_sent_the_witness_own_once(
    log: tuple[Path, Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """A witness adds ``since`` (its latest size) to a server's checkpoint URL: one that named
    ``since`` too was sent it twice, which the server refuses (400), so the witness could not
    fetch the checkpoint at all."""
    state, pub, _, doc = log
    asked: list[str] = []
    body = json.dumps(doc).encode()

    class Log(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    srv = http.server.HTTPServer(("127.0.0.1", 0), Log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1/ledger/checkpoint?since=1"
        r = straits(
            "ledger", "witness", "--pubkey", str(pub), "--state", str(state), "--checkpoint", url
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert asked == ["/v1/ledger/checkpoint?since=3"]


def test_a_checkpoint_file_with_crlf_line_ends_is_the_checkpoint(
    log: tuple[Path, Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """A published checkpoint that went through git's autocrlf (or a Windows editor) has CRLF
    line ends: `ledger verify --head` called it "forged or unsigned" and the witness rejected
    it, exit 1. A note never holds a CR and the signature is checked on the restored text, so
    it is the checkpoint; one altered besides is still refused."""
    _, pub, note, _ = log
    state = tmp_path / "fresh.json"  # a witness seeing its first checkpoint
    crlf = tmp_path / "cp5-crlf"
    crlf.write_bytes(note.read_bytes().replace(b"\n", b"\r\n"))
    r = straits(
        "ledger", "witness", "--pubkey", str(pub), "--state", str(state), "--checkpoint", str(crlf)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    forged = tmp_path / "cp5-forged"
    forged.write_bytes(crlf.read_bytes().replace(b"\r\n5\r\n", b"\r\n4\r\n"))
    assert forged.read_bytes() != crlf.read_bytes()
    r = straits(
        "ledger",
        "witness",
        "--pubkey",
        str(pub),
        "--state",
        str(state),
        "--checkpoint",
        str(forged),
    )
    assert r.returncode == 1


def test_a_checkpoint_file_with_a_byte_order_mark_is_the_checkpoint(
    log: tuple[Path, Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """A checkpoint (or the checkpoint route's JSON) saved with a UTF-8 byte-order mark was
    "forged or unsigned" (the mark read as part of the log's name) or not JSON."""
    _, pub, note, doc = log
    for i, text in enumerate((note.read_text(), json.dumps(doc))):
        f = tmp_path / f"bom{i}"
        f.write_bytes(b"\xef\xbb\xbf" + text.encode())
        r = straits(
            "ledger", "witness", "--pubkey", str(pub), "--state", str(tmp_path / f"w{i}.json"),
            "--checkpoint", str(f),
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_receipt_saved_with_a_byte_order_mark_verifies(key: Path, tmp_path: Path) -> None:
    """`ledger verify-receipt` of a receipt saved with a UTF-8 byte-order mark (Notepad) was
    'not JSON', exit 2."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    ledger.record(store, tenant="a", actor="t", kind="check", body={"i": 1})
    store.close()
    r = straits("ledger", "receipt", "1", "--db", db, "--key", str(key))
    assert r.returncode == 0, r.stderr
    f = tmp_path / "r.json"
    f.write_bytes(b"\xef\xbb\xbf" + r.stdout.encode())
    r = straits("ledger", "verify-receipt", str(f), "--pubkey", str(key) + ".pub")
    assert r.returncode == 0, r.stdout + r.stderr


def test_key_files_saved_with_a_byte_order_mark_are_read(key: Path, tmp_path: Path) -> None:
    """A key or .pub file saved with a UTF-8 byte-order mark was 'not ASCII text', exit 2."""
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    ledger.record(store, tenant="a", actor="t", kind="check", body={"i": 1})
    store.close()
    bom_key, bom_pub = tmp_path / "k", tmp_path / "k.pub"
    bom_key.write_bytes(b"\xef\xbb\xbf" + key.read_bytes())
    bom_key.chmod(0o600)
    bom_pub.write_bytes(b"\xef\xbb\xbf" + Path(str(key) + ".pub").read_bytes())
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(bom_key)).returncode == 0
    r = straits("ledger", "verify", "--db", db, "--pubkey", str(bom_pub), "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["signatures"] == "checked", r.stderr
