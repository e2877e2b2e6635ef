"""A plan in the CP-SAT model's terms, and the way back to a :class:`Plan`.

A *solution* gives every stage a :class:`~straits.plan.cpsat_model.Slot`: its choice (or
unplaced) and its start in model ticks. The greedy plan becomes one
(:func:`straits.plan.retime.retime`), every search returns one, and :func:`evaluate` scores
any of them exactly as the model's objective does, so the neighbourhood search can compare
solutions without asking CP-SAT.
:func:`extract` turns the best one into a plan with exact times and costs, re-checked against
the rules with its final export volumes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from ortools.sat.python import cp_model

from straits.model.scenario import Site
from straits.plan.candidates import Verdict
from straits.plan.checks import ExportLedger, Predecessor
from straits.plan.cpsat_model import (
    UNPLACED,
    PortfolioModel,
    Slot,
    _peak,
    late_hours_of,
)
from straits.plan.diagnosis import rediagnose
from straits.plan.horizon import due_ticks
from straits.plan.objectives import COST, TIME, Objective
from straits.plan.options import capex_share
from straits.plan.portfolio import Portfolio
from straits.plan.result import Assignment, Plan, Status
from straits.plan.retime import NOTHING_HELD, Held
from straits.plan.schedule import StageKey, late_hours, make_assignment, record_exports
from straits.plan.ticks import tick_hours
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb

Solution = dict[StageKey, Slot]


class Value(NamedTuple):
    """A solution's objective in the model's units: unplaced stages, the objective, the
    tie-break (cost in $1,000 for named objectives other than cost). Compared as a tuple."""

    unplaced: int
    primary: int
    tie: int


def evaluate(
    pf: Portfolio,
    objective: Objective,
    sol: Solution,
    tie_unit: int = 1000,
    held: Held = NOTHING_HELD,
) -> Value:
    """The model's objective of ``sol``, term by term as :func:`~straits.plan.cpsat_model.build`
    writes it (integer choice values, capex of the bought chips' peak, lateness penalties,
    makespan, weighted completion; the tie-break in the model's ``tie_unit`` dollars), with
    the ``held`` workloads' chips and makespan as the model sees them."""
    objective = objective.fitted(pf.sc)  # in the model's units
    unplaced = primary = tie = 0
    usage: dict[str, list[tuple[int, int, int]]] = {}
    ends: dict[str, int] = {}
    for key, (idx, s) in sol.items():
        if idx is None:
            unplaced += 1
            continue
        c = pf.stages[key].choices[idx]
        primary += c.value
        tie += c.cost // tie_unit if tie_unit else 0
        e = s + c.duration
        ends[key[0]] = max(ends.get(key[0], 0), e)
        if c.option.procured:
            usage.setdefault(c.option.key, []).append((s, e, c.est.chips))
    k_cost = objective.global_weight(COST)
    if k_cost:
        for res, bookings in usage.items():
            o = pf.option_of(res)
            assert o.pool.procurable is not None
            primary += _peak(bookings + held.usage.get(res, [])) * objective.capex_units(
                o.pool.procurable.usd_per_chip * capex_share(pf.sc, o.pool)
            )
        for wid, e in ends.items():
            w = pf.sc.workload(wid)
            if w.deadline is not None and w.deadline_policy != "hard":
                late = late_hours_of(e, due_ticks(pf, w.deadline))
                primary += objective.penalty_of(late, w.late_penalty_usd_per_day)
    primary += objective.tick_weight(TIME) * max([held.floor, *ends.values()])
    primary += sum(objective.done_weight(pf.sc.workload(wid)) * e for wid, e in ends.items())
    return Value(unplaced, primary, tie if objective.tie_cost else 0)


def from_solver(pm: PortfolioModel, solver: cp_model.CpSolver) -> Solution:
    """The slots of the model's stages in the solver's current solution."""
    out: Solution = {}
    for key, xs in pm.x.items():
        if solver.boolean_value(pm.u[key]):
            out[key] = UNPLACED
            continue
        idx = next(i for i, xi in enumerate(xs) if solver.boolean_value(xi))
        out[key] = Slot(idx, solver.value(pm.start[key]))
    return out


def extract(
    pf: Portfolio,
    sol: Solution,
    baseline: Plan,
    objective: Objective,
    status: Status,
    solver: str,
    held: Held = NOTHING_HELD,
) -> Plan | None:
    """The plan of ``sol`` (and of the ``held`` workloads, as the greedy plan has them), with
    exact times, costs, verdicts and diagnosis; None when a placement fails the final rule
    check (with the plan's final export volumes)."""
    sc, cand = pf.sc, pf.cand
    chosen = {k: v for k, v in sol.items() if v.choice is not None}
    kept = {k: b for k, b in pf.state.placed.items() if k[0] in held.workloads}
    ledger = ExportLedger()
    for (wid, sid), slot in chosen.items():
        w = sc.workload(wid)
        assert slot.choice is not None
        record_exports(
            sc,
            w,
            w.stage(sid),
            pf.stages[(wid, sid)].choices[slot.choice].option.site,
            ledger,
            cand.date.year,
        )
    for (wid, sid), b in kept.items():
        w = sc.workload(wid)
        record_exports(sc, w, w.stage(sid), b.site, ledger, cand.date.year)
    placed: dict[StageKey, tuple[Assignment, Site]] = {}
    for key, b in sorted(kept.items(), key=lambda kv: kv[1].assignment.start_h):
        w = sc.workload(key[0])
        stage = w.stage(key[1])
        t = cand.table(w, stage)
        preds = [
            Predecessor(w.stage(p), placed[(w.id, p)][1], cand.ops[w.id][p]) for p in stage.after
        ]
        option = t.option(t.row_of(b.assignment.option_label))
        if not cand.verdict(w, stage, option, preds, [ledger]).lawful:
            return None
        placed[key] = (b.assignment, b.site)
    usage: dict[str, list[tuple[int, int, int]]] = {}
    for key, slot in chosen.items():
        assert slot.choice is not None
        c = pf.stages[key].choices[slot.choice]
        if c.option.procured:
            usage.setdefault(c.option.key, []).append(
                (slot.start, slot.start + c.duration, c.est.chips)
            )
    capex_paid: set[str] = set()
    lateness: dict[str, float] = {}
    for key, slot in sorted(chosen.items(), key=lambda kv: kv[1].start):
        st = pf.stages[key]
        assert slot.choice is not None
        w, stage, c = st.workload, st.stage, st.choices[slot.choice]
        preds = [
            Predecessor(w.stage(p), placed[(w.id, p)][1], cand.ops[w.id][p]) for p in stage.after
        ]
        verdict: Verdict = cand.verdict(w, stage, c.option, preds, [ledger])
        if not verdict.lawful:
            return None
        size = weights_gb(w.model)
        egress = c.egress + sum(
            egress_usd(size, placed[(w.id, p)][1], c.option.site) for p in stage.after
        )
        transfer = max(
            [c.transfer]
            + [transfer_hours(size, placed[(w.id, p)][1], c.option.site) for p in stage.after]
        )
        capex = 0.0
        if c.option.procured and c.option.key not in capex_paid:
            capex_paid.add(c.option.key)
            assert c.option.pool.procurable is not None
            capex = (
                _peak(usage[c.option.key])
                * c.option.pool.procurable.usd_per_chip
                * capex_share(sc, c.option.pool)
            )
        start = tick_hours(slot.start)
        end = start + c.est.hours
        late = late_hours(sc, w, end)
        penalty = max(0.0, late - lateness.get(w.id, 0.0)) / 24.0 * w.late_penalty_usd_per_day
        lateness[w.id] = max(lateness.get(w.id, 0.0), late)
        a = make_assignment(
            sc,
            w,
            stage,
            c.option,
            c.est,
            start,
            end,
            egress,
            transfer,
            capex,
            verdict,
            late,
            penalty,
        )
        placed[key] = (a, c.option.site)
    before = {k: b.assignment for k, b in pf.state.placed.items()}
    diagnosis = tuple(
        rediagnose(
            d,
            placed[(d.workload, d.stage)][0] if (d.workload, d.stage) in placed else None,
            before.get((d.workload, d.stage)),
            sc.workload(d.workload),
            objective,
        )
        for d in baseline.diagnosis
    )
    unplaced = tuple(d for d in diagnosis if d.chosen is None)
    final: Status = "infeasible" if unplaced else status
    notes = tuple(
        f"{a.workload}/{a.stage} ends {a.late_hours:,.0f} h after the deadline (soft deadline)"
        for a, _ in placed.values()
        if a.late_hours > 0
    )
    return replace(
        baseline,
        solver=solver,
        status=final,
        assignments=tuple(a for a, _ in placed.values()),
        unplaced=unplaced,
        diagnosis=diagnosis,
        notes=notes,
    )
