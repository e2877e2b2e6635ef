"""The market simulation: the JSON contract, invariants, the story's directions, determinism."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any, cast

import pytest

from straits.market import load_market, simulate
from straits.market.loading import MarketError, range_params, with_values
from straits.market.params import KINDS, SOURCE_FIELDS, Kind
from straits.market.result import MarketResult
from straits.model.request import CheckRequest
from straits.rules import RuleSet

H20_LETTER = "2025-04"


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return load_market()[0]


@pytest.fixture(scope="module")
def enacted(market, rules: RuleSet) -> MarketResult:  # type: ignore[no-untyped-def]
    return simulate(market, regime="enacted", rules=rules, trace=True)


@pytest.fixture(scope="module")
def diffusion(market, rules: RuleSet) -> MarketResult:  # type: ignore[no-untyped-def]
    return simulate(market, regime="ai-diffusion", rules=rules, trace=True)


def _months(r: MarketResult, first: str, last: str) -> list:  # type: ignore[type-arg]
    return [x for x in r.months if first <= x.month <= last]


def _offshore_demand(recs: list) -> float:  # type: ignore[type-arg]
    return sum(sum(x.offshore_demand_chip_hours.values()) for x in recs) / len(recs)


def test_json_contract_keys(enacted: MarketResult) -> None:
    doc = enacted.to_json()
    assert doc["regime"] == "enacted"
    assert doc["months"][0]["month"] == "2023-01" and doc["months"][-1]["month"] == "2027-12"
    countries = set(enacted.market.supply.countries)
    for m in doc["months"]:
        for key in ("offshore_chip_hours", "price_usd_per_chip_hour", "utilisation"):
            assert set(m[key]) == countries
            assert all(isinstance(v, float) for v in m[key].values())
        assert isinstance(m["home_chip_hours"], float)
        assert isinstance(m["domestic_accelerator_chip_hours"], float)
    assert doc["unpublished"] and set(doc["unpublished"]) <= set(doc["midpoints_used"])


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_demand_is_conserved(regime: str, enacted: MarketResult, diffusion: MarketResult) -> None:
    r = enacted if regime == "enacted" else diffusion
    for x in r.months:
        served = x.home_h100e_hours + x.domestic_h100e_hours + x.offshore_total_h100e_hours
        assert served + x.unmet_h100e_hours == pytest.approx(x.demand_h100e_hours, rel=1e-9)
        assert x.unmet_h100e_hours >= -1e-6
        assert x.foreign_unmet_h100e_hours <= x.foreign_demand_h100e_hours * (1 + 1e-9)


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_capacity_is_never_exceeded(
    regime: str, enacted: MarketResult, diffusion: MarketResult
) -> None:
    r = enacted if regime == "enacted" else diffusion
    for x in r.months:
        for c in r.countries:
            used = x.offshore_chip_hours[c] + x.foreign_chip_hours[c]
            assert used <= x.capacity_chip_hours[c] * (1 + 1e-9)
            assert 0.0 <= x.utilisation[c] <= 1.0 + 1e-9


def _days(month: str) -> list[dt.date]:
    y, m = (int(v) for v in month.split("-"))
    d = dt.date(y, m, 1)
    out = []
    while d.month == m:
        out.append(d)
        d += dt.timedelta(days=1)
    return out


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_nothing_used_that_the_rules_forbid(
    regime: str, enacted: MarketResult, diffusion: MarketResult, rules: RuleSet
) -> None:
    """Every option a firm type used in a month, asked again of the rules here on every day
    of that month: if every day says deny, nothing may have been used. The months: those in
    which a rule changes (partial months) and two ordinary ones."""
    r = enacted if regime == "enacted" else diffusion
    types = {t.id: t for t in r.market.firm_types}
    months = {"2023-11", "2024-06", "2025-04", "2025-05", "2025-08", "2026-01", "2027-06"}
    used = [u for u in r.usage if u.chip_hours > 0 and u.month in months]
    assert used
    checked = 0
    seen: set[tuple[object, ...]] = set()
    asks: list[tuple[Any, list[CheckRequest]]] = []
    for u in used:
        t = types[u.firm_type]
        data = t.datasets.get(cast(Kind, u.kind))
        key = (
            u.month[:7],
            t.hq,
            tuple(t.authorizations),
            u.kind,
            u.option,
            u.country,
            u.operator_hq,
            u.chip,
            data,
        )
        if key in seen:
            continue
        seen.add(key)
        action = {"pretrain": "train", "finetune": "finetune"}.get(u.kind, "serve")
        asks.append(
            (
                u,
                [
                    CheckRequest.model_validate(
                        {
                            "date": day,
                            "regime": regime,
                            "action": action,
                            "tenant": {"hq": t.hq, "authorizations": list(t.authorizations)},
                            "site": {"country": u.country, "operator_hq": u.operator_hq},
                            "chip": u.chip,
                            "data": None
                            if data is None
                            else data.model_dump(exclude=SOURCE_FIELDS),
                        }
                    )
                    for day in _days(u.month)
                ],
            )
        )
    answers = iter(rules.check_many([r for _, reqs in asks for r in reqs]))
    for u, reqs in asks:
        decisions = {next(answers).decision for _ in reqs}
        assert decisions != {"deny"}, u
        if "allow" not in decisions:
            assert u.access < 1.0
        checked += 1
    assert checked > 20


def test_offshore_rental_demand_rises_after_the_h20_letter(enacted: MarketResult) -> None:
    """The reports' rise (docs/market.md). A strict expected failure while H20s ordered before
    the 2025-04-09 letter were delivered after it with no licence (~204k at seed 1): once they
    are cancelled on arrival, home firms run short from late 2025 and rent abroad."""
    before = _offshore_demand(_months(enacted, "2024-05", "2025-04"))
    after = _offshore_demand(_months(enacted, "2025-05", "2026-04"))
    assert after > before


def _owned_by_chip(r: MarketResult, first: str, last: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for u in r.usage:
        if u.option == "own" and first <= u.month <= last:
            out[u.chip] = out.get(u.chip, 0.0) + u.chip_hours
    return out


def test_ai_diffusion_bars_the_2026_h200_purchases(
    enacted: MarketResult, diffusion: MarketResult
) -> None:
    # the 2026-01-15 case-by-case band lets home firms buy H200s under the enacted rules; the
    # Diffusion rule's Tier 3 procurement bar (presumption of denial) still stands under
    # ai-diffusion, so its home fleet has none: why home Nvidia chip-hours are lower there
    late = ("2026-01", "2027-12")
    assert _owned_by_chip(enacted, *late).get("H200-SXM", 0.0) > 0.0
    assert _owned_by_chip(diffusion, *late).get("H200-SXM", 0.0) <= 0.0


def test_ai_diffusion_puts_more_work_on_the_chips_home_firms_still_get(
    enacted: MarketResult, diffusion: MarketResult
) -> None:
    # barred from offshore, home firms run more on the chips both regimes let them own (H20,
    # Ascend, the older fleet: a chip may lose a little to another that serves a kind better);
    # the H200s only the enacted rules let them buy are apart
    late = ("2025-06", "2027-12")
    a, b = _owned_by_chip(enacted, *late), _owned_by_chip(diffusion, *late)
    both = {c for c in a if b.get(c, 0.0) > 0.0}
    assert both and both != set(a)
    assert sum(b[c] for c in both) > sum(a[c] for c in both)


def test_ai_diffusion_moves_offshore_demand_home(
    enacted: MarketResult, diffusion: MarketResult
) -> None:
    late = ("2025-06", "2027-12")
    a, b = _months(enacted, *late), _months(diffusion, *late)
    assert sum(x.offshore_total for x in b) == 0.0
    assert sum(x.offshore_total for x in a) > 0.0
    # domestic accelerators never lose work to the stricter rule (with the calibrated estimator
    # their capped supply is used up under both regimes, so the two may be equal)
    dom_a = sum(x.domestic_accelerator_chip_hours for x in a)
    dom_b = sum(x.domestic_accelerator_chip_hours for x in b)
    assert dom_b >= dom_a * (1 - 1e-9)
    # before the diffusion rule's compliance date the two regimes are the same market
    for x, y in zip(
        _months(enacted, "2023-01", "2025-04"),
        _months(diffusion, "2023-01", "2025-04"),
        strict=True,
    ):
        assert x.to_json() == y.to_json()


def test_data_residency_keeps_personal_data_work_at_home(enacted: MarketResult) -> None:
    assert sum(x.residency_home_chip_hours for x in enacted.months) > 0
    for u in enacted.usage:
        if u.option == "rent" and u.kind == "finetune" and u.firm_type == "cn-cloud":
            # 3M subjects need a CAC security assessment: only the uptake share may go abroad
            assert u.access <= 0.1 + 1e-9


def test_rule_events_come_from_the_packs(enacted: MarketResult, diffusion: MarketResult) -> None:
    dates = {e.date.isoformat(): e for e in enacted.events}
    assert "us-ear-2025-h20" in dates["2025-04-09"].added
    assert "us-ear-2025-h20-licensed" in dates["2025-08-11"].added
    assert "my-sta-2025-permit" in dates["2025-07-14"].added
    assert "us-ear-2026-case-by-case" in dates["2026-01-15"].added
    assert not any("diffusion" in rid for e in enacted.events for rid in e.added)
    assert any("us-diffusion-tier3-hq-compute" in e.added for e in diffusion.events)


def test_same_seed_same_result_other_seed_differs(market, rules: RuleSet) -> None:  # type: ignore[no-untyped-def]
    a = simulate(market, rules=rules, seed=7, firms=60).to_json()
    b = simulate(market, rules=rules, seed=7, firms=60).to_json()
    c = simulate(market, rules=rules, seed=8, firms=60).to_json()
    assert a == b
    assert a["months"] != c["months"]


@pytest.mark.parametrize("firms", [5, 37, 250])
def test_firm_counts_scale(market, rules: RuleSet, firms: int) -> None:  # type: ignore[no-untyped-def]
    r = simulate(market, rules=rules, firms=firms)
    assert sum(r.firms.values()) == max(firms, len(market.firm_types))


def test_invariants_hold_across_the_ranges(market, rules: RuleSet) -> None:  # type: ignore[no-untyped-def]
    """Random points of every range (seeded): conservation and capacity hold everywhere."""
    import numpy as np

    raw = market.model_dump(by_alias=True, mode="json")
    ranges = range_params(raw)
    rng = np.random.default_rng(3)
    from straits.market.loading import validate

    for _ in range(4):
        values = {p.path: float(rng.uniform(p.low, p.high)) for p in ranges}
        m = validate(with_values(raw, values), "sampled")
        for x in simulate(m, rules=rules, firms=40).months:
            served = x.home_h100e_hours + x.domestic_h100e_hours + x.offshore_total_h100e_hours
            assert served + x.unmet_h100e_hours == pytest.approx(x.demand_h100e_hours, rel=1e-9)
            for c in x.capacity_chip_hours:
                assert x.offshore_chip_hours[c] + x.foreign_chip_hours[c] <= x.capacity_chip_hours[
                    c
                ] * (1 + 1e-9)
            for c, v in x.price_usd_per_chip_hour.items():  # none where nothing is offered
                assert (v is None) == (x.capacity_chip_hours[c] <= 0)
                assert v is None or math.isfinite(v)


def test_kinds_are_the_four_documented() -> None:
    assert KINDS == ("pretrain", "finetune", "serve_home", "serve_abroad")


def test_the_h20_letter_causes_the_rise(market, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """The same market under rules without the 2025-04-09 letter (the us-ear pack with its
    h20.cedar removed, loaded as a user pack that replaces the shipped one): less offshore
    demand after April 2025, the same before."""
    import shutil
    from importlib import resources

    from straits.rules import ruleset

    src = Path(str(resources.files("straits.rules") / "packs" / "us-ear"))
    dst = tmp_path_factory.mktemp("packs") / "us-ear"
    shutil.copytree(src, dst)
    (dst / "h20.cedar").unlink()
    shutil.rmtree(dst / "cases", ignore_errors=True)
    without = ruleset((dst.parent,))
    assert not any(r.id.startswith("us-ear-2025-h20") for r in without.rules)
    a = simulate(market, regime="enacted", firms=60)
    b = simulate(market, regime="enacted", firms=60, rules=without)
    after = ("2025-05", "2026-04")
    assert _offshore_demand(_months(a, *after)) > _offshore_demand(_months(b, *after))
    for x, y in zip(
        _months(a, "2023-01", "2025-03"), _months(b, "2023-01", "2025-03"), strict=True
    ):
        assert x.to_json() == y.to_json()

    def h20(r: MarketResult) -> float:
        return float(sum(x.chips_ordered.get("H20", 0.0) for x in _months(r, *after)))

    assert h20(a) < h20(b)


def test_docs_list_every_shipped_parameter() -> None:
    """docs/market.md describes the shipped market as it is: every parameter path is there."""
    from straits.market.loading import shipped_raw, walk_params

    doc = (Path(__file__).resolve().parents[1] / "docs" / "market.md").read_text()
    missing = [path for path, _ in walk_params(shipped_raw()) if f"`{path}`" not in doc]
    assert not missing


def test_every_shipped_figure_has_source_and_confidence() -> None:
    from straits.market.loading import shipped_raw, walk_params

    for path, node in walk_params(shipped_raw()):
        assert len(str(node["source"])) > 10, path
        assert node["confidence"] in ("V", "V2", "D", "M"), path
        if node.get("unpublished"):
            assert "low" in node and "high" in node, f"{path}: unpublished must be a range"


#: numbers of the shipped file that are no figure about the world: the format's version, the
#: seed, the reference server's GPU count (its `kw` source says "for 8 GPUs") and each firm
#: type's `count` (how finely its share is cut into firms; `--firms` rescales it)
NOT_FIGURES = (
    r"straits-market",
    r"seed",
    r"supply\.reference_server\.gpus",
    r"firm_types\[[^]]+\]\.count",
)


def test_no_shipped_number_lacks_a_source_and_confidence() -> None:
    """mkt64: the check above walks parameters only, and figures outside them slipped through:
    the people each firm type's data holds (`datasets.*.subjects`, which decide the CAC
    mechanism a transfer needs) and the market's model shapes (`models.*`, which size every
    kind of work) had no source and no confidence mark. Every number of the shipped file is a
    parameter's, or sits in an entry that carries a source and a confidence, or is listed
    above as no figure."""
    import re

    from straits.market.loading import _is_param, shipped_raw

    bare: list[str] = []

    def walk(node: object, path: str, sourced: bool) -> None:
        if isinstance(node, dict):
            here = sourced or _is_param(node) or ("source" in node and "confidence" in node)
            if "source" in node and not _is_param(node):
                assert len(str(node["source"])) > 10, path
                assert node.get("confidence") in ("V", "V2", "D", "M"), path
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k), here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                key = next(
                    (
                        item[k]
                        for k in ("id", "chip", "date")
                        if isinstance(item, dict) and k in item
                    ),
                    i,
                )
                walk(item, f"{path}[{key}]", sourced)
        elif (
            isinstance(node, int | float)
            and not isinstance(node, bool)
            and not sourced
            and not any(re.fullmatch(p, path) for p in NOT_FIGURES)
        ):
            bare.append(path)

    walk(shipped_raw(), "", False)
    assert not bare, bare


def test_the_report_shows_the_other_figures_with_their_source() -> None:
    """mkt64: the counts of people and the model shapes are listed with their source in the
    HTML report, as the parameters are."""
    from straits.market import load_market, simulate
    from straits.market.loading import sourced_figures
    from straits.market.report import market_page

    m = load_market()[0]
    html = market_page(simulate(m, firms=30)).render()
    entries = [path for path, _ in sourced_figures(m.model_dump(by_alias=True, mode="json"))]
    assert "models.train" in entries and "firm_types[cn-cloud].datasets.finetune" in entries
    for path in entries:
        assert f">{path}<" in html, path


def test_a_users_model_shape_does_not_keep_the_shipped_source(tmp_path: Path) -> None:
    """`extends: shipped` merged a user's `models.train` key by key, so a 7B shape without a
    `source` kept the shipped "Qwen2-72B's published shape" and confidence, and the HTML
    report's "Other figures with their source" credited the user's figures to it (rev64c).
    A source of the user's own stays; one that only changes the confidence keeps the rest."""
    from straits.market.loading import sourced_figures

    seven_b = "{params: 7.0e9, layers: 32, d_model: 4096, heads: 32, seq_len: 4096"
    path = tmp_path / "m.yaml"
    path.write_text(f"extends: shipped\nmodels:\n  train: {seven_b}}}\n")
    m, raw, _ = load_market(path)
    assert (m.models["train"].source, m.models["train"].confidence) == (None, None)
    assert "models.train" not in dict(sourced_figures(raw))
    assert m.models["serve"].source is not None  # untouched: the shipped entry whole
    path.write_text(
        f"extends: shipped\nmodels:\n  train: {seven_b}, source: mine, confidence: V}}\n"
    )
    m = load_market(path)[0]
    assert (m.models["train"].source, m.models["train"].confidence) == ("mine", "V")
    path.write_text("extends: shipped\nmodels:\n  train: {confidence: V2}\n")
    m = load_market(path)[0]
    assert m.models["train"].confidence == "V2" and m.models["train"].source is not None
    path.write_text(f"extends: shipped\nmodels:\n  train: {seven_b}, confidence: Z}}\n")
    with pytest.raises(MarketError) as exc:  # the user's own confidence is still read
        load_market(path)
    assert (exc.value.path, exc.value.line) == ("models.train.confidence", 3)
