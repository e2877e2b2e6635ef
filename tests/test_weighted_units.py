"""A weighted sum's coefficients, each counted at its price: the CP-SAT model's integer units
are fitted so that every accepted coefficient (a multiple of 0.001 from 0.001 to 1,000,000) is
a whole number of model units per unit of its metric, and every other coefficient is refused
as an input error naming ``--objective``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from optimizer_cases import DAY0, SOLVERS
from straits.cli import app
from straits.errors import InputError
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.objectives import CARBON, COMPLETION, COST, ENERGY, TIME, objective
from straits.plan.result import Plan
from straits.plan.ticks import TICKS_PER_HOUR
from test_completion_units import two_sites, weighted, weighted_hours


def cheaper_later(usd: float) -> Scenario:
    """:func:`two_sites` with the Malaysian pool (free after a day) at ``usd`` a chip-hour:
    at $1.99 waiting saves $30.72 and ends 24 h later, so it pays below $1.28 an hour of
    makespan; at $1.9975 it saves $7.68, and pays below $0.32 an hour."""
    doc = two_sites().model_dump(mode="json", exclude_none=True)
    doc["sites"][-1]["pools"][0]["usd_per_chip_hour"] = usd
    return parse_scenario(doc)


def recomputed(goal: str, sc: Scenario, plan: Plan) -> float:
    """The weighted sum from the plan's own figures."""
    figures = {
        "cost": plan.objective_usd,
        "time": plan.makespan_hours,
        "completion": weighted_hours(sc, plan),
        "energy": plan.energy_mwh,
        "carbon": plan.tco2e,
    }
    total = 0.0
    for part in goal.split("+"):
        k, _, name = part.rpartition("*")
        total += (float(k) if k else 1.0) * (figures[name] or 0.0)
    return total


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("usd", "goal", "site"),
    [
        (1.99, "cost+1.2*time", "my"),  # $28.80 for the day's wait: it pays
        (1.99, "cost+1.4*time", "sg"),  # $33.60: it does not (rounded to $1, it would)
        (1.99, "cost+1.6*time", "sg"),
        (1.9975, "cost+0.2*time", "my"),  # $4.80 < $7.68
        (1.9975, "cost+0.45*time", "sg"),  # $10.80 > $7.68 (rounded to nothing, it would)
        (1.9975, "cost+0.5*time", "sg"),
        (1.9975, "cost+0.45*completion", "sg"),
        (1.9975, "cost+0.2*completion", "my"),
        (1.99, "0.5*cost+0.7*time", "sg"),  # $0.64 an hour is the break-even at half price
        (1.99, "0.5*cost+0.6*time", "my"),
    ],
)
def test_a_fractional_price_decides_whether_to_wait(
    solver: str, usd: float, goal: str, site: str
) -> None:
    """On both sides of break-even, every solver takes the plan the exact prices prefer, and
    the CP-SAT solvers prove it optimal: the model's optimum is the exact one (before, with
    the time price rounded to whole dollars an hour, `cost+1.4*time` stayed 'feasible' with a
    bound 0.42% below the plan, and `cost+0.5*time` proved a bound $12 below it)."""
    sc = cheaper_later(usd)
    plan = make_plan(sc, objective=goal, solver=solver, time_limit=10)
    (a,) = plan.assignments
    assert a.site == site
    assert (a.start_h >= 24 - 1e-6) == (site == "my")
    assert plan.objective_value == pytest.approx(recomputed(goal, sc, plan), rel=1e-9)
    if solver != "greedy":
        assert plan.status == "optimal"
        assert plan.bound_value == pytest.approx(plan.objective_value, rel=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    "goal",
    ["cost+0.001*energy", "cost+0.25*energy+0.5*carbon", "2.5*cost+0.01*time+0.001*carbon"],
)
def test_the_reported_value_is_the_weighted_sum_of_the_plans_figures(
    solver: str, goal: str
) -> None:
    sc = cheaper_later(1.99)
    plan = make_plan(sc, objective=goal, solver=solver, time_limit=10)
    assert plan.objective_unit == "USD"
    value = plan.objective_value
    assert value == pytest.approx(recomputed(goal, sc, plan), rel=1e-9)
    assert value is not None
    if solver != "greedy":
        assert plan.bound_value is not None and plan.bound_value <= value + 1e-6


