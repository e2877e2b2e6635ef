"""Where a command's PLAN argument comes from: a recorded plan id, or a scenario planned now."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from straits.model.scenario import Scenario
from straits.report.view import Recorded
from straits.rules.engine import RuleSet


@dataclass(frozen=True)
class PlanSource:
    plan: dict[str, Any]
    scenario: Scenario
    describe: str
    recorded: Recorded | None = None


def resolve_plan(ref: str, *, db: str | None, rules: RuleSet, regime: str | None = None,
                 time_limit: float = 20.0) -> PlanSource:
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file():
        from straits.loading import load_scenario
        from straits.plan import make_plan

        sc = load_scenario(path)
        plan = make_plan(sc, rules=rules, regime=regime, time_limit=time_limit)
        return PlanSource(plan.to_json(details=True), sc,
                          f"scenario {path}, planned now under the {plan.regime} rules")
    from straits.store import Store
    from straits.store.records import find_plan

    store = Store(db)
    rec = find_plan(store, ref)
    recorded = Recorded(plan_id=rec.id, seq=rec.ledger_seq, tenant=rec.tenant)
    if rec.ledger_seq is not None:
        from straits.store.ledger import get_entry

        entry = get_entry(store, rec.ledger_seq)
        if entry is not None:
            recorded = Recorded(plan_id=rec.id, seq=entry.seq, hash=entry.hash,
                                recorded_at=entry.recorded_at, tenant=entry.tenant)
    return PlanSource(rec.plan, rec.scenario, f"recorded plan {rec.id}", recorded)
