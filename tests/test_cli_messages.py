"""What the CLI prints (docs/cli.md): -q's one summary line, reasons wrapped under their own
text, tables that never cut a cell, a `.` given for a file named in the error, and guidance
where a user would be stuck (too few chips, a run of years, a plan past its horizon, an export
with no target mapped, Ctrl-C while the CLI starts). Through the real `straits` process. Split
from test_cli_conventions.py, whose runner it uses."""

from __future__ import annotations

import copy
import datetime as dt
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import H20_BEFORE
from test_cli import ESTIMATE, one_line_error
from test_cli_conventions import ROOT, run
from test_rules_engine import DESIGN_REQUEST


# --- quiet, wrapping, whole ids -------------------------------------------------------------------
def test_quiet_plan_prints_one_summary_line(example_path: Path) -> None:
    p = run("plan", str(example_path), "-q", "--solver", "greedy", "--progress")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and "Total $" in lines[0]
    assert run("-q", "plan", str(example_path), "--solver", "greedy").stdout == p.stdout


def test_quiet_export_impact_and_recheck_print_one_line_each(tmp_path: Path) -> None:
    """docs/cli.md: -q drops stderr and shrinks what a command prints to its summary line."""
    h20 = ROOT / "examples" / "h20-2025.yaml"
    # made and exported with the rules of 2025-04-08 (conftest.H20_BEFORE): it buys H20s
    before = ("--rules", str(H20_BEFORE))
    doc = run("plan", str(h20), "--solver", "greedy", "-o", "json", *before)
    assert doc.returncode == 0, doc.stderr
    f = tmp_path / "plan.json"
    f.write_text(doc.stdout)
    jobs = tmp_path / "jobs"
    cases = [
        (("export", str(f), "--to", "slurm", "-o", str(jobs), *before), 0, "file(s) of plan"),
        (("impact", "--plan", str(f), "--date", "2025-04-10", "--no-replan"), 0, "1 blocked"),
        (("plan", str(f), "--recheck", "--date", "2025-04-10"), 4, "1 blocked"),
    ]
    for args, code, words in cases:
        for p in (run(*args, "-q", columns=400), run("-q", *args, columns=400)):
            assert p.returncode == code, (args, p.stderr)
            assert p.stderr == ""
            lines = p.stdout.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], (args, p.stdout)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("market", "-o", "."), ("'.'", ".json")),
        (("report", "examples/offshore-2025.yaml", "-o", "."), ("'.'", ".html")),
        (("scenario", "validate", "."), ("directory",)),
    ],
)
def test_a_dot_for_a_file_is_named_in_the_error(
    args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    """`-o .` used to be a traceback; the error names the path given, not '' (its name)."""
    one_line_error(run(*args, cwd=ROOT), *words)


def test_long_reasons_wrap_under_their_own_text() -> None:
    p = run("check", stdin=json.dumps(DESIGN_REQUEST), columns=70)
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines) <= 70
    assert all(line == line.rstrip() for line in lines)
    body = [ln for ln in lines[2:] if ln.strip()]  # after the title
    assert body and all(ln.startswith("  ") for ln in body), body


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_chips_never_cut_a_cell(columns: int) -> None:
    chips = json.loads(run("chips", "--json").stdout)
    table = run("chips", columns=columns).stdout
    assert "\u2026" not in table  # no ellipsis anywhere
    rows = {ln.split()[0]: ln for ln in table.splitlines() if ln.strip()}
    for c in chips:  # each chip on one line, with its id, TPP and 2023 class whole
        row = rows[c["id"]]
        assert f"{c['derived']['tpp']:,.0f}" in row.split()
        assert c["derived"]["class_2023"] in row.split()


# --- guidance ------------------------------------------------------------------------------------
def test_an_estimate_on_too_few_chips_says_how_many() -> None:
    req = {**ESTIMATE, "chip": "H20", "chips": 8}
    out = json.loads(run("estimate", "--json", stdin=json.dumps(req)).stdout)
    assert not out["fits"]
    hint = next(g for g in out["guidance"] if g["code"] == "needs-more-chips")
    assert hint["min_chips"] == out["min_chips"] > req["chips"]
    at_min = json.loads(
        run("estimate", "--json", stdin=json.dumps({**req, "chips": hint["min_chips"]})).stdout
    )
    assert at_min["fits"] and hint["days_at_min_chips"] == pytest.approx(at_min["days"], 0.01)
    table = run("estimate", stdin=json.dumps(req), columns=120).stdout
    assert f"--chips {hint['min_chips']}" in table


