"""What a plan minimizes: the objectives, registered in one place.

An objective is a weighted sum of *metrics*: cost (USD, with soft-deadline penalties and the
amortized price of bought chips), time (the makespan, hours), completion (the sum of workload
completion times, each weighted by its workload's ``weight``: weighted hours), energy (MWh) and
carbon (tCO2e). The named objectives are one metric each; a weighted sum such as
``cost+80*carbon`` (a carbon price of $80 a tonne), ``cost+1000*time`` or
``cost+1000*completion`` ($1,000 a weighted hour) prices the others in dollars, each weight a
whole number of thousandths from 0.001 to 1,000,000 (anything else is refused), and the
CP-SAT model's integer units are fitted so that every weight counts exactly
(:meth:`Objective.fitted`). Named objectives other than ``cost`` let cost break ties.

Every solver asks the objective the same few things: how to rank a stage's options on their
own (:meth:`Objective.row_keys`), how to compare two scheduled candidates
(:meth:`Objective.stage_key`), a choice's additive value in the CP-SAT model's whole units
(:meth:`Objective.model_value`), the weights of the terms that are not additive, a plan's value
(:meth:`Objective.plan_value`), and why an option lost (:meth:`Objective.lost`). Adding an
objective is adding a :class:`Metric` (or a name for a weighted sum) to this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from straits.errors import InputError
from straits.plan.reasons import Loss, ReasonCode
from straits.plan.ticks import TICKS_PER_HOUR

if TYPE_CHECKING:  # numpy and the plan types only in annotations: the CLI reads the names
    import numpy as np

    from straits.model.scenario import Scenario, Workload
    from straits.plan.result import Assignment, Plan


EnergyOf = Callable[["Assignment"], tuple[float, float]]
"""An assignment's (MWh, tCO2e)"""


def _energy(plan: Plan, energy_of: EnergyOf | None, i: int) -> float:
    if energy_of is None:
        return plan.energy_mwh if i == 0 else plan.tco2e
    return sum(energy_of(a)[i] for a in plan.assignments)


class StageMetrics(NamedTuple):
    """One stage at one option and chip count, as the objectives see it."""

    cost: float
    """USD: compute, data and weights movement, bought chips' capex"""
    penalty: float
    """USD of soft-deadline penalty this placement adds"""
    end: float
    """hours from the plan start"""
    mwh: float
    tco2e: float

    @property
    def charged(self) -> float:
        return self.cost + self.penalty


class RowMetrics(NamedTuple):
    """Every option of a stage on an empty pool, as arrays (one entry per row)."""

    cost: np.ndarray
    end: np.ndarray
    mwh: np.ndarray
    tco2e: np.ndarray


@dataclass(frozen=True)
class Metric:
    """One measure of a plan."""

    name: str
    unit: str
    additive: bool
    """a sum over stages (else a function of when stages end: makespan, completion)"""
    model_scale: int
    """CP-SAT model units per unit (whole dollars, ticks of a minute, kWh, kg; for completion,
    ticks times thousandths of a weight)"""
    code: ReasonCode
    """the reason code of an option that lost on this metric"""
    stage: Callable[[StageMetrics, Workload], float]
    rows: Callable[[RowMetrics, Workload], np.ndarray]
    plan: Callable[[Plan, Scenario, EnergyOf | None], float]
    fmt: str
    """how a difference reads: '{d}' is replaced by the formatted amount"""


def _completion(plan: Plan, sc: Scenario, _: EnergyOf | None = None) -> float:
    done: dict[str, float] = {}
    for a in plan.assignments:
        done[a.workload] = max(done.get(a.workload, 0.0), a.end_h)
    return float(sum(w.weight * done[w.id] for w in sc.workloads if w.id in done))


#: below this many model units a day, a soft deadline's penalty is priced to the unit in the
#: model (:meth:`Objective.penalty_exact`)
EXACT_PENALTY_BELOW = 2**31

