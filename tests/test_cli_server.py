"""`straits --server URL`: every command that the API serves, run by the real CLI against a
real `straits serve` (uvicorn) on a free port, answers as it does locally. Slow: a server
process and a dozen CLI processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from served import free_port, served
from test_cli import ESTIMATE, one_line_error
from test_rules_engine import DESIGN_REQUEST

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
H20 = ROOT / "examples" / "h20-2025.yaml"

pytestmark = pytest.mark.slow


def straits(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        input=stdin,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


class Server:
    def __init__(self, url: str, db: str, token: str) -> None:
        self.url, self.db, self.token = url, db, token

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return straits("--server", self.url, *args, stdin=stdin, env={"STRAITS_TOKEN": self.token})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    db = f"sqlite:///{tmp / 'server.db'}"
    token = straits(
        "tokens", "create", "--tenant", "hz-cloud", "--role", "planner", "--db", db
    ).stdout.strip()
    with served(db, log=tmp / "server.log") as url:
        yield Server(url, db, token)


def test_reads_answer_as_locally(server: Server) -> None:
    for args, stdin in (
        (("check", "--json"), json.dumps(DESIGN_REQUEST)),
        (("estimate", "--json"), json.dumps(ESTIMATE)),
        (("chips", "-o", "json"), None),
        (("rules", "list", "--date", "2025-06-01", "--json"), None),
    ):
        remote, local = server.run(*args, stdin=stdin), straits(*args, stdin=stdin)
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout) == json.loads(local.stdout), args
    table = server.run("check", stdin=json.dumps(DESIGN_REQUEST))
    assert "CONDITIONAL" in table.stdout and "cn-cbdf-2024-assessment" in table.stdout


def test_plans_are_made_recorded_shown_exported_and_rechecked(
    server: Server, tmp_path: Path
) -> None:
    # made on 2025-04-08 under the shipped rules: the H20s would ship after the letter of
    # 2025-04-09, so the serving stage is not placed on bought chips (exit 3: a stage unplaced)
    p = server.run("plan", str(H20), "--solver", "greedy", "--record", "-o", "json")
    assert p.returncode == 3, p.stderr
    doc = json.loads(p.stdout)
    assert doc["ledger_seq"] and "submitted" in p.stderr
    assert [u["lost_codes"].get("procurement") for u in doc["unplaced"]] == [1]
    shown = server.run("plan", doc["id"], "--show", "-o", "json")
    assert json.loads(shown.stdout) == doc
    # what the plan placed stays lawful after the letter: nothing to re-plan
    rechecked = server.run("plan", doc["id"][:8], "--recheck", "--date", "2025-04-10")
    assert rechecked.returncode == 0, rechecked.stdout + rechecked.stderr
    out = tmp_path / "jobs"
    e = server.run("export", doc["id"], "--to", "slurm", "-o", str(out), "--json")
    assert e.returncode == 0, e.stderr
    assert json.loads(e.stdout)["plan_id"] == doc["id"]
    local = tmp_path / "local"
    f = tmp_path / "doc.json"
    f.write_text(json.dumps(doc))
    assert straits("export", str(f), "--to", "slurm", "-o", str(local)).returncode == 0
    assert {x.relative_to(out): x.read_text() for x in out.rglob("*") if x.is_file()} == {
        x.relative_to(local): x.read_text() for x in local.rglob("*") if x.is_file()
    }
    archive = server.run("export", str(f), "--to", "slurm", "-o", str(tmp_path / "j.tgz"))
    assert archive.returncode == 0 and (tmp_path / "j.tgz").stat().st_size > 0
    here = straits("export", str(f), "--to", "slurm", "-o", str(tmp_path / "here.tgz"))
    wrote = [ln for ln in here.stdout.splitlines() if ln.startswith("wrote ")]
    assert wrote and wrote[0] != "wrote 0 file(s)" and wrote[0] in archive.stdout  # not 0
    # report: a recorded plan's (by prefix) comes from the server, which proves it
    rep = server.run("report", doc["id"][:8], "-o", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr
    assert doc["id"] in rep.stderr and (tmp_path / "r.html").stat().st_size > 0
    impact = server.run(
        "impact", "--date", "2025-04-10", "--plan", doc["id"], "--no-replan", "--json"
    )
    assert impact.returncode == 0 and not json.loads(impact.stdout)["plans"][0]["blocking"]
    entries = json.loads(server.run("ledger", "show", "--json").stdout)
    assert [e["seq"] for e in entries] == [doc["ledger_seq"]]
    # a tenant's view: its numbers, the body an object as locally, no zeros or blank hashes
    assert isinstance(entries[0]["body"], dict) and "hash" not in entries[0]
    assert "tenant_seq" not in entries[0] and "content" not in entries[0]
    table = server.run("ledger", "show")
    assert "numbered within the tenant" in table.stdout and "hash" not in table.stdout
    verified = server.run("ledger", "verify")
    assert verified.returncode == 0 and "admins only" in verified.stdout
    exported = server.run("ledger", "export", "-o", "-")
    assert exported.returncode == 0, exported.stderr
    (line,) = exported.stdout.splitlines()
    # a tenant's view (its numbers, no hashes): not a log to verify, and not called tampered
    assert json.loads(line)["seq"] == 1 and "hash" not in json.loads(line)
    v = straits("ledger", "verify", "--file", "-", stdin=exported.stdout)
    assert v.returncode == 2 and "receipt" in v.stderr and "altered" not in v.stdout + v.stderr


def test_errors_name_the_local_file_and_the_way_out(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("chip: H100-SXM", "chip: H300", 1))
    one_line_error(server.run("-q", "plan", str(bad)), str(bad), "H300")
    one_line_error(server.run("tokens", "list"), "--server")
    anon = straits("--server", server.url, "chips")
    assert anon.returncode == 1 and "STRAITS_TOKEN" in anon.stderr
    nowhere = straits(
        "--server", f"http://127.0.0.1:{free_port()}", "chips", env={"STRAITS_TOKEN": server.token}
    )
    assert nowhere.returncode == 1 and "cannot reach" in nowhere.stderr
    assert "Traceback" not in anon.stderr + nowhere.stderr


def test_a_recorded_check_retried_with_its_request_id_records_once(server: Server) -> None:
    """`check --record --request-id` through the server: the key travels as the
    `Idempotency-Key` header; a retry prints the first decision, another check is exit 2.
    Last in the file: the module's server is shared, and the plan test counts on a ledger that
    holds its plan alone."""

    def checks() -> int:  # the module's server is shared: count this test's own entries
        entries = server.run("ledger", "show", "--json")
        assert entries.returncode == 0, entries.stderr
        return [e["kind"] for e in json.loads(entries.stdout)].count("check")

    before = checks()
    args = ("check", "--json", "--record", "--request-id", "cli-server-1")
    first = server.run(*args, stdin=json.dumps(DESIGN_REQUEST))
    again = server.run(*args, stdin=json.dumps(DESIGN_REQUEST))
    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    other = server.run(*args, stdin=json.dumps({**DESIGN_REQUEST, "date": "2025-07-01"}))
    assert other.returncode == 2 and "Idempotency-Key" in other.stderr
    assert checks() == before + 1
