"""A hostile or careless user of the market view's and the plan report's outputs (hostile pass
atk18): an output path that is the input file, --set values shown under the file's sources,
sweep designs too big to hold in memory, --fresh in a directory that is not a sweep's. More
market cases are in tests/test_hostile_market.py and tests/hostile_corpus_cli.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"


def _straits(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env={**os.environ, "COLUMNS": "1000"},  # a table's first line in one line
    )


def _one_error(p: subprocess.CompletedProcess[str], option: str) -> str:
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}: "), p.stderr
    return lines[0]


def _plan_document(tmp_path: Path) -> Path:
    p = _straits("plan", str(EXAMPLE), "--json", "--time-limit", "5")
    assert p.returncode in (0, 3), p.stderr
    doc = tmp_path / "plan.json"
    doc.write_text(p.stdout)
    return doc


# (command, the input file's name, the option the refusal names): the output replaced the
# input: `market m.json -o m.json` left the results where the market file was (exit 0)
SAME_FILE = [
    ("market", "m.json", "-o"),
    ("market-link", "m.json", "-o"),
    ("report", "plan.html", "--out"),
]


@pytest.mark.parametrize(("kind", "name", "option"), SAME_FILE, ids=[c[0] for c in SAME_FILE])
def test_the_output_is_never_the_input(tmp_path: Path, kind: str, name: str, option: str) -> None:
    source = tmp_path / name
    if kind.startswith("market"):
        source.write_text(json.dumps({"extends": "shipped", "name": "mine"}))
    else:
        source.write_bytes(_plan_document(tmp_path).read_bytes())
    target = source
    if kind == "market-link":
        target = tmp_path / "other.json"
        os.link(source, target)
    before = source.read_bytes()
    args = ["market", str(source), "--firms", "5", "--no-compare", "-o", str(target)]
    if kind == "report":
        args = ["report", str(source), "--out", str(target)]
    _one_error(_straits(*args), option)
    assert source.read_bytes() == before


SWEEP = ["market", "sweep", "--runs", "2", "--firms", "5", "--backend", "inline"]


def test_fresh_deletes_only_what_a_sweep_wrote(tmp_path: Path) -> None:
    """--fresh in a directory of the user's (`--out .`) deleted its whole `parts` folder, the
    user's files in it too; it deletes the parts a sweep writes (and their temporary files)."""
    out = tmp_path / "project"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "notes.txt").write_text("mine")
    (out / "parts" / "part-00007.parquet").write_bytes(b"a part of an older sweep")
    (out / "parts" / ".part-00003.parquet.abc123.tmp").write_bytes(b"half a part")
    p = _straits(*SWEEP, "--out", str(out), "--fresh", "--json")
    assert p.returncode == 0, p.stderr
    assert (out / "parts" / "notes.txt").read_text() == "mine"
    assert not (out / "parts" / "part-00007.parquet").exists()
    assert not (out / "parts" / ".part-00003.parquet.abc123.tmp").exists()
    assert json.loads(p.stdout)["runs"] == 2


def _many_ranges(tmp_path: Path) -> Path:
    """A market whose Singapore and Malaysia capacity are series of 240 monthly ranges each
    (the most a series may have): about 550 parameters to sweep."""
    months = [f"{2010 + i // 12:04d}-{i % 12 + 1:02d}" for i in range(240)]
    series = [
        {"date": m, "low": 500, "high": 2000, "source": "hostile", "confidence": "M"}
        for m in months
    ]
    doc = {
        "extends": "shipped",
        "supply": {"countries": {"SG": {"mw": series}, "MY": {"mw": series}}},
    }
    f = tmp_path / "many.json"
    f.write_text(json.dumps(doc))
    return f


def test_a_design_too_big_to_hold_is_refused(tmp_path: Path) -> None:
    """--runs 100000 over a market of 550 ranges made a design of 55 million values (scipy's
    Latin hypercube took 4.7 GB and 40 s for 2,000 ranges, then each run was run): refused
    before anything is made or written, naming --runs."""
    out = tmp_path / "s"
    p = _straits(*SWEEP[:2], str(_many_ranges(tmp_path)), "--runs", "100000", "--out", str(out))
    line = _one_error(p, "--runs")
    assert "100,000" in line
    assert not out.exists()