def test_a_years_long_run_says_which_cluster_finishes_in_90_days() -> None:
    req = {**ESTIMATE, "chip": "H100-SXM", "chips": 64}
    out = json.loads(run("estimate", "--json", stdin=json.dumps(req)).stdout)
    hint = next(g for g in out["guidance"] if g["code"] == "long-run")
    assert out["days"] > 365 and hint["chips_for_target"] > req["chips"]
    there = json.loads(
        run(
            "estimate", "--json", stdin=json.dumps({**req, "chips": hint["chips_for_target"]})
        ).stdout
    )
    assert there["days"] <= hint["target_days"]
    assert not [g for g in there["guidance"] if g["code"] == "long-run"]
    half = json.loads(
        run(
            "estimate", "--json", stdin=json.dumps({**req, "chips": hint["chips_for_target"] // 2})
        ).stdout
    )
    assert half["days"] > hint["target_days"] or not half["fits"]


def test_a_plan_past_its_horizon_says_so(example_path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(example_path.read_text())
    doc["horizon_days"] = 20
    f = tmp_path / "short.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = json.loads(run("plan", str(f), "-o", "json", "--solver", "greedy").stdout)
    hint = next(g for g in out["guidance"] if g["code"] == "past-horizon")
    ends = {f"{a['workload']}/{a['stage']}": a["end"] for a in out["assignments"]}
    late = sorted(k for k, end in ends.items() if end.replace("Z", "+00:00") > hint["horizon_end"])
    assert late and sorted(hint["stages"]) == late
    assert "horizon_days" in run("plan", str(f), "--solver", "greedy", columns=200).stdout
    full = json.loads(run("plan", str(example_path), "-o", "json", "--solver", "greedy").stdout)
    assert not [g for g in full["guidance"] if g["code"] == "past-horizon"]


def test_a_deadline_before_the_plans_date_is_said(example_path: Path, tmp_path: Path) -> None:
    """Accepted (a re-plan of a late project has one), but never silently: soft deadlines are
    charged from the first hour, hard ones leave their workloads unplaced."""
    doc = yaml.safe_load(example_path.read_text())
    day = dt.date.fromisoformat(str(doc["date"]))
    doc["workloads"].append({**copy.deepcopy(doc["workloads"][0]), "id": "also-late"})
    ids = [w["id"] for w in doc["workloads"]]
    doc["workloads"][0].update(deadline=str(day - dt.timedelta(days=30)), deadline_policy="hard")
    doc["workloads"][-1].update(deadline=str(day - dt.timedelta(days=1)), deadline_policy="soft")
    f = tmp_path / "late.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = json.loads(run("plan", str(f), "-o", "json", "--solver", "greedy").stdout)
    hint = next(g for g in out["guidance"] if g["code"] == "deadline-passed")
    assert hint["workloads"] == [ids[0], ids[-1]] and hint["hard"] == [ids[0]]
    assert hint["date"] == str(day)
    assert not [a for a in out["assignments"] if a["workload"] == ids[0]]
    full = json.loads(run("plan", str(example_path), "-o", "json", "--solver", "greedy").stdout)
    assert not [g for g in full["guidance"] if g["code"] == "deadline-passed"]


def test_export_with_no_target_mapped_names_the_field(example_path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(example_path.read_text())
    for site in doc["sites"]:
        site.pop("targets", None)
        for pool in site["pools"]:
            pool.pop("targets", None)
    f = tmp_path / "bare.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = tmp_path / "jobs"
    for to in ("slurm", "all"):
        p = run("-q", "export", str(f), "--to", to, "-o", str(out))  # -q: the error alone
        one_line_error(p, "targets", "no site of the plan is mapped")
        assert "sites[].targets." in p.stderr
        assert not out.exists() or not any(out.iterdir())


def test_ctrl_c_while_the_cli_starts_exits_130_without_a_traceback() -> None:
    """Ctrl-C in the first second (the CLI importing Typer and Rich, longer on a loaded
    machine) was a KeyboardInterrupt traceback and death by signal. The signal is sent from
    inside the import of `rich`, so the test does not depend on timing."""
    code = (
        "import os, signal, sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'rich':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "sys.argv = ['straits', 'chips']\n"
        "from straits.cli import main\n"
        "main()\n"
    )
    _exits_130_quietly(code)


@pytest.mark.parametrize(
    "where",
    [
        "straits.cli._prepare_streams",  # the streams checked, before the arguments
        "straits.cli._refuse_undecodable",  # the arguments checked, before Typer
        "typer.main.get_command",  # Typer reading the commands' signatures
    ],
)
def test_ctrl_c_after_the_imports_before_the_command_exits_130_without_a_traceback(
    where: str,
) -> None:
    """Ctrl-C after the imports but before a command runs (Typer reads every command's
    signature then, half a second on a loaded machine) was a KeyboardInterrupt traceback and
    death by SIGINT: Python's handler was back, and Typer's own answer (exit 130) only covers
    the command. The signal is sent from inside the step named, so no timing is involved."""
    module, name = where.rsplit(".", 1)
    code = (
        "import importlib, os, signal, sys\n"
        f"m = importlib.import_module({module!r})\n"
        "import straits.cli\n"
        f"real = getattr(m, {name!r})\n"
        "def hooked(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(*a, **k)\n"
        f"setattr(m, {name!r}, hooked)\n"
        "sys.argv = ['straits', 'chips']\n"
        "straits.cli.main()\n"
    )
    _exits_130_quietly(code)


def _exits_130_quietly(code: str) -> None:
    """Run ``code`` in a fresh interpreter, SIGINT as a terminal delivers it (a test runner
    may have it ignored): exit 130, no traceback, nothing on stdout."""
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr
    assert p.stdout == ""
