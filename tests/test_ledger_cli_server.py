"""The ledger's commands against a real server and its tenants: a witness and a tenant over
HTTP (checkpoints, receipts, `--server` mode), a broken ledger's partial verification, a
witness's token kept from redirects and its deadline against a dribbling log, signing keys
others can read, and one tenant's own verification. Split from test_ledger_cli.py, whose
helpers it uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from served import served
from straits.store import Store
from test_cli import straits as straits_process
from test_ledger_cli import ORIGIN, fill, new_keyfile, pub, straits


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_keyfile(tmp_path_factory)


# --- a real server, a witness and a tenant over HTTP ---------------------------------------------
@pytest.mark.slow
def test_a_witness_and_a_tenant_against_a_real_server(tmp_path: Path, keyfile: Path) -> None:
    import urllib.request

    from straits.store.tokens import create_token

    db = f"sqlite:///{tmp_path / 'served.db'}"
    store = Store(db)
    admin = create_token(store, "ops", "admin")[0]
    tenant = create_token(store, "a", "planner")[0]
    with served(db, env={"STRAITS_LEDGER_KEY": str(keyfile)}) as base:

        def call(path: str, token: str, body: object = None) -> tuple[dict[str, str], object]:
            req = urllib.request.Request(
                base + path,
                method="POST" if body else "GET",
                data=json.dumps(body).encode() if body else None,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                return dict(r.headers), json.loads(r.read())

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

    from straits.cli.ledger_fetch import http_get

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
        assert http_get(f"http://127.0.0.1:{log.server_address[1]}/away", "st_a_b") == "checkpoint"
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

    from straits.cli.ledger_fetch import http_get
    from straits.errors import RemoteError

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
        with pytest.raises(RemoteError, match="within"):
            http_get(f"http://127.0.0.1:{server.server_address[1]}/checkpoint", None)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("answer", "code"), [(None, 1), (503, 1), (404, 2)])
def test_a_witness_whose_log_cannot_be_reached_is_exit_1(
    tmp_path: Path, keyfile: Path, answer: int | None, code: int
) -> None:
    """user32: README and docs/cli.md say a server that cannot be reached (or fails, 5xx) is
    exit 1 and bad input exit 2; a witness's `--checkpoint URL` that refused the connection or
    answered 503 was exit 2, as if the URL were wrong, so a cron job's alert read "bad input"
    while the log was down. A 404 (a URL that names nothing) stays exit 2."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(answer or 500)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    if answer is None:
        server.server_close()  # nothing listens there: the connection is refused
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/ledger/checkpoint"
    state = tmp_path / "w.json"
    try:
        p = straits(
            "ledger", "witness", "--pubkey", pub(keyfile), "--state", str(state),
            "--checkpoint", url,
        )  # fmt: skip
    finally:
        if answer is not None:
            server.shutdown()
            server.server_close()
    assert p.returncode == code, p.stderr
    assert p.stderr.startswith(f"error: {url}"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not state.exists()  # nothing recorded


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
        "code": None,
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
    assert json.loads(bad.stdout)["code"] == "entry-altered"
    table = straits("ledger", "verify", "--db", db_url, "--tenant", "a")
    assert table.returncode == 1 and "Traceback" not in table.stderr + table.stdout
    assert straits("ledger", "verify", "--db", db_url, "--tenant", "b").returncode == 0
    for extra in (["--quick"], ["--file", "-"], ["--head", "1:" + "0" * 64]):
        refused = straits("ledger", "verify", "--db", db_url, "--tenant", "a", *extra, stdin="")
        assert refused.returncode == 2, (extra, refused.stderr)


@pytest.mark.parametrize(
    ("status", "text", "since", "refused"),
    [
        (400, "since=5 is beyond the checkpoint's 3 entries", 5, 5),
        (404, "the log has issued no checkpoint yet", 5, "InputError"),
        (404, "the log has issued no checkpoint yet", None, "InputError"),
        (400, "unknown parameter", 5, "InputError"),
    ],
)
def test_a_log_behind_the_witness_is_fetched_again_and_said(
    status: int, text: str, since: int | None, refused: int | str
) -> None:
    """A witness that had accepted 5 entries, shown the log rolled back to 3, was exit 2 ("bad
    input") from the server's 400 to the witness's own ``since`` (a fresh-eye attack). The
    checkpoint is fetched again without it, and the refusal kept for the witness to judge
    (``went_back``): a second log witnessed from the same state is trusted on first use, not
    blamed (a review). Any other 4xx stays the input's."""
    import http.server
    import threading

    from straits.cli.ledger_fetch import fetch_checkpoint
    from straits.errors import InputError

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = (status, json.dumps({"status": status, "detail": text}).encode())
            if "since=" not in self.path and status == 400 and "beyond" in text:
                code, body = 200, b"CHECKPOINT"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/ledger/checkpoint"
    try:
        if isinstance(refused, int):
            got = fetch_checkpoint(url, None, since)
            assert (got.text, got.refused_since) == ("CHECKPOINT", refused)
        else:
            with pytest.raises(InputError):
                fetch_checkpoint(url, None, since)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "refused", "after"),
    [
        ("seen", 5, "rolled-back"),
        ("older-consistent", 5, "rolled-back"),
        ("unproven", 5, "rolled-back"),  # the log holds no tree of 5 to prove 3 -> 5 to
        ("unproven", None, "unproven"),
        ("accepted", 5, "accepted"),  # another log: trusted on first use
        ("seen", None, "seen"),  # an older checkpoint a peer offers
        ("split-view", 5, "split-view"),
    ],
)
def test_a_log_gone_back_is_not_ok(status: str, refused: int | None, after: str) -> None:
    from straits.store.witness import Outcome, went_back

    out = went_back(Outcome("url", status, "m", 3), refused)
    assert out.status == after
    assert out.ok == (after in ("accepted", "seen", "older-consistent"))
