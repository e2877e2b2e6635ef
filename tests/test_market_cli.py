"""``straits market`` and ``straits market sweep`` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from straits.market.sweep.cli import run_sweep

CLI = [sys.executable, "-m", "straits"]
SMALL = ["--firms", "30"]


def straits(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env
    )


def test_json_contract_from_the_cli() -> None:
    p = straits("market", "--json", "--regime", "ai-diffusion", *SMALL)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["regime"] == "ai-diffusion"
    m = doc["months"][0]
    for key in (
        "month",
        "offshore_chip_hours",
        "home_chip_hours",
        "domestic_accelerator_chip_hours",
        "price_usd_per_chip_hour",
        "utilisation",
    ):
        assert key in m
    assert "difference" not in doc


def test_outputs_by_suffix(tmp_path: Path) -> None:
    from straits.market import load_market, simulate
    from straits.market.outputs import write

    p = straits("market", *SMALL, "-o", str(tmp_path / "m.html"))
    assert p.returncode == 0, p.stderr
    m = load_market()[0]
    a, b = simulate(m, firms=30), simulate(m, regime="ai-diffusion", firms=30)
    for name in ("m.csv", "m.parquet", "m.json"):
        write(a, tmp_path / name, b)
    html = (tmp_path / "m.html").read_text()
    assert "<script" in html and "http://" not in html.split("<script", 1)[0]
    from test_report import figures_of

    assert len(figures_of(html)) >= 5  # the charts travel as data the page draws
    assert 'src="http' not in html and "src='http" not in html
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "m.parquet")
    assert set(table.column("regime").to_pylist()) == {"enacted", "ai-diffusion"}
    assert "offshore_chip_hours.MY" in table.column_names
    header = (tmp_path / "m.csv").read_text().splitlines()[0].split(",")
    assert "price_usd_per_chip_hour.SG" in header
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["difference"]["versus"] == "ai-diffusion"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--regime", "tier9"], "--regime"),
        (["--set", "demand.nope=1"], "demand.nope"),
        (["--set", "demand.shift_speed"], "PATH=NUMBER"),
        (["--set", "demand.shift_speed=-1"], "demand.shift_speed"),
        (["--set", "demand.amortize_years=0"], "--set: demand.amortize_years"),
        (["--set", "firm_types[cn-cloud].share=1.5"], "firm_types[cn-cloud].share"),
        (["-o", "out.xlsx"], "-o"),
        (["missing.yaml"], "missing.yaml"),
        # blanks around the number, as every option's (docs/cli.md; a fresh-eye attack)
        (["--set", "demand.shift_speed= 0.3 "], "--set"),
        (["--set", "demand.shift_speed=\t0.3\n"], "--set"),
    ],
)
def test_bad_input_exits_2_naming_what(args: list[str], text: str, tmp_path: Path) -> None:
    p = straits("market", *args, *SMALL, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert text in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (
            "extends: shipped\ndemand: {shift_speed: {low: 0.5, high: 0.1, source: x y z, "
            "confidence: M}}\n",
            "demand.shift_speed",
        ),
        ("extends: shipped\nstart: '2023-13'\n", "start"),
        (
            "extends: shipped\nsupply: {pools: [{id: a, country: XX, operator_hq: SG, "
            "chip: H100-SXM, share: {value: 1, source: abc, confidence: M}}]}\n",
            "supply.pools[0].country",
        ),
        ("extends: elsewhere\n", "extends"),
        ("[1, 2, 3]\n", "mapping"),
        ("\x00\x01\x02binary", ""),
        (
            "extends: shipped\nhome_chips: [{chip: H20-ultra, usd_per_chip: {value: 1, "
            "source: abc, confidence: M}, lead_months: {value: 1, source: abc, confidence: M}, "
            "supply_per_month: [{date: '2024-01', value: 1, source: abc, confidence: M}]}]\n",
            "chip",
        ),
        (
            "extends: shipped\ndemand: {growth_per_year: {value: .nan, source: abc, "
            "confidence: M}}\n",
            "finite",
        ),
        # values a parameter cannot mean (the simulation overflowed or divided by them)
        (
            "extends: shipped\ndemand: {shift_speed: {low: -5, high: 1e308, source: abc, "
            "confidence: M}}\n",
            "demand.shift_speed",
        ),
        (
            "extends: shipped\ndemand: {growth_per_year: {value: 1e300, source: abc, "
            "confidence: M}}\n",
            "demand.growth_per_year",
        ),
        (
            "extends: shipped\ndemand: {amortize_years: {value: 0, source: abc, confidence: M}}\n",
            "demand.amortize_years",
        ),
        (
            "extends: shipped\nsupply: {reference_server: {kw: {value: 1e-300, source: abc, "
            "confidence: M}}}\n",
            "supply.reference_server.kw",
        ),
        (
            "extends: shipped\nsupply: {countries: {MY: {mw: [{date: '2024-12', value: -504.8, "
            "source: abc, confidence: M}]}}}\n",
            "supply.countries.MY.mw[2024-12]",
        ),
        (
            "extends: shipped\nuptake: {bis-license: {approval: {value: 2, source: abc, "
            "confidence: M}}}\n",
            "uptake.bis-license.approval",
        ),
        # a terminal escape in a source `--list-params` prints (OSC 52 sets the clipboard)
        (
            'extends: shipped\ndemand: {shift_speed: {value: 0.1, source: "abc\\e]52;c;eA==\\a", '
            "confidence: M}}\n",
            "demand.shift_speed.source",
        ),
        # a parameter without its source or confidence was merged into the shipped range
        # and said "needs either `value` or both `low` and `high`" (a fresh-eye attack)
        ("extends: shipped\nsupply:\n  pue: {value: 1.3, confidence: M}\n", "supply.pue.source"),
        ("extends: shipped\nsupply:\n  pue: {value: 1.3, source: abcd}\n", "pue.confidence"),
        # model shapes a scenario refuses: a ValidationError traceback, exit 1 (a fresh-eye
        # attack)
        (
            "extends: shipped\nmodels:\n  train: {params: 7.0e+9, active_params: 8.0e+9, "
            "layers: 32, d_model: 4096, heads: 32, seq_len: 4096}\n",
            "models.train",
        ),
        (
            "extends: shipped\nmodels:\n  train: {params: 7.0e+9, layers: 32, d_model: 4096, "
            "heads: 5000, seq_len: 4096}\n",
            "models.train",
        ),
    ],
)
def test_bad_market_files(content: str, path: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    p = straits("market", str(f), "--json")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "bad.yaml" in p.stderr and path in p.stderr
    assert "Traceback" not in p.stderr


def test_user_file_extends_the_shipped_market(tmp_path: Path) -> None:
    f = tmp_path / "what-if.yaml"
    f.write_text(
        "extends: shipped\nname: no-malaysia-growth\nsupply:\n  countries:\n    MY:\n"
        "      mw:\n        - {date: '2023-01', value: 300, source: what-if, "
        "confidence: M}\n      ai_rental_share: {value: 0.2, source: what-if, "
        "confidence: M}\n"
    )
    p = straits("market", str(f), "--json", *SMALL)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["market"] == "no-malaysia-growth"
    caps = [m["capacity_mw"]["MY"] for m in doc["months"]]
    assert max(caps) <= caps[0] * 1.01 + 1e-6


def test_list_params_json() -> None:
    p = straits("market", "--list-params", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert any(r["path"] == "demand.shift_speed" and r["unpublished"] for r in rows)
    assert all(r["source"] and r["confidence"] in ("V", "V2", "D", "M") for r in rows)


def _sweep(out: Path, backend: str, **kw: object) -> dict[str, Any]:
    args: dict[str, object] = {
        "market_file": None,
        "runs": 6,
        "method": "lhs",
        "levels": 2,
        "params": ["demand.shift_speed", "demand.growth_per_year", "prices.elasticity"],
        "out": out,
        "backend": backend,
        "ray_address": None,
        "workers": 2,
        "firms": 12,
        "regime": None,
        "seed": 3,
        "metric": "offshore_demand_after_h20",
        "threshold": None,
        "fresh": False,
        "quiet": True,
    }
    args.update(kw)
    return run_sweep(**args)  # type: ignore[arg-type]


def _table(out: Path) -> list[dict[str, object]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(out / "runs.parquet").to_pylist()
    return rows


def test_sweep_inline_resumes(tmp_path: Path) -> None:
    a = tmp_path / "a"
    s = _sweep(a, "inline")
    assert s["runs"] == 6 and len(s["sensitivity"]) == 3
    first = _table(a)
    # an interrupted sweep: drop two parts, rerun, the same table comes back
    parts = sorted((a / "parts").glob("part-*.parquet"))
    for f in parts[:2]:
        f.unlink()
    s2 = _sweep(a, "inline")
    assert s2["resumed_runs"] < 6
    assert _table(a) == first
    # a damaged part (truncated, binary garbage) is not trusted: it is rerun
    part = sorted((a / "parts").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:40])
    _sweep(a, "inline")
    assert _table(a) == first


def test_sweep_refuses_a_different_sweep_in_the_same_directory(tmp_path: Path) -> None:
    from straits.market.loading import MarketError

    _sweep(tmp_path / "s", "inline", runs=3)
    with pytest.raises(MarketError, match="different sweep"):
        _sweep(tmp_path / "s", "inline", runs=4)
    _sweep(tmp_path / "s", "inline", runs=4, fresh=True)


def test_sweep_grid_and_bad_options(tmp_path: Path) -> None:
    from straits.market.loading import MarketError

    s = _sweep(tmp_path / "g", "inline", method="grid", levels=2, params=["demand.shift_speed"])
    assert s["runs"] == 2
    with pytest.raises(MarketError):
        _sweep(tmp_path / "x", "inline", params=["demand.nope"])
    with pytest.raises(MarketError):
        _sweep(tmp_path / "x", "inline", metric="nope")
    with pytest.raises(MarketError):
        _sweep(
            tmp_path / "x",
            "inline",
            method="grid",
            levels=20,
            params=[
                p
                for p in (
                    "demand.shift_speed",
                    "demand.growth_per_year",
                    "prices.elasticity",
                    "demand.domestic_premium",
                    "demand.wtp_usd_per_h100e_hour",
                )
            ],
        )


@pytest.mark.slow
def test_sweep_backends_give_identical_tables(tmp_path: Path) -> None:
    """One process, two local processes and a local Ray (started here: 2 CPUs, a 100 MB
    object store) run the same design to the same table."""
    _sweep(tmp_path / "i", "inline")
    _sweep(tmp_path / "p", "processes")
    assert _table(tmp_path / "p") == _table(tmp_path / "i")
    pytest.importorskip("ray")
    _sweep(tmp_path / "r", "ray")
    assert _table(tmp_path / "r") == _table(tmp_path / "p")


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_to_the_same_table(tmp_path: Path) -> None:
    import signal
    import time

    args = [
        "market",
        "sweep",
        "--runs",
        "12",
        "--firms",
        "12",
        "--backend",
        "inline",
        "--param",
        "demand.shift_speed",
        "--param",
        "prices.elasticity",
        "--seed",
        "5",
        "--json",
    ]
    clean = tmp_path / "clean"
    assert straits(*args, "--out", str(clean)).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*CLI, *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "parts").glob("part-*.parquet")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = straits(*args, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert _table(out) == _table(clean)


def test_sweep_through_the_cli_with_its_progress_bar(tmp_path: Path) -> None:
    """The progress bar draws on the CLI's lazily made console (a defect once: the console
    proxy was not a context manager, and every sweep not run --quiet ended in a traceback)."""
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "5",
        "--backend",
        "inline",
        "--out",
        str(tmp_path / "s"),
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert (tmp_path / "s" / "runs.parquet").exists()


def test_sweep_on_a_ray_cluster_it_cannot_join_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "5",
        "--backend",
        "ray",
        "--ray-address",
        "ray://127.0.0.1:1",
        "--out",
        str(tmp_path / "s"),
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "--ray-address" in p.stderr


@pytest.mark.parametrize(
    "override",
    [
        "demand.growth_per_year=100",
        "supply.reference_server.kw=0.1",
        "demand.shift_speed=1",
        "demand.amortize_years=1e-9",
        "prices.base[2024-10]=1e-300",
        "demand.firm_size_sigma=10",
    ],
)
def test_the_edges_of_each_domain_simulate(override: str, tmp_path: Path) -> None:
    """A value at the edge of what its parameter may be runs (a growth of 100x a year once
    ordered more chips than a rule check takes, a traceback)."""
    p = straits("market", "--json", "--set", override, *SMALL, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["months"]


@pytest.mark.parametrize(
    ("make", "target"),
    [
        (lambda d: (d / "out.json").symlink_to(d / "elsewhere.json"), "out.json"),
        (lambda d: os.mkfifo(d / "out.csv"), "out.csv"),
        (lambda d: None, "/proc/no-such-dir/out.json"),
    ],
)
def test_market_output_only_replaces_regular_files(make: Any, target: str, tmp_path: Path) -> None:
    """-o replaces a regular file only (a symbolic link was replaced by the file, a FIFO too,
    and a directory that cannot be made was a traceback), as every other command's -o."""
    make(tmp_path)
    p = straits("market", "--json", "-o", target, *SMALL, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "-o" in p.stderr
    assert not (tmp_path / "elsewhere.json").exists()


def test_sweep_out_that_cannot_be_made_is_an_input_error(tmp_path: Path) -> None:
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "10",
        "--backend",
        "inline",
        "--out",
        "/proc/no-such-dir/sweep",
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "--out" in p.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_sweep_threshold_is_a_finite_number(value: str, tmp_path: Path) -> None:
    """A NaN threshold ran the whole sweep and found no conditions, silently."""
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "10",
        "--backend",
        "inline",
        "--threshold",
        value,
        "--out",
        str(tmp_path / "s"),
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "--threshold" in p.stderr and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("ys", "threshold", "why"),
    [
        ([1.0, 2.0, 3.0, 4.0], None, "at least 5 runs"),
        ([1.0, 2.0, None, 4.0, 5.0], None, "(4 here)"),  # a failed run does not count
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 10.0, "above 10"),
        ([None, None], None, "no run has a finite"),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], None, None),  # a box: no note
    ],
)
def test_sweep_says_why_prim_found_no_box(
    ys: list[float | None], threshold: float | None, why: str | None
) -> None:
    """A sweep too small for PRIM (or with no run above the threshold) says so, in the table
    and in --json (`prim_note`), instead of leaving the scenario discovery out silently."""
    import numpy as np

    from straits.market.loading import RangeParam
    from straits.market.sweep.cli import _summarise
    from straits.market.sweep.design import Design

    params = (RangeParam("demand.growth_per_year", 1.0, 3.0, "test", "M", True),)
    design = Design(params, np.linspace(1.0, 3.0, len(ys)).reshape(-1, 1))
    rows = [
        {"param:demand.growth_per_year": float(v), "m": y}
        for v, y in zip(design.values[:, 0], ys, strict=True)
    ]
    out = _summarise(design, rows, "m", threshold)
    assert (out["prim"] is None) == (why is not None)
    assert (why in out["prim_note"]) if why is not None else "prim_note" not in out


@pytest.mark.parametrize("args", [["-"], ["-", "--list-params"]])
def test_a_closed_stdin_is_exit_2(args: list[str]) -> None:
    """``straits market - <&-``: sys.stdin is None, which was an AttributeError traceback."""
    p = subprocess.run(
        ["bash", "-c", 'exec "$0" -m straits market "$@" <&-', sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: <stdin>") and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--levels", "5"], "--levels"),  # lhs: no levels
        (["--backend", "inline", "--workers", "8"], "--workers"),
        (["--backend", "inline", "--ray-address", "127.0.0.1:1"], "--ray-address"),
        (["--backend", "processes", "--ray-address", "127.0.0.1:1"], "--ray-address"),
    ],
)
def test_sweep_flags_the_run_does_not_read_are_exit_2(
    args: list[str], flag: str, tmp_path: Path
) -> None:
    """They were accepted and ignored (a fresh-eye attack), as docs/cli.md says they are not."""
    out = tmp_path / "s"
    p = straits("market", "sweep", "--runs", "2", *SMALL, *args, "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"error: {flag}") and not out.exists()