#: the model counts workload weights in thousandths (the scenario accepts weights from 0.001
#: in steps of 0.001: see ``Weight`` in model/types.py), so every weight is a whole number there
WEIGHT_UNITS = 1000


def completion_weight(w: Workload) -> int:
    """A workload's completion weight in the model's whole units (thousandths: exact, as the
    scenario's weights are whole thousandths, and at least 1)."""
    return max(1, round(w.weight * WEIGHT_UNITS))


COST = Metric(
    "cost",
    "USD",
    True,
    1,
    ReasonCode.COST,
    lambda m, w: m.charged,
    lambda r, w: r.cost,
    lambda p, sc, e: p.objective_usd,
    "${d:,.0f} more",
)
TIME = Metric(
    "time",
    "h",
    False,
    TICKS_PER_HOUR,
    ReasonCode.TIME,
    lambda m, w: m.end,
    lambda r, w: r.end,
    lambda p, sc, e: p.makespan_hours,
    "ends {d:,.1f} h later",
)
COMPLETION = Metric(
    "completion",
    "weighted h",
    False,
    TICKS_PER_HOUR * WEIGHT_UNITS,
    ReasonCode.TIME,
    lambda m, w: m.end * w.weight,
    lambda r, w: r.end * w.weight,
    _completion,
    "ends {d:,.1f} weighted h later",
)
ENERGY = Metric(
    "energy",
    "MWh",
    True,
    1000,
    ReasonCode.ENERGY,
    lambda m, w: m.mwh,
    lambda r, w: r.mwh,
    lambda p, sc, e: _energy(p, e, 0),
    "{d:,.1f} MWh more",
)
CARBON = Metric(
    "carbon",
    "tCO2e",
    True,
    1000,
    ReasonCode.CARBON,
    lambda m, w: m.tco2e,
    lambda r, w: r.tco2e,
    lambda p, sc, e: _energy(p, e, 1),
    "{d:,.2f} tCO2e more",
)
METRICS: dict[str, Metric] = {m.name: m for m in (COST, TIME, COMPLETION, ENERGY, CARBON)}


