"""Replay of recorded decisions against a candidate pack set (OPA/Styra decision-log replay).

Every ``check`` and ``plan`` entry the ledger recorded since a date is asked again, on its own
date and under its own regime, with the candidate packs: a check's requests as recorded, a plan's
placements re-checked with :class:`~straits.plan.recheck.PlanContext` over the stored scenario
(predecessors where the plan put them, every personal-information export of the plan counted).
The answer recorded in the ledger is the *before*; the candidate's the *after*. A decision
changes when its kind (allow / conditional / deny) or the authorizations it needs change; the
rules that start or stop blocking it say why. When the candidate differs from the packs loaded
now, each change also says whether it comes from the candidate or the packs already moved since
the entry was recorded.

This is the one module of :mod:`straits.rules` that reads the store; only the CLI imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from straits.errors import StraitsError
from straits.model.request import CheckRequest
from straits.rules.decision import Decision, Reason
from straits.rules.engine import RuleSet

REPLAYED = ("check", "plan")
#: recorded requests asked of the rules in one batch
BATCH = 2000


@dataclass(frozen=True)
class Outcome:
    """What a decision says, in the terms that matter for a change."""

    decision: str
    requires: tuple[str, ...]
    rules: tuple[str, ...]
    """the rules that keep it from allow (deny or unmet requirements)"""

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "requires": list(self.requires),
            "rules": list(self.rules),
        }

    @classmethod
    def of(cls, d: Decision) -> Outcome:
        return cls(
            d.decision, tuple(sorted(d.requires)), tuple(sorted({r.rule for r in d.blocking}))
        )

    @classmethod
    def recorded(cls, answer: dict[str, Any]) -> Outcome:
        """From a decision as the ledger recorded it (the ``check`` JSON contract). A ValueError
        when it is not one (a ledger read with --no-verify): `requires: [1, "a"]` or a rule id
        that is a list were TypeError tracebacks of the whole replay."""
        reasons, requires = answer.get("reasons", []), answer.get("requires", [])
        if not isinstance(reasons, list) or not all(isinstance(r, dict) for r in reasons):
            raise ValueError("the recorded answer's `reasons` is not a list of reasons")
        if not isinstance(requires, list) or not all(isinstance(a, str) for a in requires):
            raise ValueError("the recorded answer's `requires` is not a list of authorizations")
        blocking = [
            r.get("rule")
            for r in reasons
            if r.get("effect") == "deny" or r.get("outcome") in ("deny", "conditional")
        ]
        if not all(r is None or isinstance(r, str) for r in blocking):
            raise ValueError("a recorded reason's `rule` is not a rule id")
        return cls(
            str(answer.get("decision")),
            tuple(sorted(requires)),
            tuple(sorted({r for r in blocking if r})),
        )

    def same_decision(self, other: Outcome) -> bool:
        return (self.decision, self.requires) == (other.decision, other.requires)


@dataclass(frozen=True)
class Change:
    seq: int
    kind: Literal["check", "plan"]
    tenant: str
    recorded_at: str
    subject: str
    """what was decided, in words: the request, or the plan's stage and placement"""
    before: Outcome
    after: Outcome
    now_blocking: tuple[Reason, ...]
    """rules of the candidate that block it and did not before"""
    lifted: tuple[str, ...]
    """rules that blocked it before and no longer do"""
    recorded_packs: dict[str, str]
    """pack name -> version the entry was decided with"""
    from_candidate: bool | None = None
    """True: the packs loaded now still give the recorded answer, the candidate changes it;
    False: the packs already changed it since it was recorded; None: no separate candidate"""
    ref: dict[str, Any] = field(default_factory=dict)
    """the request (checks) or plan id, workload, stage, site and chip (plans)"""

    @property
    def direction(self) -> str:
        order = {"allow": 0, "conditional": 1, "deny": 2}
        a, b = order.get(self.before.decision, 1), order.get(self.after.decision, 1)
        return "stricter" if b > a else "looser" if b < a else "requirements"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "tenant": self.tenant,
            "recorded_at": self.recorded_at,
            "subject": self.subject,
            **self.ref,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "direction": self.direction,
            "now_blocking": [r.to_json() for r in self.now_blocking],
            "lifted": list(self.lifted),
            "recorded_packs": self.recorded_packs,
            "from_candidate": self.from_candidate,
        }


@dataclass(frozen=True)
class _Pending:
    """A check entry read and validated, waiting for its batch."""

    entry: Any
    raw: list[Any]
    requests: list[CheckRequest]
    answers: list[Outcome]
    """the decisions as recorded"""