def late_if_it_waits(usd_per_day: float) -> Scenario:
    """:func:`cheaper_later` at $1.99, due at the end of the second day (soft): waiting ends
    24 h late and pays while the penalty is under $30.72 a day."""
    doc = cheaper_later(1.99).model_dump(mode="json", exclude_none=True)
    w = doc["workloads"][0]
    w["deadline"] = str(DAY0 + dt.timedelta(days=1))
    w["deadline_policy"] = "soft"
    w["late_penalty_usd_per_day"] = usd_per_day
    return parse_scenario(doc)


@pytest.mark.parametrize("solver", ["cpsat", "lns"])
@pytest.mark.parametrize(
    ("usd_per_day", "goal", "site"),
    [
        (10.0, "cost+0.001*time", "my"),  # $0.42 an hour: counted as $0 before
        (33.6, "cost+0.001*time", "sg"),  # $1.40 an hour: counted as $1, the wait looked paid
        (26.4, "0.5*cost+0.5*time", "sg"),
        # the cost objective counts whole dollars: $1.40 an hour was $1, the wait looked paid
        (33.6, "cost", "sg"),
        (29.0, "cost", "my"),
    ],
)
def test_a_weighted_sum_counts_the_lateness_penalty_at_its_price(
    solver: str, usd_per_day: float, goal: str, site: str
) -> None:
    """In a weighted sum's units a soft deadline's hourly penalty is no longer rounded to whole
    dollars first: the model's optimum is the exact one, proved (before: bounds $10 and $6.70
    under the plan, the second left 'feasible')."""
    sc = late_if_it_waits(usd_per_day)
    plan = make_plan(sc, objective=goal, solver=solver, time_limit=10)
    (a,) = plan.assignments
    assert a.site == site
    assert plan.objective_value == pytest.approx(recomputed(goal, sc, plan), rel=1e-9)
    assert plan.status == "optimal"
    assert plan.bound_value == pytest.approx(plan.objective_value, rel=1e-9)


@given(
    usd_per_day=st.floats(0, 1e12),
    late=st.integers(0, 1_000_000),
    goal=st.sampled_from(["cost", "cost+0.001*time", "0.5*cost+0.5*time", "2.5*cost+1000*time"]),
)
def test_a_penalty_is_never_priced_under_its_rate(usd_per_day: float, late: int, goal: str) -> None:
    """The model's price of ``late`` whole hours of a soft deadline: never below the day's
    rate in model units (to 1e-8, where the hour is rounded), and at most one unit above it
    where it is priced exactly; the $10-a-day penalty the cost objective priced at $0 is
    counted."""
    obj = objective(goal)
    per_day = obj.penalty_units(usd_per_day)
    exact = late * per_day / 24
    got = obj.penalty_of(late, usd_per_day)
    assert got >= exact * (1 - 1e-8) - 1e-9
    if obj.penalty_exact(usd_per_day):
        assert got < exact + 1
    if usd_per_day >= 10 and late:
        assert got > 0


PRICES = [0.001, 0.01, 0.25, 0.5, 1.0, 1.5, 80.0, 123.456, 999_999.999, 1_000_000.0]


@pytest.mark.parametrize("k", PRICES)
@pytest.mark.parametrize("weights", [[1.0], [0.001, 0.25, 7.5, 1000.0]])
def test_every_term_counts_its_price_exactly_in_the_model(k: float, weights: list[float]) -> None:
    """Model units per dollar of cost (penalties, capex), per tick of makespan and of each
    workload's completion, back in dollars: exactly the price (times the weight); and one
    MWh or tonne alone is worth its price to within one model unit, never nothing."""
    sc = weighted(weights)
    for other in (TIME, COMPLETION, ENERGY, CARBON):
        goal = f"{k:.3f}*cost+{k:.3f}*{other.name}"
        obj = objective(goal).fitted(sc)
        scale = obj.model_scale
        assert obj.global_weight(COST) == pytest.approx(k * scale, abs=1e-6)
        assert obj.global_weight(COST) > 0
        if other is TIME:
            assert obj.tick_weight(TIME) * TICKS_PER_HOUR / scale == pytest.approx(k, rel=1e-12)
        elif other is COMPLETION:
            for w in sc.workloads:
                per_hour = obj.done_weight(w) * TICKS_PER_HOUR / scale
                assert per_hour == pytest.approx(k * w.weight, rel=1e-12)
        else:
            mwh, t = (1.0, 0.0) if other is ENERGY else (0.0, 1.0)
            value = obj.model_value(0.0, mwh, t) / scale
            assert k <= value <= k + 1 / scale + 1e-12
        if weights == [1.0]:  # a year of minute ticks stays far inside 64 bits
            per_tick = obj.tick_weight(TIME) + obj.done_weight(sc.workloads[0])
            assert per_tick * 366 * 24 * TICKS_PER_HOUR < 2**61 // 2