@dataclass(frozen=True)
class Objective:
    """A weighted sum of metrics to minimize (after the number of unplaced stages)."""

    name: str
    terms: tuple[tuple[Metric, float], ...]
    description: str = ""
    decimals: int | None = None
    """decimals of a dollar (per tick-hour for time terms) a weighted sum's model counts in:
    the most that any coefficient, and the completion price times any workload's weight,
    needs, so that each is a whole number of model units. Set by :meth:`fitted` to what the
    scenario's weights need (None: as if some weight had three decimals)"""

    @property
    def single(self) -> Metric | None:
        """The metric of a named objective (weight 1), None for a weighted sum."""
        if len(self.terms) == 1 and self.terms[0][1] == 1.0:
            return self.terms[0][0]
        return None

    @property
    def is_cost(self) -> bool:
        return self.single is COST

    @property
    def tie_cost(self) -> bool:
        """Whether cost breaks ties (named objectives other than cost)."""
        return self.single is not None and not self.is_cost

    @property
    def unit(self) -> str:
        one = self.single
        return one.unit if one is not None else "USD"

    @property
    def model_scale(self) -> int:
        """Model units per unit of the objective. A weighted sum counts 10 ** :attr:`decimals`
        parts of a dollar, times 60 with a time or completion term (an hour's price divides
        into minute ticks): the coarsest units in which every coefficient (and the completion
        price times each weight) is whole, so ``cost+1000*time`` counts sixtieths of a dollar,
        ``cost+0.5*time`` six-hundredths and ``cost+80*carbon`` whole dollars (finer units
        leave less of the 64-bit room to large portfolios)."""
        one = self.single
        if one is not None:
            return one.model_scale
        scale = TICKS_PER_HOUR if any(not m.additive for m, _ in self.terms) else 1
        d: int = self.decimals if self.decimals is not None else self._needs(None)
        return scale * int(10**d)

    def _needs(self, sc: Scenario | None) -> int:
        """The decimals :attr:`decimals` must be for ``sc``'s weights (None: any weights)."""
        d = max((_decimals(k) for m, k in self.terms if m is not COMPLETION), default=0)
        k = self.weight(COMPLETION)
        if k and sc is None:
            d = max(d, _decimals(k) + WEIGHT_DECIMALS)
        elif k and sc is not None:
            price = round(k * 10**WEIGHT_DECIMALS)  # both in thousandths: their product exact
            d = max(
                d, *(_places(price * completion_weight(w), _MOST_DECIMALS) for w in sc.workloads)
            )
        return d

    def fitted(self, sc: Scenario) -> Objective:
        """This objective with the model's units fitted to ``sc``'s weights (see
        :attr:`decimals`); the model, its evaluation and the portfolio's choice values all
        use the fitted objective, so they count in the same units."""
        if self.single is not None:
            return self
        d = self._needs(sc)
        return self if d == self.decimals else replace(self, decimals=d)

    def weight(self, metric: Metric) -> float:
        return sum(w for m, w in self.terms if m is metric)

    @property
    def needs_energy(self) -> bool:
        """Whether the objective reads energy or carbon (else the planners skip them)."""
        return any(m is ENERGY or m is CARBON for m, _ in self.terms)

    # --- greedy ------------------------------------------------------------------------------
    def primary(self, m: StageMetrics, w: Workload) -> float:
        if len(self.terms) == 1:
            metric, k = self.terms[0]
            return k * metric.stage(m, w)
        return sum(k * metric.stage(m, w) for metric, k in self.terms)

    def stage_key(self, m: StageMetrics, w: Workload) -> tuple[float, float]:
        """How the greedy planner compares scheduled candidates: the objective, then the
        finish (for cost) or the cost (for the others)."""
        return self.primary(m, w), (m.end if self.is_cost else m.charged)

    def row_keys(self, r: RowMetrics, w: Workload) -> tuple[np.ndarray, np.ndarray]:
        """(primary, secondary) of every row on an empty pool, for ranking."""
        primary: np.ndarray = r.cost * 0.0
        for metric, k in self.terms:
            primary = primary + k * metric.rows(r, w)
        return primary, (r.end if self.is_cost else r.cost)

    def lost(self, mine: StageMetrics, best: StageMetrics, w: Workload, label: str) -> Loss:
        """Why a lawful, free candidate lost to ``best`` (called ``label``)."""
        d = self.primary(mine, w) - self.primary(best, w)
        if d > 1e-6:
            one = self.single
            if one is not None:
                return Loss(one.code, f"{one.fmt.format(d=d)} than {label}")
            return Loss(ReasonCode.OBJECTIVE, f"{d:,.0f} more on {self.name} than {label}")
        if self.is_cost and mine.end > best.end + 1e-6:
            return Loss(ReasonCode.TIME, f"ends {mine.end - best.end:,.1f} h after {label}")
        return Loss(ReasonCode.COST, f"${mine.charged - best.charged:,.0f} more than {label}")

    # --- CP-SAT ------------------------------------------------------------------------------
    def additive_value(self, cost: float, mwh: float, tco2e: float) -> float:
        """A choice's additive terms in the objective's unit (cost without penalties, which
        are counted per workload)."""
        m = StageMetrics(cost, 0.0, 0.0, mwh, tco2e)
        return sum(k * metric.stage(m, _NOBODY) for metric, k in self.terms if metric.additive)

    def model_value(self, cost: float, mwh: float, tco2e: float) -> int:
        """:meth:`additive_value` in whole model units, rounded up."""
        return max(0, math.ceil(self.additive_value(cost, mwh, tco2e) * self.model_scale - 1e-9))

    def global_weight(self, metric: Metric) -> int:
        """Model units per unit of ``metric`` (per dollar of penalty or capex for cost)."""
        return round(self.weight(metric) * self.model_scale)

    def penalty_units(self, usd_per_day: float) -> int:
        """Model units per day late of a soft deadline priced ``usd_per_day``: the day's
        dollars times the cost weight, rounded once."""
        return round(usd_per_day * self.global_weight(COST))

    def penalty_exact(self, usd_per_day: float) -> bool:
        """Whether the model prices ``late`` hours of this penalty as :meth:`penalty_of`
        rounds them up (a variable of its own, ``24 * pen >= late * per_day``), else as a
        whole number of units an hour. The hour's price was rounded to whole units, so the
        cost objective (whole dollars) priced a $10-a-day penalty at $0 an hour and CP-SAT
        ignored it, and a $100-a-day one at $4. Exact where the day's units are not a
        multiple of 24 and small enough for the product to stay far inside 64 bits; past
        2**31 units a day, rounding the hour is off by less than 1e-8 of the price."""
        per_day = self.penalty_units(usd_per_day)
        return per_day % 24 != 0 and per_day < EXACT_PENALTY_BELOW

    def penalty_of(self, late_hours: int, usd_per_day: float) -> int:
        """Model units a soft deadline priced ``usd_per_day`` charges for ``late_hours``
        whole hours late, as the model counts them (:meth:`penalty_exact`)."""
        per_day = self.penalty_units(usd_per_day)
        if self.penalty_exact(usd_per_day):
            return -(-late_hours * per_day // 24)
        return late_hours * round(per_day / 24)

    def capex_units(self, usd_per_chip: float) -> int:
        """Model units per bought chip whose amortized share costs ``usd_per_chip``."""
        return round(usd_per_chip * self.global_weight(COST))

    def tick_weight(self, metric: Metric) -> int:
        """Model units per tick of a time metric (the makespan; a workload's completion is
        weighted too: :meth:`done_weight`): exactly its price, as every coefficient is whole
        in the model's units."""
        return round(self.weight(metric) * self.model_scale / TICKS_PER_HOUR)

    def done_weight(self, w: Workload) -> int:
        """Model units per tick of ``w``'s completion time (0 when the objective has no
        completion term): exactly the price times the weight, once :meth:`fitted` to a
        scenario holding ``w`` (or unfitted, for any weight in thousandths)."""
        k = self.weight(COMPLETION)
        if not k:
            return 0
        return round(k * completion_weight(w) * self.model_scale / (TICKS_PER_HOUR * WEIGHT_UNITS))

    # --- plans -------------------------------------------------------------------------------
    def plan_value(self, plan: Plan, sc: Scenario, energy_of: EnergyOf | None = None) -> float:
        """The plan's value; ``energy_of`` gives an assignment's (MWh, tCO2e) as the model
        counts them (unknown chip power or grid at the highest known figure), else the plan's
        own figures (unknowns at none)."""
        return sum(k * metric.plan(plan, sc, energy_of) for metric, k in self.terms)

    def describe(self, value: float) -> str:
        return f"{value:,.0f} USD" if self.unit == "USD" else f"{value:,.2f} {self.unit}"


class _Nobody:
    weight = 0.0


_NOBODY: Workload = _Nobody()  # type: ignore[assignment]


OBJECTIVES: dict[str, Objective] = {
    "cost": Objective(
        "cost", ((COST, 1.0),), "rental, data movement, bought chips and soft-deadline penalties"
    ),
    "time": Objective("time", ((TIME, 1.0),), "the makespan, cost breaking ties"),
    "completion": Objective(
        "completion",
        ((COMPLETION, 1.0),),
        "the weighted sum of workload completion times (weighted hours), cost breaking ties",
    ),
    "energy": Objective("energy", ((ENERGY, 1.0),), "energy (MWh), cost breaking ties"),
    "carbon": Objective("carbon", ((CARBON, 1.0),), "emissions (tCO2e), cost breaking ties"),
}
"""The named objectives; any weighted sum of their metrics is accepted too."""

#: the largest weight of a term (dollars per hour, tonne or MWh): keeps the model's integer
#: objective far inside 64 bits
MAX_WEIGHT = 1e6
#: a term's weight is a whole number of thousandths (as a workload's weight is): the model's
#: units are fitted so that each counts exactly, and finer ones would need units so fine that
#: ordinary portfolios no longer fit 64-bit integers
WEIGHT_DECIMALS = 3
#: ASCII digits only: ``\d`` and float() read any script's (``cost+٨٠*carbon`` was planned
#: as cost+80*carbon, atk29)
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?"
_TERM = re.compile(r"^\s*(?:(.*?)\s*\*\s*)?([a-z][a-z0-9_-]*)\s*$")
EXPECTED = (
    f"one of {', '.join(OBJECTIVES)}, or a weighted sum of them in dollars such as "
    "cost+80*carbon ($80 a tonne) or cost+0.5*time ($0.50 an hour of makespan), each weight "
    f"from 0.001 to {MAX_WEIGHT:,.0f} in steps of 0.001"
)


#: the most decimals the model's units need: a price's three and a workload weight's three
_MOST_DECIMALS = 2 * WEIGHT_DECIMALS


def _decimals(x: float) -> int:
    """The fewest decimals that write ``x``, a whole number of thousandths."""
    return _places(round(x * 10**WEIGHT_DECIMALS), WEIGHT_DECIMALS)


def _places(n: int, places: int) -> int:
    """The fewest decimals that write ``n * 10 ** -places`` (in integers: no float tolerance
    to misjudge a large price)."""
    n, d = abs(n), places
    while d and n % 10 == 0:
        n //= 10
        d -= 1
    return 0 if n == 0 else d


def _weight(text: str | None) -> float | None:
    """A term's weight written ``text`` (none: 1), or None when it is not one the model counts
    exactly: a decimal number, a whole number of thousandths, from 0.001 to MAX_WEIGHT."""
    if not text:
        return 1.0
    if re.fullmatch(_NUMBER, text) is None:
        return None
    w = float(text)
    if not (math.isfinite(w) and 0 < w <= MAX_WEIGHT):
        return None
    return w if _whole_thousandths(text) else None


def _whole_thousandths(text: str) -> bool:
    """Whether the decimal ``text`` writes a whole number of thousandths, read from its digits
    (no arithmetic on a huge exponent). A float tolerance let ``500000.0001`` through: within
    1e-9 of 500000000 thousandths, so the model counted $500,000 where the plan priced more."""
    _, digits, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)  # a finite number: the pattern admits no nan or inf
    finer = -WEIGHT_DECIMALS - exponent  # digits below the thousandths
    return finer <= 0 or all(d == 0 for d in digits[-finer:])


