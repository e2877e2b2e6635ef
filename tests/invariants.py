"""Independent checks of a plan's invariants, shared by the planner property tests.

These do not reuse the planner's own bookkeeping: capacity is swept from the assignments,
transfer times recomputed from the scenario, and the China cross-border thresholds re-derived
from the text of the 2024 provisions (a deliberate second implementation, as a test oracle).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from straits.model.scenario import Scenario
from straits.plan import Plan
from straits.plan.transfer import transfer_hours, weights_gb

EPS = 1e-6


def _hours(sc: Scenario, day: dt.date) -> float:
    return (
        dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - sc.start
    ).total_seconds() / 3600


def chips_at(sc: Scenario, site: str, chip: str, t: float, bought_by: str | None) -> int:
    """The chips a pool has at hour ``t``: its last availability window covering ``t`` or its
    count; for chips bought by a tenant, the procurable maximum once they have arrived."""
    pool = next(p for p in sc.site(site).pools if p.chip == chip)
    if bought_by is not None:
        pr = pool.procurable
        if pr is None or (pr.buyer is not None and pr.buyer != bought_by):
            return 0
        return pr.max if t + EPS >= pr.lead_days * 24 else 0
    count = pool.count
    for w in sorted(pool.availability, key=lambda w: w.start):
        if _hours(sc, w.start) <= t + EPS and (w.end is None or t + EPS < _hours(sc, w.end)):
            count = w.count
    return count


def _ends_first(events: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Events in time order, where times within EPS of each other are one instant and its
    ends come first: a stage that starts as another ends on the same chips (start + hours
    and the next start's ticks / 60 differ in the last float digit) is a handover, not an
    overlap."""
    out: list[tuple[float, int]] = []
    group: list[tuple[float, int]] = []
    for e in sorted(events):
        if group and e[0] - group[0][0] > EPS:
            out += sorted(group, key=lambda g: g[1])
            group = []
        group.append(e)
    return out + sorted(group, key=lambda g: g[1])


def capacity_violations(sc: Scenario, plan: Plan) -> list[str]:
    """At every instant where use changes, chips in use <= chips the pool has; the pool's
    count may drop (maintenance) while stages run, so every window edge is checked too."""
    out = []
    events: dict[tuple[str, str, str | None], list[tuple[float, int]]] = defaultdict(list)
    for a in plan.assignments:
        buyer = sc.workload(a.workload).tenant if a.bought else None
        events[(a.site, a.chip, buyer)] += [(a.start_h, a.chips), (a.end_h, -a.chips)]
    for (site, chip, buyer), evs in events.items():
        pool = next(p for p in sc.site(site).pools if p.chip == chip)
        edges = [(_hours(sc, w.start), 0) for w in pool.availability] + [
            (_hours(sc, w.end), 0) for w in pool.availability if w.end is not None
        ]
        used = 0
        for t, delta in _ends_first(evs + edges):
            used += delta
            have = chips_at(sc, site, chip, t, buyer)
            if used > 0 and used > have:
                what = f"bought by {buyer}" if buyer else "rented"
                out.append(f"{site}/{chip} ({what}) at {t:.1f} h: {used} chips in use > {have}")
    return out


def precedence_violations(sc: Scenario, plan: Plan) -> list[str]:
    out = []
    for a in plan.assignments:
        w = sc.workload(a.workload)
        stage = w.stage(a.stage)
        site = sc.site(a.site)
        for dep in stage.after:
            p = plan.assignment(a.workload, dep)
            if p is None:
                out.append(f"{a.workload}/{a.stage} placed but {dep} is not")
                continue
            need = p.end_h + transfer_hours(weights_gb(w.model), sc.site(p.site), site)
            if a.start_h + EPS < need:
                out.append(f"{a.workload}/{a.stage} starts {a.start_h:.2f} before {need:.2f}")
        for d_id in stage.datasets:
            d = sc.dataset(d_id)
            need = transfer_hours(d.size_gb, sc.site(d.located_at), site)
            if a.start_h + EPS < need:
                out.append(f"{a.workload}/{a.stage} starts before {d_id} arrives")
    return out


def required_cn_mechanism(total: int, sensitive: int, sensitive_class: bool) -> str | None:
    """CAC Provisions (2024) Arts. 5, 7, 8 for a non-CIIO handler, counted over the year."""
    if total >= 1_000_000 or sensitive >= 10_000:
        return "assessment"
    if total >= 100_000 or sensitive >= 1 or sensitive_class:
        return "contract"
    return None


def residency_violations(sc: Scenario, plan: Plan) -> list[str]:
    """No Chinese personal information abroad without the mechanism its yearly volume needs."""
    out = []
    exported: dict[str, dict[str, tuple[int, int, bool]]] = defaultdict(dict)
    for a in plan.assignments:
        site = sc.site(a.site)
        w = sc.workload(a.workload)
        stage = w.stage(a.stage)
        for d_id in stage.datasets:
            d = sc.dataset(d_id)
            if d.origin == "CN" and d.is_personal and site.country != "CN":
                exported[w.tenant][d.id] = (
                    d.subjects,
                    d.sensitive_subjects,
                    "sensitive_personal" in d.classes,
                )
        if "CN" in stage.users and site.country != "CN":
            n = stage.user_subjects if stage.user_subjects is not None else 1_000_000
            exported[w.tenant][f"users of {a.workload}/{a.stage}"] = (n, 0, False)
    for tenant_id, batch in exported.items():
        tenant = sc.tenant(tenant_id)
        total = sum(v[0] for v in batch.values())
        sens = sum(v[1] for v in batch.values())
        need = required_cn_mechanism(total, sens, any(v[2] for v in batch.values()))
        held = set(tenant.authorizations)
        if tenant.ciio or need == "assessment":
            ok = "cac-security-assessment" in held
        elif need == "contract":
            ok = bool(
                held & {"cac-standard-contract", "cac-certification", "cac-security-assessment"}
            )
        else:
            ok = True
        if not ok:
            out.append(
                f"{tenant_id} exports {total:,} individuals' PI ({sens:,} sensitive) "
                f"needing {need}, holds {sorted(held)}"
            )
    return out


def deadline_violations(sc: Scenario, plan: Plan) -> list[str]:
    """No stage of a workload with a hard deadline ends after the end of that day."""
    from straits.plan.schedule import deadline_hours

    out = []
    for a in plan.assignments:
        w = sc.workload(a.workload)
        if w.deadline is not None and w.deadline_policy == "hard":
            due = deadline_hours(sc, w.deadline)
            if a.end_h > due + EPS:
                out.append(f"{a.workload}/{a.stage} ends {a.end_h - due:.1f} h after its deadline")
    return out


def budget_violations(sc: Scenario, plan: Plan) -> list[str]:
    """No workload spends more than its budget on rental and data movement."""
    spent: dict[str, float] = defaultdict(float)
    for a in plan.assignments:
        spent[a.workload] += a.compute_usd + a.egress_usd
    return [
        f"{wid} spends {v:,.0f} over a budget of {sc.workload(wid).budget_usd:,.0f}"
        for wid, v in spent.items()
        if sc.workload(wid).budget_usd is not None
        and v > (sc.workload(wid).budget_usd or 0) * (1 + 1e-9) + 1.0
    ]
