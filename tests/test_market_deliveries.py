"""Orders are asked of the rules again when they arrive; the residency share is one share of
the home firms' own chip-hours; the table shows every period; --list-params refuses flags it
does not read; a sweep says when it measured no correlation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from straits.market import load_market, simulate
from straits.market.loading import RangeParam
from straits.market.params import month_index, month_name
from straits.market.result import MarketResult, residency_share
from straits.market.supply import lead
from straits.market.sweep.analysis import spearman
from straits.market.sweep.metrics import metrics, window_outside
from straits.rules import RuleSet
from test_market_cli import straits


@pytest.fixture(scope="module")
def runs(rules: RuleSet) -> dict[str, MarketResult]:
    m = load_market()[0]
    return {r: simulate(m, regime=r, rules=rules, firms=120) for r in ("enacted", "ai-diffusion")}


def _short(tmp_path: Path, start: str, end: str, regime: str = "enacted") -> Path:
    p = tmp_path / "short.yaml"
    p.write_text(f'extends: shipped\nname: t\nregime: {regime}\nstart: "{start}"\nend: "{end}"\n')
    return p


# -- data residency ------------------------------------------------------------------------


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_residency_is_a_share_of_the_home_firms_own_chip_hours(
    regime: str, runs: dict[str, MarketResult]
) -> None:
    """residency_home_chip_hours counts own chips at home, domestic accelerators included: it
    was divided by the non-domestic ones alone, 110% in 2027-12 (docs said 99% for 2027)."""
    r = runs[regime]
    assert any(x.residency_home_chip_hours > 0 for x in r.months)
    for x in r.months:
        assert 0.0 <= residency_share([x]) <= 1.0 + 1e-12, x.month
        assert x.residency_home_chip_hours <= x.own_chip_hours * (1 + 1e-12), x.month
    # the sweep metric is the same definition
    assert metrics(r)["residency_share"] == residency_share(r.months)


# -- orders asked again on arrival ---------------------------------------------------------


def _h20_lead(r: MarketResult) -> int:
    return lead(next(h for h in r.market.home_chips if h.chip == "H20").lead_months.mid)


@pytest.mark.parametrize(
    ("month", "lawful"),
    [
        ("2025-03", 1.0),  # before the letter
        ("2025-04", 8 / 30),  # the letter of 2025-04-09: 8 of April's 30 days were free
        ("2025-05", 0.0),  # a licence needed, presumption of denial, none issued
        ("2025-06", 0.0),
        ("2025-07", 0.0),
    ],
)
def test_no_h20_is_delivered_after_the_letter_without_a_licence(
    month: str, lawful: float, runs: dict[str, MarketResult]
) -> None:
    """H20s ordered before 2025-04-09 and due after it are cancelled, as NVIDIA lost $2.5B of
    Q1 sales it could not ship (~204k H20 were delivered after the letter with no licence)."""
    x = runs["enacted"].record(month)
    due = x.chips_delivered["H20"] + x.chips_cancelled["H20"]
    assert x.chips_delivered["H20"] <= lawful * due + 1e-6
    if lawful < 1.0:
        assert x.chips_cancelled["H20"] == pytest.approx(due * (1 - lawful), abs=1e-6)


def test_orders_placed_before_the_letter_were_due_after_it(runs: dict[str, MarketResult]) -> None:
    r = runs["enacted"]
    lost = sum(r.record(mo).chips_cancelled["H20"] for mo in ("2025-05", "2025-06", "2025-07"))
    assert lost > 0  # the case the test above is about happens at the shipped midpoints


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_every_order_is_delivered_or_cancelled_a_lead_later(
    regime: str, runs: dict[str, MarketResult]
) -> None:
    r = runs[regime]
    by_month = {x.month: x for x in r.months}
    for h in r.market.home_chips:
        n = lead(h.lead_months.mid)
        for x in r.months:
            arrival = by_month.get(month_name(month_index(x.month) + n))
            if arrival is None:
                continue
            due = arrival.chips_delivered[h.chip] + arrival.chips_cancelled[h.chip]
            assert due == pytest.approx(x.chips_ordered[h.chip], rel=1e-9, abs=1e-6)
        # nothing arrives in the first lead months: nothing was on order at the start
        assert all(x.chips_delivered[h.chip] == 0 for x in r.months[:n])


def test_orders_are_cut_to_the_supply_of_the_month_they_ship(
    runs: dict[str, MarketResult],
) -> None:
    """supply_per_month is dated by shipment: the first H20 shipped in April 2024 (its supply
    is 0 until 2024-03), so none arrives before April, and deliveries never exceed a month's
    supply."""
    from straits.market.supply import series_at

    r = runs["enacted"]
    for h in r.market.home_chips:
        for x in r.months:
            cap = series_at(h.supply_per_month, month_index(x.month))
            assert x.chips_delivered[h.chip] + x.chips_cancelled[h.chip] <= cap * (1 + 1e-9) + 1e-6
    assert r.record("2024-03").chips_delivered["H20"] == 0
    assert r.record("2024-04").chips_delivered["H20"] > 0


# -- the table, --list-params --------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "shown"),
    [(1, [0]), (2, [0, 1]), (3, [0, 2]), (4, [0, 3]), (5, [0, 3, 4]), (7, [0, 3, 6])],
)
def test_table_shows_every_third_month_and_the_last(n: int, shown: list[int]) -> None:
    from straits.cli.market_view import quarterly

    months = list(range(n))
    assert [months.index(x) for x in quarterly(months)] == shown  # type: ignore[arg-type]


def test_a_may_june_market_has_rows(tmp_path: Path) -> None:
    p = straits("market", str(_short(tmp_path, "2025-05", "2025-06")), "--firms", "20")
    assert p.returncode == 0, p.stderr
    assert "2025-05" in p.stdout and "2025-06" in p.stdout


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (("--firms", "1"), "--firms"),
        (("-o", "x.html"), "--output"),
        (("--seed", "3"), "--seed"),
        (("--compare",), "--compare"),
        (("--no-compare",), "--compare"),
        (("--regime", "ai-diffusion"), "--regime"),
        (("--rules", "."), "--rules"),
    ],
)
def test_list_params_refuses_a_flag_it_would_not_read(
    tmp_path: Path, extra: tuple[str, ...], flag: str
) -> None:
    p = straits("market", "--list-params", *extra, cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith(f"error: {flag}:"), p.stderr
    assert not (tmp_path / "x.html").exists()


def test_list_params_reads_set_and_json() -> None:
    p = straits("market", "--list-params", "--json", "--set", "demand.shift_speed=0.3")
    assert p.returncode == 0, p.stderr
    row = next(r for r in json.loads(p.stdout) if r["path"] == "demand.shift_speed")
    assert row["value"] == 0.3


# -- the summary, the sweep ----------------------------------------------------------------


def test_peak_offshore_mw_is_null_when_nothing_was_rented(tmp_path: Path, rules: RuleSet) -> None:
    m = load_market(_short(tmp_path, "2025-06", "2025-07", "ai-diffusion"))[0]
    r = simulate(m, rules=rules, firms=20)
    assert all(sum(x.offshore_mw.values()) == 0 for x in r.months)
    assert r.summary()["peak_offshore_mw"] is None
    full = simulate(load_market()[0], rules=rules, firms=20).summary()["peak_offshore_mw"]
    assert full["mw"] > 0 and full["month"]


def _params(n: int) -> list[RangeParam]:
    return [RangeParam(f"p{i}", 0.0, 1.0, "s", "M", False) for i in range(n)]


@pytest.mark.parametrize(
    ("y", "measured"),
    [
        (np.full(8, np.nan), False),  # no run has a value
        (np.full(8, 3.0), False),  # a constant metric
        (np.array([np.nan] * 6 + [1.0, 2.0]), False),  # two finite runs
        (np.arange(8.0), True),
    ],
)
def test_spearman_is_null_where_it_cannot_be_computed(y: np.ndarray, measured: bool) -> None:
    x = np.column_stack([np.arange(8.0), np.arange(8.0)[::-1]])
    rows = spearman(_params(2), x, y)
    for row in rows:
        if measured:
            assert isinstance(row["rho"], float) and math.isclose(abs(row["rho"]), 1.0)
        else:
            assert row["rho"] is None
    json.dumps(rows, allow_nan=False)  # null, never NaN


@pytest.mark.parametrize(
    ("metric", "start", "end", "refused"),
    [
        ("offshore_demand_after_h20", "2023-01", "2027-12", False),
        ("offshore_demand_after_h20", "2023-01", "2026-03", True),
        ("offshore_demand_after_h20", "2025-06", "2026-06", True),
        ("offshore_rise_after_h20", "2024-05", "2026-04", False),
        ("offshore_rise_after_h20", "2024-06", "2026-04", True),
        ("offshore_chip_hours_total", "2025-05", "2025-06", False),
    ],
)
def test_metric_window_outside_the_period(metric: str, start: str, end: str, refused: bool) -> None:
    assert (window_outside(metric, start, end) is not None) is refused


def test_sweep_refuses_a_metric_outside_the_period(tmp_path: Path) -> None:
    f = _short(tmp_path, "2025-05", "2025-06")
    out = tmp_path / "out"
    p = straits(
        "market", "sweep", str(f), "--runs", "3", "--firms", "12", "--backend", "inline",
        "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.startswith("error: --metric:"), p.stderr
    assert not out.exists()
