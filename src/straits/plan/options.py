"""Where a stage could run: a (site, pool) with its estimates at a menu of chip counts.

Options are static facts of the scenario (no schedule state): the estimator's figures for each
chip count, and whether the pool can hold the stage at all. Rules and capacity over time are
applied by the planners, which know where predecessors went. See :mod:`straits.plan.table` for
all of a stage's options at once.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from functools import cache, cached_property

from straits.catalog import Chip
from straits.catalog.tpu_slices import TPU_SLICES, TpuSlices
from straits.estimate import Estimate, Risk, estimate_serving, estimate_training
from straits.model.scenario import ModelSpec, Pool, Scenario, Site, Stage, Workload
from straits.plan.reasons import ReasonCode

#: chip counts are multiples of a node (8 accelerators) where the pool allows
NODE = 8


@dataclass(frozen=True)
class Option:
    workload: str
    stage: str
    site: Site
    pool: Pool
    chip: Chip
    min_chips: int
    sizes: tuple[Estimate, ...]
    problem: ReasonCode | None = None
    """memory, capacity or location when no chip count of this pool can run the stage"""
    detail: str = ""
    buyer: str | None = None
    """For capacity the tenant buys (``pool.procurable``): the buying tenant."""
    min_hours: float = 0.0
    """the shortest of ``sizes``"""
    min_chip_hours: float = 0.0
    """the fewest chip-hours of ``sizes``"""

    @property
    def price(self) -> float:
        return self.pool.usd_per_chip_hour

    def cost(self, est: Estimate) -> float:
        """What running ``est`` on this pool costs (estimates are priced per pool here; their
        own ``cost_usd`` uses the catalog's reference price)."""
        return est.chip_hours * self.price

    @property
    def procured(self) -> bool:
        return self.buyer is not None

    key: str = ""
    """The resource this option uses: a pool, or the chips one tenant buys for it."""
    label: str = ""
    """How people name it: 'site/chip', or 'site/chip (bought)'."""

    def __post_init__(self) -> None:
        base = f"{self.site.id}/{self.chip.id}"
        object.__setattr__(self, "key", f"{base}+bought:{self.buyer}" if self.buyer else base)
        object.__setattr__(self, "label", f"{base} (bought)" if self.buyer else base)


def hours_from(sc: Scenario, day: dt.date) -> float:
    return (dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) - sc.start).total_seconds() / 3600


def pool_steps(sc: Scenario, pool: Pool) -> list[tuple[float, int]]:
    """The pool's chip count over time, as (from hour, chips) steps starting at hour 0.

    Each window's hours are computed once and the window in force at each edge found by
    bisection: a pool of 2,000 windows took 39 s here (every edge recomputed every window's
    hours), past any time limit."""
    # the window starting last counts (docs/scenario-reference.md), whatever the order the
    # file lists them in; of two starting the same day, the one listed later
    spans = [
        (hours_from(sc, w.start), math.inf if w.end is None else hours_from(sc, w.end), w.count)
        for w in sorted(pool.availability, key=lambda w: w.start)
    ]
    starts = [s for s, _, _ in spans]
    points = {0.0}
    for s, e, _ in spans:
        points.add(max(0.0, s))
        if e > 0 and e != math.inf:
            points.add(e)
    steps: list[tuple[float, int]] = []
    for t in sorted(points):
        count = pool.count
        for _s, e, n in reversed(spans[: bisect.bisect_right(starts, t + 1e-9)]):
            if e > t + 1e-9:
                count = n
                break
        if not steps or steps[-1][1] != count:
            steps.append((t, count))
    return steps


def arrival_hours(pool: Pool) -> float:
    assert pool.procurable is not None
    return pool.procurable.lead_days * 24.0


def procured_steps(pool: Pool) -> list[tuple[float, int]]:
    assert pool.procurable is not None
    arrive = arrival_hours(pool)
    return [(0.0, 0), (arrive, pool.procurable.max)] if arrive > 0 else [(0.0, pool.procurable.max)]


def capex_share(sc: Scenario, pool: Pool) -> float:
    """Share of a bought chip's price charged to this plan: the part of the plan horizon after
    it arrives, over its amortization period."""
    assert pool.procurable is not None
    horizon = sc.horizon_days * 24.0
    owned = max(0.0, horizon - arrival_hours(pool))
    return min(1.0, owned / (pool.procurable.amortize_years * 8760.0))