@dataclass(frozen=True)
class Skipped:
    seq: int
    kind: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "reason": self.reason}


@dataclass
class Replay:
    since: dt.date
    tenant: str | None
    candidate: list[dict[str, str]]
    baseline: list[dict[str, str]] | None
    """the packs loaded now, when the candidate differs from them"""
    entries: int = 0
    decisions: int = 0
    plans: int = 0
    placements: int = 0
    unplaced: int = 0
    """stages the replayed plans left unplaced (not re-checked: `straits impact` re-plans)"""
    reasons_changed: int = 0
    """decisions that stay the same but now rest on other rules"""
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    regimes: set[str] = field(default_factory=set)
    """the regimes of the replayed decisions and plans"""

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "tenant": self.tenant,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "regimes": sorted(self.regimes),
            "last_seq": self.last_seq,
            "replayed": {
                "decisions": self.decisions,
                "plans": self.plans,
                "placements": self.placements,
                "unplaced": self.unplaced,
            },
            "changed": len(self.changes),
            "stricter": sum(c.direction == "stricter" for c in self.changes),
            "looser": sum(c.direction == "looser" for c in self.changes),
            "reasons_changed": self.reasons_changed,
            "changes": [c.to_json() for c in self.changes],
            "skipped": [s.to_json() for s in self.skipped],
        }


def describe(req: CheckRequest) -> str:
    what = req.action + (f" {req.chip}" if req.chip else "")
    if req.data is not None:
        what += f" with {req.data.origin} data ({', '.join(req.data.classes)})"
    return (
        f"{what} in {req.site.country} for a tenant headquartered in {req.tenant.hq}, "
        f"{req.date} ({req.regime})"
    )


def _packs(body: dict[str, Any]) -> dict[str, str]:
    packs = body.get("rules", {}).get("packs", ()) if isinstance(body.get("rules"), dict) else ()
    return {str(p.get("name")): str(p.get("version")) for p in packs if isinstance(p, dict)}


def _change(
    kind: Literal["check", "plan"],
    entry: Any,
    subject: str,
    before: Outcome,
    after: Decision | tuple[Decision, ...],
    base: Outcome | None,
    ref: dict[str, Any],
) -> Change:
    decisions = after if isinstance(after, tuple) else (after,)
    out = _combine(decisions)
    now = {r.rule: r for d in decisions for r in d.blocking}
    body = entry.content
    return Change(
        entry.seq,
        kind,
        entry.tenant,
        entry.recorded_at,
        subject,
        before,
        out,
        tuple(now[r] for r in sorted(set(now) - set(before.rules))),
        tuple(sorted(set(before.rules) - set(now))),
        _packs(body),
        None if base is None else base.same_decision(before),
        ref,
    )


def _combine(decisions: Iterable[Decision]) -> Outcome:
    """One outcome for several decisions (a placement asks several questions)."""
    ds = list(decisions)
    kinds = {d.decision for d in ds}
    kind = "deny" if "deny" in kinds else "conditional" if "conditional" in kinds else "allow"
    return Outcome(
        kind,
        tuple(sorted({a for d in ds for a in d.requires})),
        tuple(sorted({r.rule for d in ds for r in d.blocking})),
    )