SET = ["--set", "demand.shift_speed=0.39", "--set", "supply.reference_server.kw=12"]


def test_a_value_set_on_the_command_line_is_not_shown_as_the_files() -> None:
    """--set x=V kept the file's source and confidence on V: --list-params and the HTML
    report's 'every parameter with its source' gave 0.39 the file's source ('unpublished: how
    fast demand moves offshore...') and 12 kW NVIDIA's datasheet at confidence V2, and --json
    said nothing of either value (an overridden range only dropped out of `unpublished`)."""
    p = _straits("market", *SET, "--list-params", "--json")
    assert p.returncode == 0, p.stderr
    rows: dict[str, dict[str, Any]] = {r["path"]: r for r in json.loads(p.stdout)}
    for path, value in (("demand.shift_speed", 0.39), ("supply.reference_server.kw", 12.0)):
        assert rows[path]["value"] == value
        assert rows[path]["source"].startswith(f"--set {path}=")
        assert rows[path]["confidence"] == "M"
    assert rows["demand.shift_speed"]["unpublished"] is True  # still no public figure
    p = _straits("market", *SET, "--firms", "5", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["set"] == {
        "demand.shift_speed": 0.39,
        "supply.reference_server.kw": 12.0,
    }
    p = _straits("market", "--firms", "5", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["set"] == {}


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


# what is at OUT/sweep.json (a manifest a sweep writes, read to resume): a FIFO nothing writes
# to hung the sweep forever, a link to /dev/zero was read until memory ran out (MemoryError)
MANIFESTS = [
    ("fifo", lambda p: os.mkfifo(p)),
    ("dev-zero", lambda p: p.symlink_to("/dev/zero")),
]


@pytest.mark.parametrize(("kind", "make"), MANIFESTS, ids=[c[0] for c in MANIFESTS])
def test_a_manifest_that_is_not_a_file_is_refused(tmp_path: Path, kind: str, make: Any) -> None:
    out = tmp_path / "s"
    out.mkdir()
    make(out / "sweep.json")
    p = subprocess.run(
        [sys.executable, "-m", "straits", *SWEEP, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
    )
    line = _one_error(p, "--out")
    assert "sweep.json" in line
    assert not (out / "parts").exists()


# a market file's path in the table's first line: Rich read "[bold red]" in it as markup (the
# line named /dir/m.yaml, a file that was not read), and an escape sequence reached the terminal
PATHS = [("markup", "[bold red]m.yaml", "[bold red]m.yaml"), ("osc", "m\x1b]0;x\x07.yaml", "\\x1b")]


@pytest.mark.parametrize(("kind", "name", "shown"), PATHS, ids=[c[0] for c in PATHS])
def test_the_market_files_path_is_shown_as_it_is(
    tmp_path: Path, kind: str, name: str, shown: str
) -> None:
    f = tmp_path / name
    f.write_text("extends: shipped\nstart: '2025-01'\nend: '2025-03'\n")
    out = tmp_path / f"{name}.csv"
    p = _straits("market", str(f), "--firms", "5", "--no-compare", "-o", str(out))
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert shown in first
    assert "\x1b" not in p.stdout + p.stderr
    assert p.stderr.startswith("wrote ") and shown in p.stderr  # the -o file, likewise


@pytest.mark.parametrize("command", [["market", "--json"], ["market", "sweep", "--runs", "2"]])
@pytest.mark.parametrize("firms", ["1", "4"])
def test_fewer_firms_than_types_is_refused(tmp_path: Path, command: list[str], firms: str) -> None:
    """Every firm type needs a firm: `--firms 1` ran the shipped market's five firms and said
    nothing. Refused naming --firms, before anything is written."""
    out = tmp_path / "sweep"
    args = [*command, "--firms", firms] + (["--out", str(out)] if "sweep" in command else [])
    _one_error(_straits(*args), "--firms")
    assert not out.exists()


def test_a_file_name_too_long_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    """`market -o NAME` with a name over the file system's 255 bytes: Path.exists() raised
    ENAMETOOLONG out of the command (a traceback)."""
    out = tmp_path / ("a" * 300 + ".json")
    _one_error(_straits("market", "--firms", "5", "--no-compare", "-o", str(out)), "-o")
