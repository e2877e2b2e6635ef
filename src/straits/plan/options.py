"""Where each stage could run: every (site, pool) with its estimates at a menu of chip counts.

Options are static facts of the scenario (no schedule state): the estimator's figures for each
chip count, and whether the pool can hold the stage at all. Rules and capacity over time are
applied by the scheduler, which knows where predecessors went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from straits.catalog import Chip, get_chip
from straits.estimate import Estimate, estimate_serving, estimate_training
from straits.model.scenario import Pool, Scenario, Site, Stage, Workload

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
    problem: str | None = None
    """'memory', 'capacity' or 'location' when no chip count of this pool can run the stage."""
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.site.id}/{self.chip.id}"


def stage_tokens(sc: Scenario, stage: Stage) -> float:
    if stage.tokens is not None:
        return stage.tokens
    return sum(sc.dataset(d).tokens for d in stage.datasets) * stage.epochs


def size_menu(min_chips: int, count: int) -> list[int]:
    """Chip counts to try: the fewest that fit (rounded to a node), doubling, and the whole
    pool."""
    if count <= 0 or min_chips > count:
        return []
    first = min(count, max(min_chips, -(-min_chips // NODE) * NODE))
    sizes = {first, count}
    n = first
    while n * 2 < count:
        n *= 2
        sizes.add(n)
    return sorted(sizes)


def stage_options(sc: Scenario, w: Workload, stage: Stage) -> list[Option]:
    out = []
    for site in sc.sites:
        for pool in site.pools:
            out.append(_option(sc, w, stage, site, pool))
    return out


def _option(sc: Scenario, w: Workload, stage: Stage, site: Site, pool: Pool) -> Option:
    chip = get_chip(pool.chip)

    def option(**kw: Any) -> Option:
        return Option(workload=w.id, stage=stage.id, site=site, pool=pool, chip=chip, **kw)

    if stage.locations and site.country not in stage.locations:
        return option(min_chips=0, sizes=(), problem="location",
                      detail=f"stage runs only in {', '.join(stage.locations)}")
    if stage.kind == "serve":
        assert stage.days is not None
        est = estimate_serving(w.model, chip, stage.chips, stage.days, pool.usd_per_chip_hour,
                               tokens_per_s=stage.tokens_per_s, prompt_tokens=stage.prompt_tokens,
                               output_tokens=stage.output_tokens)
        if not est.fits:
            return option(min_chips=est.min_chips, sizes=(), problem="memory",
                          detail=f"one replica needs {est.min_chips} x {chip.id}, stage asks "
                                 f"for {est.chips}")
        if est.chips > pool.count:
            return option(min_chips=est.min_chips, sizes=(), problem="capacity",
                          detail=f"stage needs {est.chips:,} chips, pool has {pool.count:,}")
        return option(min_chips=est.min_chips, sizes=(est,))
    tokens = stage_tokens(sc, stage)
    probe = estimate_training(w.model, tokens, chip, None, pool.usd_per_chip_hour)
    need = probe.min_chips
    if stage.chips is not None:
        counts = [stage.chips] if stage.chips <= pool.count else []
        if stage.chips < need:
            return option(min_chips=need, sizes=(), problem="memory",
                          detail=f"needs at least {need} x {chip.id}, stage fixes {stage.chips}")
        if not counts:
            return option(min_chips=need, sizes=(), problem="capacity",
                          detail=f"stage needs {stage.chips} chips, pool has {pool.count}")
    else:
        counts = size_menu(need, pool.count)
        if not counts:
            return option(min_chips=need, sizes=(), problem="memory",
                          detail=f"needs at least {need} x {chip.id} "
                                 f"({w.model.params * 16 / 1e9:,.0f} GB of training state), "
                                 f"pool has {pool.count}")
    sizes = tuple(estimate_training(w.model, tokens, chip, n, pool.usd_per_chip_hour)
                  for n in counts)
    return option(min_chips=need, sizes=sizes)


def fastest_hours(options: list[Option]) -> float | None:
    """The shortest duration of a stage over all options that can run it."""
    hours = [e.hours for o in options for e in o.sizes]
    return min(hours) if hours else None
