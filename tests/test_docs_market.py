"""docs/market.md's Outputs section names every field `straits market --json` prints (top level
and each month), and the spill-over figure it quotes is the shipped market's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from test_cli import straits

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = (
    (ROOT / "docs" / "market.md")
    .read_text(encoding="utf-8")
    .split("## Outputs", 1)[1]
    .split("\n## ", 1)[0]
)


@pytest.fixture(scope="module")
def market() -> dict[str, Any]:
    p = straits("market", "--json")
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def test_every_market_field_is_named(market: dict[str, Any]) -> None:
    named = set(re.findall(r'"(\w+)"', OUTPUTS)) | set(re.findall(r"`(\w+)`", OUTPUTS))
    keys = set(market) | {k for m in market["months"] for k in m}
    assert sorted(keys - named) == []


def test_the_spill_over_figure_is_the_shipped_markets(market: dict[str, Any]) -> None:
    m = re.search(r"seed 1: SG in (\d{4}-\d\d), ([\d.]+)M rented of\s+([\d.]+)M first", OUTPUTS)
    assert m is not None
    month = next(x for x in market["months"] if x["month"] == m.group(1))
    assert f"{month['offshore_chip_hours']['SG'] / 1e6:.1f}" == m.group(2)
    assert f"{month['offshore_demand_chip_hours']['SG'] / 1e6:.1f}" == m.group(3)


def test_every_sweep_summary_field_is_named(tmp_path: Path) -> None:
    """docs/contracts.md lists what `market sweep --json` prints: user32 found `workers`,
    `method`, `resumed_runs`, `firms`, `seed`, `regime` and `prim_note` printed and unnamed."""
    page = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    sentence = page.split("`straits market sweep --json` prints", 1)[1].split(".\n", 1)[0]
    p = straits(
        "market", "sweep", "--runs", "2", "--firms", "10", "--workers", "1",
        "--backend", "processes", "--out", str(tmp_path / "sweep"), "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    keys = set(json.loads(p.stdout))
    assert "prim_note" in keys  # two runs: too few for PRIM, and the summary says why
    assert sorted(keys - set(re.findall(r"`(\w+)`", sentence))) == []
