"""A flag a command would not read is exit 2 naming it, as git refuses options that do not go
together: `plan PLAN --show --record` recorded nothing with exit 0, `plan F --tenant T` (no
--record) and `--server URL plan F --tenant T` recorded nothing under T, `--show --date D`
showed the plan unchecked. And `--server URL plan F --risk p90` plans on p90, as here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from straits.client import Client
from test_cli_conventions import run
from test_rules_engine import DESIGN_REQUEST

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "offshore-2025.yaml")
NOWHERE = "http://127.0.0.1:9"  # refused before any request is sent


def _refused(r: Any, flag: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {flag}:"), r.stderr


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (("--show", "--record"), "--record"),
        (("--show", "--date", "2025-01-01"), "--date"),
        (("--show", "--solver", "cpsat"), "--solver"),
        (("--show", "--regime", "ai-diffusion"), "--regime"),
        (("--recheck", "--time-limit", "5"), "--time-limit"),
        (("--recheck", "--record"), "--record"),
        (("--date", "2025-01-01"), "--date"),
        (("--tenant", "acme"), "--tenant"),
        (("--actor", "bob"), "--actor"),
        (("--details",), "--details"),
        (("--details", "-q"), "--details"),
        (("--show", "--details", "-o", "json"), "--details"),
    ],
)
def test_plan_refuses_a_flag_it_would_not_read(
    plan_file: str, tmp_path: Path, extra: tuple[str, ...], flag: str
) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    _refused(run("plan", plan_file, *extra, "--db", db), flag)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("flag", ["--tenant", "--actor", "--db", "--rules"])
def test_server_runs_refuse_the_local_record_flags(tmp_path: Path, flag: str) -> None:
    value = str(tmp_path) if flag == "--rules" else "x"
    _refused(run("--server", NOWHERE, "plan", EXAMPLE, "--record", flag, value), flag)
    request = json.dumps(DESIGN_REQUEST)
    _refused(run("--server", NOWHERE, "check", "--record", flag, value, stdin=request), flag)


def test_check_refuses_a_tenant_without_record() -> None:
    _refused(run("check", "--tenant", "acme", stdin=json.dumps(DESIGN_REQUEST)), "--tenant")


def test_the_environments_actor_is_no_flag(plan_file: str) -> None:
    r = run("plan", plan_file, "--recheck", "--date", "2025-06-01", env={"STRAITS_ACTOR": "bob"})
    assert r.returncode == 0, r.stderr
    r = run("check", stdin=json.dumps(DESIGN_REQUEST), env={"STRAITS_ACTOR": "bob"})
    assert r.returncode == 0, r.stderr


def test_the_flags_that_are_read_still_are(plan_file: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    r = run("plan", plan_file, "--recheck", "--date", "2025-06-01", "--regime", "ai-diffusion")
    assert r.returncode == 4, r.stderr  # blocked under the other regime
    r = run("plan", EXAMPLE, "--solver", "greedy", "--details", "-o", "yaml")
    assert r.returncode == 0, r.stderr
    r = run("plan", EXAMPLE, "--solver", "greedy", "--record", "--tenant", "t", "--actor", "a",
            "-o", "json", "--db", db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ledger_seq"] == 1


def test_the_client_sends_the_risk() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            202, json={"id": "abcd1234", "status": "queued"}, headers={"Location": "/v1/plans/x"}
        )

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(answer))
    with Client("http://s", http=http) as c:
        c.submit_plan({"name": "x"}, solver="greedy", risk="p90")
    assert seen[0].url.params["risk"] == "p90"


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "show", "-o", "json", "--db", "sqlite:///x.db"),
        ("ledger", "export", "-o", "-", "--db", "sqlite:///x.db"),
        ("impact", "--date", "2025-06-01", "--db", "sqlite:///x.db"),
        ("export", EXAMPLE, "--to", "slurm", "-o", "-", "--db", "sqlite:///x.db"),
    ],
)
def test_server_reads_refuse_a_local_database(args: tuple[str, ...], tmp_path: Path) -> None:
    r = run("--server", NOWHERE, *args, cwd=tmp_path)
    _refused(r, "--db")
    assert not (tmp_path / "x.db").exists()


def test_a_database_from_the_environment_is_no_flag() -> None:
    r = run("--server", NOWHERE, "ledger", "show", env={"STRAITS_DATABASE_URL": "sqlite://"})
    assert r.returncode == 1  # it went for the server, which is not there


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(("--tenant", "x"), "--tenant"), (("--since", "2"), "--since"), (("--limit", "5"), "--limit")],
)
def test_ledger_show_of_one_entry_refuses_the_filters(
    tmp_path: Path, extra: tuple[str, ...], flag: str
) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    r = run("check", "--record", "--tenant", "a", "--db", db, stdin=json.dumps(DESIGN_REQUEST))
    assert r.returncode == 0, r.stderr
    _refused(run("ledger", "show", "1", *extra, "--db", db), flag)
    shown = run("ledger", "show", "1", "-o", "json", "--db", db)
    assert shown.returncode == 0 and json.loads(shown.stdout)["tenant"] == "a"


def test_rules_list_names_its_own_flag() -> None:
    _refused(run("rules", "list", "--pack", "no-such-pack"), "--pack")


@pytest.mark.parametrize(
    ("extra", "flag"), [(("--tenant", "x"), "--tenant"), (("--all",), "--all")]
)
def test_impact_with_plans_refuses_the_recorded_plans_filters(
    plan_file: str, extra: tuple[str, ...], flag: str
) -> None:
    r = run("impact", "--plan", plan_file, "--date", "2025-06-01", "--no-replan", *extra)
    _refused(r, flag)
