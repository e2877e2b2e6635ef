"""A careless or hostile user of ``straits market`` and ``straits impact``: more local workers
than CPUs (each a process of about 100 MB) run as many as there are CPUs; SIGTERM mid-sweep
stops the workers; two sweeps in one --out; parts of another design; --out that is no
directory; market files with share groups adding up to 0, overflowing logits, misspelt
authorizations, errors that name their line; NaN never written by -o; flags out of range;
impact --date outside the calendar. More market files are in
tests/hostile_corpus_cli.py (``market:*``)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def test_more_workers_than_cpus_run_as_many_as_there_are_cpus(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "market",
            "sweep",
            "--runs",
            "2",
            "--firms",
            "5",
            "--backend",
            "processes",
            "--workers",
            "512",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["workers"] == min(512, os.cpu_count() or 1)
    assert summary["runs"] == 2
    if (os.cpu_count() or 1) < 512:
        assert "--workers 512" in p.stderr


SWEEP = [sys.executable, "-m", "straits", "market", "sweep", "--runs", "40", "--firms", "5"]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigterm_mid_sweep_stops_the_workers(tmp_path: Path) -> None:
    """SIGTERM (kill, a scheduler's limit) to a sweep on local processes: exit 143 and its
    workers stop with it. They ran on, orphaned, holding its stdout and stderr open (a caller
    reading them waited forever), and no part is left half-written."""
    out = tmp_path / "s"
    workers: list[int] = []
    p = subprocess.Popen(
        [*SWEEP, "--backend", "processes", "--workers", "2", "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(p.pid)) < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # the workers are importing or running a batch
        workers = _children(p.pid)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)  # EOF only once every worker is gone too
    finally:
        if p.poll() is None:
            p.kill()
        for child in workers:  # orphans, if the sweep left any
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
    assert p.returncode == 143, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 15  # the resource tracker may still be cleaning up
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if _alive(w)]
    for part in (out / "parts").glob("part-*.parquet"):
        import pyarrow.parquet as pq

        assert pq.read_table(part).num_rows > 0


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def _p(value: float) -> dict[str, Any]:
    return {"value": value, "source": "hostile pass", "confidence": "M"}


def _straits(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


# (name, what the file changes in the shipped market, exit status, words in the error)
MARKET_FILES: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
    # normalised weights that are all 0: the group's demand (or capacity) was silently 0
    (
        "home-firm-shares-zero",
        {
            "firm_types": [
                {"id": "cn-a", "hq": "CN", "count": 3, "share": _p(0)},
                {"id": "cn-b", "hq": "CN", "count": 3, "share": {**_p(0), "value": 0.0}},
                {"id": "sg-a", "hq": "SG", "count": 3, "share": _p(1)},
            ]
        },
        2,
        ("firm_types", "home"),
    ),
    (
        "other-firm-shares-zero",
        {
            "firm_types": [
                {"id": "cn-a", "hq": "CN", "count": 3, "share": _p(1)},
                {"id": "sg-a", "hq": "SG", "count": 3, "share": _p(0)},
            ]
        },
        2,
        ("firm_types", "other"),
    ),
    (
        "home-firm-share-range-from-zero",
        {
            "firm_types": [
                {
                    "id": "cn-a",
                    "hq": "CN",
                    "count": 3,
                    "share": {"low": 0, "high": 1, "source": "hostile", "confidence": "M"},
                },
                {"id": "sg-a", "hq": "SG", "count": 3, "share": _p(1)},
            ]
        },
        2,
        ("firm_types", "low ends"),
    ),
    (
        "pool-shares-zero-in-a-country",
        {
            "supply": {
                "pools": [
                    {
                        "id": "sg-sg-h100",
                        "country": "SG",
                        "operator_hq": "SG",
                        "chip": "H100-SXM",
                        "share": _p(0),
                    },
                    {
                        "id": "my-sg-h100",
                        "country": "MY",
                        "operator_hq": "SG",
                        "chip": "H100-SXM",
                        "share": _p(1),
                    },
                ]
            }
        },
        2,
        ("supply.pools", "SG", "ai_rental_share"),
    ),
    # a misspelt authorization (licence for license) was read as no uptake at all
    (
        "uptake-unknown-authorization",
        {"uptake": {"bis-licence": {"approval": _p(1)}}},
        2,
        ("uptake", "bis-licence", "bis-license"),
    ),
    # home SG over the shipped SG pools: SG firms renting in SG were reported as 'offshore SG'
    # (found by the hostile pass atk40)
    ("home-is-a-rental-country", {"home": "SG"}, 2, ("home", "supply.countries.SG")),
    # one home firm type alone (share 1, no other types' demand) is a market, and runs
    (
        "one-home-type-one-month",
        {
            "start": "2025-05",
            "end": "2025-05",
            "firm_types": [{"id": "cn-a", "hq": "CN", "count": 2, "share": _p(1)}],
        },
        0,
        (),
    ),
    # chips amortised over no time at all (cost per hour ~1e300) at the sharpest buy logit:
    # exp() overflowed, a RuntimeWarning on stderr (the share bought is 0 either way)
    (
        "buy-logit-overflow",
        {
            "start": "2024-01",
            "end": "2024-03",
            "demand": {"amortize_years": _p(1e-300), "buy_sharpness": _p(1000)},
        },
        0,
        (),
    ),
]


@pytest.mark.parametrize(("name", "doc", "code", "words"), MARKET_FILES, ids=lambda v: v)
def test_hostile_market_file(
    tmp_path: Path, name: str, doc: dict[str, Any], code: int, words: tuple[str, ...]
) -> None:
    f = tmp_path / f"{name}.yaml"
    f.write_text(json.dumps({"extends": "shipped", **doc}))
    p = _straits(["market", "run", str(f), "--json", "--firms", "5", "--no-compare"], tmp_path)
    assert p.returncode == code, p.stderr
    if code == 0:
        assert p.stderr == ""  # no warning, no traceback
        out = json.loads(p.stdout, parse_constant=_no_constant)
        assert out["months"]
        return
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert str(f) in lines[0]
    for w in words:
        assert w in lines[0]


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in JSON output")


IMPACT_DATES = [
    ("0001-01-01", 2),  # was read as the plan's date without a word (exit 0)
    ("1999-12-31", 2),
    ("9999-12-31", 2),  # was refused only after every plan was re-planned
    ("2101-01-01", 2),
]


@pytest.mark.parametrize(("date", "code"), IMPACT_DATES)
def test_impact_date_outside_the_calendar(tmp_path: Path, date: str, code: int) -> None:
    ex = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"
    p = _straits(
        ["impact", "--date", date, "--plan", str(ex), "--db", "sqlite://", "--no-replan"],
        tmp_path,
    )
    assert p.returncode == code, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --date: "), p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet"])
def test_market_file_output_never_holds_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """-o x.json used json.dumps, which writes NaN; every -o format now checks as --json does:
    a non-finite number is an internal error and nothing is written (the old file is kept)."""
    from straits import jsonout
    from straits.market import outputs

    monkeypatch.setattr(
        outputs, "document", lambda r, o=None, s=None: {"months": [{"x": math.nan}]}
    )
    monkeypatch.setattr(outputs, "flat_rows", lambda r: [{"month": "2025-01", "x": math.inf}])
    target = tmp_path / f"m{suffix}"
    target.write_bytes(b"old")
    with pytest.raises(jsonout.NonFiniteOutput, match="non-finite"):
        outputs.write(None, target)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == [target.name]


def test_two_sweeps_in_one_out_directory(tmp_path: Path) -> None:
    """A second sweep into a directory a sweep is writing is exit 2 naming --out, nothing
    touched: with --fresh and other parameters it deleted the first one's parts, the first
    went on writing its runs there and the second read them as its own."""
    out = tmp_path / "s"
    first = subprocess.Popen(
        [*SWEEP, "--backend", "inline", "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "sweep.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        manifest = (out / "sweep.json").read_bytes()
        second = _straits(
            [*SWEEP[3:], "--param", "demand.shift_speed", "--fresh", "--out", str(out)],
            tmp_path,
        )
        still_running = first.poll() is None
    finally:
        first.kill()
        first.communicate()
    assert still_running  # else the second one did not race it: the test proves nothing
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out: "), second.stderr
    assert (out / "sweep.json").read_bytes() == manifest


# (flags after `straits market`, the option the refusal names)
MARKET_FLAGS = [
    # a 29-digit seed ran and went into --json as an integer no 64-bit reader holds
    (["run", "--seed", str(2**63)], "--seed"),
    (["sweep", "--seed", str(10**29), "--out", "{TMP}/s"], "--seed"),
    # NaN was blamed on the market file ('value ... must be a number'), not on --set
    (["run", "--set", "demand.shift_speed=nan"], "--set"),
]


@pytest.mark.parametrize(("args", "option"), MARKET_FLAGS)
def test_hostile_market_flags(tmp_path: Path, args: list[str], option: str) -> None:
    argv = ["market", *(a.replace("{TMP}", str(tmp_path)) for a in args), "--json"]
    p = _straits(argv, tmp_path)
    assert p.returncode == 2, p.stderr
    assert option in p.stderr
    assert str(Path(__file__).parent) not in p.stderr  # not blamed on a file
    assert p.stdout == ""
    assert not (tmp_path / "s").exists()


def _fifo(p: Path) -> None:
    os.mkfifo(p)


# what is at --out already: refused (exit 2 naming --out, nothing run, nothing created there)
SWEEP_OUT_TARGETS = [
    ("file", lambda p: p.write_text("x")),
    ("fifo", _fifo),
    ("dangling-link", lambda p: p.symlink_to(p.parent / "nowhere")),
    ("under-a-file", None),
]


@pytest.mark.parametrize(("kind", "make"), SWEEP_OUT_TARGETS, ids=[c[0] for c in SWEEP_OUT_TARGETS])
def test_sweep_out_is_not_a_directory(tmp_path: Path, kind: str, make: Any) -> None:
    target = tmp_path / "out"
    if make is None:
        target.write_text("x")
        target = target / "sub"
    else:
        make(target)
    before = sorted(q.name for q in tmp_path.iterdir())
    p = _straits([*SWEEP[3:6], "2", "--backend", "inline", "--out", str(target)], tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out: "), p.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == before
    assert not (tmp_path / "nowhere").exists()


# (market file text, the line and field path its one-line error names): a market file's
# errors named no line (and sent an unknown field to "the scenario reference")
MARKET_LINES = [
    ("extends: shipped\nseed: 3\nbogus: 1\n", 3, "bogus"),
    (
        "extends: shipped\ndemand:\n  shift_speedd: {value: 0.1, source: abc, confidence: M}\n",
        3,
        "demand.shift_speedd",
    ),
    (
        "extends: shipped\nsupply:\n  reference_server:\n    chip: H100-SXM\n    gpus: 0\n"
        "    kw: {value: 10, source: abc, confidence: M}\n",
        5,
        "supply.reference_server.gpus",
    ),
    (
        "extends: shipped\nuptake:\n  bis-licence: {approval: {value: 1, source: abc, "
        "confidence: M}}\n",
        3,
        "uptake",
    ),
]


@pytest.mark.parametrize(("text", "line", "field"), MARKET_LINES)
def test_market_file_error_names_its_line(tmp_path: Path, text: str, line: int, field: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    p = _straits(["market", "run", str(f), "--json"], tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"error: {f}:{line}: {field}"), lines[0]
    assert "scenario" not in lines[0]
    assert p.stdout == ""


def test_a_part_of_another_design_is_rerun_not_counted(tmp_path: Path) -> None:
    """A part holding a run the design does not have, or a run at other parameter values
    (copied from another sweep, edited), is deleted and rerun: it was counted as this
    sweep's (runs 3 of a 2-run design, a run's metric beside another point's parameters)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "s"
    args = [*SWEEP[3:6], "2", "--backend", "inline", "--param", "demand.shift_speed"]
    args += ["--out", str(out), "--json"]
    first = _straits(args, tmp_path)
    assert first.returncode == 0, first.stderr
    table = pq.read_table(out / "runs.parquet")
    rows = table.to_pylist()
    forged = [
        {**rows[1], "param:demand.shift_speed": 0.3999},  # run 1 at another point
        {**rows[0], "run": 7},  # a run the design does not have
    ]
    pq.write_table(
        pa.Table.from_pylist(forged, schema=table.schema), out / "parts" / "part-00099.parquet"
    )
    again = _straits(args, tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["runs"] == 2
    assert pq.read_table(out / "runs.parquet").to_pylist() == rows
    assert not (out / "parts" / "part-00099.parquet").exists()
