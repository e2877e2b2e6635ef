"""Plans run in the background: a small thread pool, progress written to the plan's row.

CP-SAT releases the GIL while it searches, so a plan running here does not stall the API.
Each worker thread has its own rule set (the rule engine's caches are not shared across
threads). A server that stops with plans unfinished marks them failed when it starts again.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from straits.errors import InputError
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.optimizer import SearchState
from straits.rules import RuleSet, load_packs
from straits.store.db import Store
from straits.store.records import finish_plan, set_plan_state

log = logging.getLogger("straits.server")
#: seconds between progress writes
PROGRESS_EVERY = 1.0


def progress_json(state: SearchState, objective: str) -> dict[str, Any]:
    def pair(v: tuple[int, float] | None) -> dict[str, float] | None:
        return None if v is None else {"unplaced": v[0], "score": round(v[1], 2)}

    return {"elapsed_s": round(state.elapsed, 1), "best": pair(state.best),
            "bound": pair(state.bound), "gap": state.gap, "text": state.describe(objective)}


class PlanRunner:
    def __init__(self, store: Store, workers: int, rule_dirs: tuple[Path, ...] = ()) -> None:
        self.store = store
        self.rule_dirs = rule_dirs
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="straits-plan")
        self.local = threading.local()

    def _rules(self) -> RuleSet:
        rs: RuleSet | None = getattr(self.local, "rules", None)
        if rs is None:
            rs = self.local.rules = RuleSet(load_packs(list(self.rule_dirs)))
        return rs

    def submit(self, plan_id: str, sc: Scenario, options: dict[str, Any], record: bool) -> None:
        self.pool.submit(self._run, plan_id, sc, options, record)

    def _run(self, plan_id: str, sc: Scenario, options: dict[str, Any], record: bool) -> None:
        objective = options.get("objective") or sc.objective
        set_plan_state(self.store, plan_id, "running",
                       progress={"elapsed_s": 0.0, "text": "estimating and checking options"})
        last = 0.0

        def on_progress(state: SearchState) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                set_plan_state(self.store, plan_id, "running",
                               progress=progress_json(state, objective))

        try:
            rules = self._rules()
            plan = make_plan(sc, rules=rules, on_progress=on_progress, **options)
            finish_plan(self.store, plan_id, plan, rules, record=record)
        except InputError as exc:
            set_plan_state(self.store, plan_id, "failed", error=str(exc))
        except Exception:
            log.exception("plan %s failed", plan_id)
            set_plan_state(self.store, plan_id, "failed",
                           error="internal error while planning (the server log has details)")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