def stage_tokens(sc: Scenario, stage: Stage) -> float:
    if stage.tokens is not None:
        return stage.tokens
    return sum(sc.dataset(d).tokens for d in stage.datasets) * stage.epochs


#: most chip counts tried per option besides the fewest that fit (in a large portfolio: fewer)
MENU_SIZES = 4
MENU_SIZES_LARGE = 2


@cache
def size_menu(min_chips: int, count: int, most: int = MENU_SIZES) -> list[int]:
    """Chip counts to try: the fewest that fit (rounded up to a node), then up to ``most``
    powers of two above it that the pool holds, evenly spread in log scale and always including
    the largest. The same sizes recur across pools, so their estimates are computed once."""
    if count <= 0 or min_chips > count:
        return []
    first = min(count, max(min_chips, -(-min_chips // NODE) * NODE))
    powers = [1 << k for k in range(31) if first < 1 << k <= count]
    if len(powers) > most:
        step = len(powers) / most
        powers = [powers[len(powers) - 1 - int(i * step)] for i in range(most)]
    return sorted({first, *powers})


def slice_menu(slices: TpuSlices, need: int, count: int, menu: list[int]) -> list[int]:
    """A TPU's menu: each count of ``menu`` taken up to the smallest slice that holds it, and
    the smallest slice of at least ``need`` chips, those within the pool's ``count``. A Cloud
    TPU is rented by the slice (:mod:`straits.catalog.tpu_slices`): 7 v6e chips is no slice,
    and the export could launch no stage planned on them."""
    sizes = {slices.at_least(n) for n in (need, *menu)}
    return sorted(n for n in sizes if n is not None and n <= count)


@dataclass(frozen=True)
class Resource:
    """A pool as the planner sees it: its site, chip and largest chip count."""

    site: Site
    pool: Pool
    chip: Chip
    count: int


@dataclass(frozen=True)
class Fit:
    """How a stage fits a chip at a pool size: the estimates at the menu's chip counts, or the
    problem that keeps every count out."""

    problem: ReasonCode | None
    """memory or capacity when no chip count of the pool can run the stage"""
    detail: str
    min_chips: int
    sizes: tuple[Estimate, ...] = ()
    """estimates at the menu's chip counts"""

    # computed once: a fit is shared by every table of its FitSpec (table_fits)
    @cached_property
    def min_hours(self) -> float:
        return min((e.hours for e in self.sizes), default=0.0)

    @cached_property
    def min_chip_hours(self) -> float:
        return min((e.chip_hours for e in self.sizes), default=0.0)

    @cached_property
    def most_flops(self) -> float:
        return max((e.flops for e in self.sizes), default=0.0)


@dataclass(frozen=True)
class FitSpec:
    """Everything a stage's fits are computed from besides the chip and the pool size: the
    only input of :func:`fit_spec`, so two stages with equal specs have equal fits on every
    pool (:func:`straits.plan.table.table_fits` shares them between such stages). Fields one
    kind of stage does not read are None."""

    kind: str
    model: ModelSpec
    chips: int | None
    menu: int
    tokens: float | None = None
    """training: the stage's tokens (its own, or its datasets' times its epochs)"""
    mfu: float | None = None
    risk: Risk | None = None
    days: float | None = None
    """serving: how long it serves, its throughput target and request shape"""
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None

    @classmethod
    def of(cls, sc: Scenario, w: Workload, stage: Stage, menu: int = MENU_SIZES) -> FitSpec:
        if stage.kind == "serve":
            return cls(
                stage.kind,
                w.model,
                stage.chips,
                menu,
                days=stage.days,
                tokens_per_s=stage.tokens_per_s,
                prompt_tokens=stage.prompt_tokens,
                output_tokens=stage.output_tokens,
            )
        tokens = stage_tokens(sc, stage)
        return cls(stage.kind, w.model, stage.chips, menu, tokens, stage.mfu, sc.risk)


def fit_stage(
    sc: Scenario,
    w: Workload,
    stage: Stage,
    chip: Chip,
    count: int,
    estimates: dict[tuple[str, int | None], Estimate],
    menu: int = MENU_SIZES,
) -> Fit:
    """The estimates of ``stage`` on ``chip`` at the menu's counts up to ``count`` chips
    (``estimates`` shares them between pools of the same chip)."""
    return fit_spec(FitSpec.of(sc, w, stage, menu), chip, count, estimates)


def fit_spec(
    spec: FitSpec, chip: Chip, count: int, estimates: dict[tuple[str, int | None], Estimate]
) -> Fit:
    """:func:`fit_stage` from the stage's :class:`FitSpec`."""
    memory, capacity = ReasonCode.MEMORY, ReasonCode.CAPACITY
    if spec.kind == "serve":
        assert spec.days is not None
        assert spec.prompt_tokens is not None and spec.output_tokens is not None
        est = estimate_serving(
            spec.model,
            chip,
            spec.chips,
            spec.days,
            tokens_per_s=spec.tokens_per_s,
            prompt_tokens=spec.prompt_tokens,
            output_tokens=spec.output_tokens,
        )
        tpu = TPU_SLICES.get(chip.id)
        if tpu is not None and tpu.at_least(est.min_chips) is None:
            return Fit(
                memory,
                f"one replica needs {est.min_chips} x {chip.id}, more than its largest slice "
                f"({tpu.max_chips or max(tpu.small)} chips)",
                est.min_chips,
            )
        if not est.fits:
            return Fit(
                memory,
                f"one replica needs {est.min_chips} x {chip.id}, stage asks for {est.chips}",
                est.min_chips,
            )
        if est.chips > count:
            return Fit(
                capacity, f"stage needs {est.chips:,} chips, pool has {count:,}", est.min_chips
            )
        return Fit(None, "", est.min_chips, (est,))
    assert spec.tokens is not None and spec.risk is not None
    tokens, risk = spec.tokens, spec.risk

    def train(n: int | None) -> Estimate:
        if (chip.id, n) not in estimates:
            estimates[(chip.id, n)] = estimate_training(
                spec.model, tokens, chip, n, risk=risk, mfu=spec.mfu
            )
        return estimates[(chip.id, n)]

    need = train(None).min_chips
    if spec.chips is not None:
        # the fewest chips are searched on a grid (1, 2, 4, then node multiples): a count the
        # grid skips can hold the model (11 x H100 a 44B model whose grid minimum is 16)
        if spec.chips < need and train(spec.chips).fits:
            need = spec.chips
        if spec.chips < need:
            return Fit(memory, f"needs at least {need} x {chip.id}, stage fixes {spec.chips}", need)
        if spec.chips > count:
            return Fit(capacity, f"stage needs {spec.chips} chips, pool has {count}", need)
        slices = TPU_SLICES.get(chip.id)
        if slices is not None and not slices.chips_ok(spec.chips):
            # a Cloud TPU is rented by the slice: 7 v6e chips is none (atk29: a stage fixing
            # them was placed and priced on 7, and no export could launch it)
            return Fit(
                capacity,
                f"stage fixes {spec.chips} chips, no {chip.id} slice (slices of {slices.sizes()})",
                need,
            )
        counts = [spec.chips]
    else:
        counts = size_menu(need, count, spec.menu)
        if count == 0:
            return Fit(capacity, "the pool has no chips in the plan's horizon", need)
        if counts and chip.id in TPU_SLICES:
            tpu = TPU_SLICES[chip.id]
            if tpu.at_least(need) is None:  # no slice holds it: no pool of any size would
                return Fit(
                    memory,
                    f"needs at least {need} x {chip.id}, more than its largest slice "
                    f"({tpu.max_chips or max(tpu.small)} chips)",
                    need,
                )
            counts = slice_menu(tpu, need, count, counts)
            if not counts:
                return Fit(
                    capacity,
                    f"no {chip.id} slice of at least {need} chips within the pool's {count} "
                    f"(slices of {TPU_SLICES[chip.id].sizes()})",
                    need,
                )
        if not counts:
            return Fit(
                memory,
                f"needs at least {need} x {chip.id} "
                f"({spec.model.params * 16 / 1e9:,.0f} GB of training state), "
                f"pool has {count}",
                need,
            )
    # a count at or above the fewest chips can still hold no layout: more data-parallel
    # replicas than the global batch feeds, or a split that does not divide it (and when no
    # cluster holds the model, `need` is only the largest size tried): never an option
    sizes = [train(n) for n in counts]
    fitting = tuple(e for e in sizes if e.fits)
    if not fitting:
        why = next((x for x in sizes[0].notes if x.startswith("does not fit")), "does not fit")
        return Fit(memory, why, need)
    return Fit(None, "", need, fitting)