class Replayer:
    """Replays ledger entries with ``candidate`` (and ``baseline``, the packs loaded now, to
    attribute each change)."""

    def __init__(self, store: Any, candidate: RuleSet, baseline: RuleSet | None = None) -> None:
        self.store, self.candidate = store, candidate
        self.baseline = (
            baseline if baseline is not None and baseline.digest != candidate.digest else None
        )

    def run(self, since: dt.date, *, tenant: str | None = None) -> Replay:
        from straits.api import packs_json
        from straits.store.ledger import entries

        out = Replay(
            since,
            tenant,
            packs_json(self.candidate),
            packs_json(self.baseline) if self.baseline is not None else None,
        )
        start = since.isoformat()
        pending: list[_Pending] = []
        waiting = 0
        for entry in entries(self.store, tenant=tenant):
            if entry.kind not in REPLAYED or entry.recorded_at[:10] < start:
                continue
            out.entries += 1
            out.first_seq = out.first_seq or entry.seq
            out.last_seq = entry.seq
            try:
                if entry.kind == "check":
                    pending.append(self._parse_check(entry))
                    waiting += len(pending[-1].requests)
                else:
                    self._plan(entry, out)
            except (StraitsError, KeyError, TypeError, ValueError) as exc:
                out.skipped.append(Skipped(entry.seq, entry.kind, _why(exc)))
            if waiting >= BATCH:
                self._checks(pending, out)
                pending, waiting = [], 0
        self._checks(pending, out)
        out.changes.sort(key=lambda c: c.seq)
        return out

    # --- checks ------------------------------------------------------------------------------
    @staticmethod
    def _parse_check(entry: Any) -> _Pending:
        from straits.api import parse_check_document

        body = entry.content
        raw = body["inputs"]["requests"]
        requests, _ = parse_check_document(raw, f"ledger entry {entry.seq}")
        result = body["result"]
        answers = result if isinstance(result, list) else [result]
        if len(answers) != len(requests) or not all(isinstance(a, dict) for a in answers):
            raise ValueError(f"{len(requests)} requests but {len(answers)} recorded answers")
        recorded = [Outcome.recorded(a) for a in answers]  # here: a bad one skips its entry
        return _Pending(entry, raw if isinstance(raw, list) else [raw], requests, recorded)

    def _checks(self, pending: list[_Pending], out: Replay) -> None:
        """The decisions of several check entries, asked in one batch."""
        asked = [r for p in pending for r in p.requests]
        if not asked:
            return
        try:
            after = iter(self.candidate.check_many(asked))
            base = iter(self.baseline.check_many(asked)) if self.baseline is not None else None
        except StraitsError as exc:  # one entry the rules cannot evaluate: find it, skip it
            if len(pending) == 1:
                out.skipped.append(Skipped(pending[0].entry.seq, "check", _why(exc)))
                return
            for p in pending:
                self._checks([p], out)
            return
        for p in pending:
            for i, (req, before) in enumerate(zip(p.requests, p.answers, strict=True)):
                d = next(after)
                b = next(base) if base is not None else None
                out.decisions += 1
                out.regimes.add(req.regime)
                now = Outcome.of(d)
                if now.same_decision(before):
                    out.reasons_changed += now.rules != before.rules
                    continue
                subject = (f"[{i}] " if len(p.requests) > 1 else "") + describe(req)
                out.changes.append(
                    _change(
                        "check",
                        p.entry,
                        subject,
                        before,
                        d,
                        Outcome.of(b) if b is not None else None,
                        {"request": p.raw[i]},
                    )
                )

    # --- plans -------------------------------------------------------------------------------
    def _plan(self, entry: Any, out: Replay) -> None:
        from straits.loading import parse_scenario
        from straits.plan.recheck import PlanContext
        from straits.store.records import load_scenario_row

        body = entry.content
        plan = body["result"]["plan"]
        plan_id = str(body["result"].get("plan_id", ""))
        ref = body["inputs"]["scenario_digest"]
        sc = parse_scenario(
            load_scenario_row(self.store, ref), source=f"stored scenario {ref[:12]}", stored=True
        )
        date, regime = dt.date.fromisoformat(str(plan["date"])), str(plan["regime"])
        ctx = PlanContext(sc, plan, self.candidate, date=date, regime=regime)
        base_ctx = (
            PlanContext(sc, plan, self.baseline, date=date, regime=regime)
            if self.baseline is not None
            else None
        )
        out.plans += 1
        out.regimes.add(regime)
        out.unplaced += len(plan.get("unplaced", ()))
        for p in ctx.placements.values():
            out.placements += 1
            before = Outcome(str(p.raw.get("decision", "allow")), (), ())
            subject = f"plan {plan_id[:12]} {p.workload}/{p.stage} on {p.label}"
            info = {
                "plan_id": plan_id,
                "workload": p.workload,
                "stage": p.stage,
                "site": p.site,
                "chip": p.chip,
                "bought": p.bought,
            }
            verdict = ctx.recheck(p)
            if verdict is None:
                out.skipped.append(
                    Skipped(
                        entry.seq,
                        "plan",
                        f"{subject}: the option is no longer in the stored scenario",
                    )
                )
                continue
            now = _combine(verdict.decisions)
            if now.same_decision(before):
                continue
            base = None
            if base_ctx is not None:
                bv = base_ctx.recheck(p)
                base = _combine(bv.decisions) if bv is not None else None
            out.changes.append(
                _change("plan", entry, subject, before, verdict.decisions, base, info)
            )


def _why(exc: Exception) -> str:
    if isinstance(exc, StraitsError):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"the entry lacks {exc.args[0]!r}: not a replayable record"
    return f"{type(exc).__name__}: {exc}"