def _num(w: float) -> str:
    return f"{w:.0f}" if w == int(w) else f"{w:.12g}"


def objective(spec: str, *, source: str | None = None, path: str | None = "objective") -> Objective:
    """The objective named or written ``spec``; an :class:`InputError` names what is wrong."""
    text = spec.strip().lower()
    if text in OBJECTIVES:
        return OBJECTIVES[text]
    terms: list[tuple[Metric, float]] = []
    for part in re.split(r"(?<![0-9][e])\+", text):
        m = _TERM.match(part)
        if m is None or m.group(2) not in METRICS:
            raise InputError(
                f"unknown objective {spec!r}", source=source, path=path, expected=EXPECTED
            )
        weight = _weight(m.group(1))
        if weight is None:
            raise InputError(
                f"objective {spec!r}: the weight {m.group(1)!r} of {m.group(2)} is not a "
                f"number from 0.001 to {MAX_WEIGHT:,.0f} in steps of 0.001",
                source=source,
                path=path,
                expected=EXPECTED,
            )
        metric = METRICS[m.group(2)]
        if any(t is metric for t, _ in terms):
            raise InputError(
                f"objective {spec!r} names {metric.name} twice",
                source=source,
                path=path,
                expected=EXPECTED,
            )
        terms.append((metric, weight))
    if len(terms) == 1 and terms[0][1] == 1.0:
        return OBJECTIVES[terms[0][0].name]
    name = "+".join(f"{_num(w)}*{m.name}" if w != 1.0 else m.name for m, w in terms)
    return Objective(name, tuple(terms), "a weighted sum in dollars")
