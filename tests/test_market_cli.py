"""``straits market`` and ``straits market sweep`` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