def test_a_model_too_fine_for_64_bits_leaves_the_greedy_plan() -> None:
    """The price of a weighted hour times weights 0.001 and 1,000 needs millionths of a dollar
    per tick, and a million times a thousand of those per tick overflows the model's room:
    the greedy plan stands, valued exactly, with the bound it has."""
    sc = weighted([0.001, 1000.0])
    goal = "cost+999999.999*completion"
    plan = make_plan(sc, objective=goal, solver="cpsat", time_limit=10)
    value = plan.objective_value
    assert value is not None and value == pytest.approx(recomputed(goal, sc, plan), rel=1e-9)
    assert value == plan.baseline_value
    assert plan.bound_value is not None and plan.bound_value <= value + 1e-6


def test_the_units_are_the_coarsest_the_prices_allow() -> None:
    sc = weighted([1.0])
    assert objective("cost+1000*time").fitted(sc).model_scale == 60
    assert objective("cost+0.5*time").fitted(sc).model_scale == 600
    assert objective("cost+0.01*time").fitted(sc).model_scale == 6_000
    assert objective("cost+80*carbon").fitted(sc).model_scale == 1
    assert objective("cost+0.25*energy").fitted(sc).model_scale == 100
    assert objective("0.5*cost+time").fitted(sc).model_scale == 600


@pytest.mark.parametrize(
    "goal",
    [
        "cost+0*time",
        "cost+0.0*energy",
        "cost+-1*time",
        "cost+nan*time",
        "cost+inf*carbon",
        "cost+1e400*time",
        "cost+1e-30*time",
        "cost+1e-6*energy",
        "cost+0.0005*completion",
        "cost+0.0015*time",
        "cost+1000000.001*time",
        "cost+1e7*carbon",
        "cost+.5*time",
        "cost+1_000*time",
        "cost+time*2",
        "cost+",
        "cost++time",
    ],
)
def test_a_coefficient_the_model_cannot_count_is_refused(goal: str) -> None:
    with pytest.raises(InputError) as err:
        objective(goal)
    assert err.value.path == "objective"


@pytest.mark.parametrize(
    ("goal", "name"),
    [
        ("cost+0.5*time", "cost+0.5*time"),
        ("cost+1e-3*energy", "cost+0.001*energy"),
        ("cost+1e+3*time", "cost+1000*time"),
        ("1.000*cost+5.*carbon", "cost+5*carbon"),
        ("cost+1000000*time", "cost+1000000*time"),
        ("1*time", "time"),
    ],
)
def test_accepted_coefficients(goal: str, name: str) -> None:
    assert objective(goal).name == name


@pytest.mark.parametrize("goal", ["cost+1e-30*time", "cost+nan*time", "cost+0.5*time*2"])
def test_the_cli_refuses_a_coefficient_with_exit_2(tmp_path: Path, goal: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cheaper_later(1.99).model_dump(mode="json", exclude_none=True)))
    r = CliRunner().invoke(app, ["plan", str(path), "--objective", goal, "--json", "-q"])
    assert r.exit_code == 2
    assert "objective" in r.output


def test_plan_help_shows_the_weighted_sums_as_written() -> None:
    # the help is rendered as markdown: an unescaped * pair was emphasis ("cost+80carbon")
    res = CliRunner().invoke(app, ["plan", "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    for example in ("cost+80*carbon", "cost+0.5*time", "cost+1000*completion"):
        assert example in text
