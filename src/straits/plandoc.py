"""Plans as documents: what `straits plan --json` prints and `export`, `impact`, `report` and
`plan --recheck` read back.

A plan document is the plan JSON contract (``docs/contracts.md``) plus:

* ``id``: the recorded plan's id, or its content id: the first 32 hex digits of the SHA-256 of
  its inputs and what it decides (status, assignments, unplaced stages, under which rules), so
  the same plan of the same inputs has the same id however long the search took to find it
  (`--record` stores a plan under its content id, and finds it there the next time);
* ``digest``: SHA-256 of the canonical JSON of ``inputs`` and the plan's own fields, so an
  edited document is caught when it is read back;
* ``ledger_seq``: the ledger entry that records it (``null`` when unrecorded);
* ``guidance``: hints where the plan alone would leave a user stuck (stages past the horizon);
* ``inputs``: the validated scenario (``scenario``, with its ``scenario_digest``, the digest the
  database stores it under) and the planner's ``options``.

With ``inputs`` in it, a document needs no database: `straits export plan.json` works on
another machine, and the scenario it was made from travels with it. Nothing here prints or
reads files; :func:`from_store` is the one function that reads a database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from straits.errors import InputError, NotFoundError, ScenarioError

if TYPE_CHECKING:
    from straits.model.scenario import Scenario
    from straits.store import Store

#: what a plan document's `id` may be: a content id (32 hex digits), a recorded plan's id, or a
#: name a person gave it
PLAN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{3,63}")
#: the document's own fields: not part of the plan contract, not covered by ``digest``
DOCUMENT_FIELDS = ("id", "digest", "ledger_seq", "guidance", "inputs")


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace, UTF-8 kept): the ledger's own form
    (``straits.store.ledger.canonical``, which a test keeps equal), without importing the
    database layer."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    raise TypeError(f"{type(o).__name__} is not JSON")


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


def plan_body(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The plan contract without the document's fields."""
    return {k: v for k, v in plan.items() if k not in DOCUMENT_FIELDS}


def make_inputs(scenario_doc: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scenario": dict(scenario_doc),
        "scenario_digest": digest(scenario_doc),
        "options": dict(options),
    }


def content_digest(plan: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    return digest({"inputs": inputs, "plan": plan_body(plan)})


#: what a plan decides: its content id covers these (the search's statistics, notes and
#: bounds, which vary with the machine's speed, are left out)
DECISION_FIELDS = (
    "scenario",
    "date",
    "regime",
    "objective",
    "solver",
    "status",
    "assignments",
    "unplaced",
    "rules_digest",
)


def content_id(
    plan: Mapping[str, Any], scenario_doc: Mapping[str, Any], options: Mapping[str, Any]
) -> str:
    """The id a plan gets from its inputs and decisions (the id `--record` stores it
    under)."""
    decision = {k: plan.get(k) for k in DECISION_FIELDS}
    return digest({"inputs": make_inputs(scenario_doc, options), "plan": decision})[:32]


def make_document(
    plan: Mapping[str, Any],
    scenario_doc: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    plan_id: str | None = None,
    ledger_seq: int | None = None,
) -> dict[str, Any]:
    """The plan document of ``plan`` (its JSON contract) made from ``scenario_doc`` (the
    validated scenario as JSON) with ``options``."""
    inputs = make_inputs(scenario_doc, options)
    body = plan_body(plan)
    d = content_digest(body, inputs)
    return {
        "id": plan_id or content_id(body, scenario_doc, options),
        "digest": d,
        "ledger_seq": ledger_seq,
        **body,
        "guidance": plan_guidance(body, scenario_doc),
        "inputs": inputs,
    }


# --- guidance ------------------------------------------------------------------------------------
def _instant(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def plan_guidance(plan: Mapping[str, Any], scenario_doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Hints a person needs to act on the plan: workloads whose deadline is already past on
    the plan's date, and stages that end after the scenario's ``horizon_days`` (the window the
    planner accounts capacity and bought chips in)."""
    out = _deadlines_passed(plan, scenario_doc)
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(str(plan["date"])), dt.time(), dt.UTC)
        days = float(scenario_doc.get("horizon_days", 730))
        ends = [
            (f"{a['workload']}/{a['stage']}", _instant(a["end"]))
            for a in plan.get("assignments", ())
        ]
    except (KeyError, TypeError, ValueError):
        return out
    horizon = start + dt.timedelta(days=days)
    late = sorted(((tag, end) for tag, end in ends if end > horizon), key=lambda x: x[1])
    if late:
        last_tag, last = late[-1]
        out.append(
            {
                "code": "past-horizon",
                "horizon_days": days,
                "horizon_end": horizon.isoformat(),
                "stages": [tag for tag, _ in late],
                "text": f"{len(late)} stage(s) end after the planning horizon ({days:g} days from "
                f"{start.date()}, {horizon.date()}); the last, {last_tag}, ends "
                f"{last.date()}. Capacity windows and bought chips are only accounted "
                "within the horizon: raise `horizon_days` in the scenario, or add capacity "
                "or chips so the plan finishes sooner.",
            }
        )
    return out


def _deadlines_passed(
    plan: Mapping[str, Any], scenario_doc: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A deadline before the plan's date is no input error (a re-plan of a late project has
    one) but no plan can meet it: a soft one is charged from the first hour, a hard one leaves
    the workload unplaced. Said, not silent (a hostile-input review found it accepted)."""
    try:
        day = dt.date.fromisoformat(str(plan["date"]))
        passed = [
            (str(w["id"]), dt.date.fromisoformat(str(w["deadline"])), w.get("deadline_policy"))
            for w in scenario_doc.get("workloads") or ()
            if w.get("deadline") is not None
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    passed = sorted((p for p in passed if p[1] < day), key=lambda p: (p[1], p[0]))
    if not passed:
        return []
    hard = [wid for wid, _, policy in passed if policy == "hard"]
    wid, first, _ = passed[0]
    return [
        {
            "code": "deadline-passed",
            "date": day.isoformat(),
            "workloads": [p[0] for p in passed],
            "hard": hard,
            "text": f"{len(passed)} workload(s) have a deadline before the plan's date ({day}); "
            f"the earliest, {wid}, {first}. A soft deadline is charged its penalty from the "
            "plan's first hour, a hard one cannot be met (those stages stay unplaced): check "
            "the deadlines and the scenario's `date`.",
        }
    ]


# --- reading a document back ---------------------------------------------------------------------
@dataclass(frozen=True)
class PlanDocument:
    """A plan document read back and checked: its scenario parsed, its digest verified."""

    id: str
    digest: str
    ledger_seq: int | None
    scenario: Scenario
    scenario_doc: dict[str, Any]
    plan: dict[str, Any]
    """the plan JSON contract (what the ledger records), without the document's fields"""
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return make_document(
            self.plan, self.scenario_doc, self.options, plan_id=self.id, ledger_seq=self.ledger_seq
        )


def is_plan_document(data: Any) -> bool:
    """A plan (with or without the document's fields), as opposed to a scenario."""
    return isinstance(data, Mapping) and "assignments" in data and "status" in data


def read_document(data: Any, label: str, text: str | None = None) -> PlanDocument:
    """Check a parsed plan document: the plan's fields, its scenario, that every assignment
    names a stage, site and pool of that scenario, and that its digest matches its content.
    ``text``, the document ``data`` was parsed from, gives errors in the plan's fields their
    line."""
    if not is_plan_document(data):
        raise InputError(
            "not a plan document", source=label, expected="the JSON or YAML `straits plan` prints"
        )
    inputs = data.get("inputs")
    if not isinstance(inputs, Mapping) or not isinstance(inputs.get("scenario"), Mapping):
        raise InputError(
            "this plan does not carry its scenario",
            source=label,
            path="inputs",
            expected="a plan printed by `straits plan --json` (which includes "
            "`inputs.scenario`), a recorded plan id, or the scenario "
            "file",
        )
    options = inputs.get("options") or {}
    if not isinstance(options, Mapping):
        raise InputError("must be a mapping", source=label, path="inputs.options")
    body = plan_body(data)
    _check_plan_fields(body, label, text)
    scenario = _parse_scenario(inputs["scenario"], label)
    scenario_doc = dict(inputs["scenario"])
    actual = content_digest(body, make_inputs(scenario_doc, options))
    claimed = data.get("digest")
    if claimed is not None and claimed != actual:
        raise InputError(
            "the plan was changed after it was made: its content no longer matches its digest",
            source=label,
            path="digest",
            expected="the document as `straits plan` printed it (to use an "
            "edited plan as a new one, delete its `id` and `digest`)",
        )
    _check_totals(body, label)
    _check_references(body, scenario, label)
    _check_date(body, scenario, label)
    _check_regime(body, scenario, options, label)
    _check_risk(body, scenario, label)
    _check_status(body, label)  # after the references: a stage named twice says so first
    plan_id = data.get("id")
    if plan_id is not None and not (isinstance(plan_id, str) and PLAN_ID.fullmatch(plan_id)):
        # printed as it is ("read plan document ... (plan ID)"), and it names exported files,
        # jobs and sbatch comments: an escape sequence or a newline in it reached the terminal
        raise InputError(
            "must be a plan id",
            source=label,
            path="id",
            expected="4 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or "
            "digit (or no `id`: the plan's content id)",
        )
    seq = data.get("ledger_seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        raise InputError("must be a positive integer or null", source=label, path="ledger_seq")
    return PlanDocument(
        plan_id or content_id(body, scenario_doc, options),
        actual,
        seq,
        scenario,
        scenario_doc,
        body,
        dict(options),
    )


def _parse_scenario(doc: Any, label: str) -> Scenario:
    from straits.loading import parse_scenario

    try:
        return parse_scenario(doc, source=label, stored=True)
    except ScenarioError as exc:
        path = "inputs.scenario" + (
            f".{exc.path}" if exc.path and exc.path[0] != "[" else exc.path or ""
        )
        raise ScenarioError(
            exc.detail,
            source=label,
            path=path,
            expected=exc.expected,
            problems=exc.problems_under("inputs.scenario"),
        ) from None


def _check_date(plan: Mapping[str, Any], scenario: Scenario, label: str) -> None:
    """A plan starts on its scenario's date and was checked against the rules in force then:
    export, impact and re-checks ask the rules as of the plan's ``date``. A document whose
    ``date`` was edited to 2025-03-01 over a scenario of 2025-04-08 had 2,048 H20s bought
    before the 9 April letter, and `straits export` wrote them out as lawful."""
    if str(plan.get("date")) != scenario.date.isoformat():
        raise InputError(
            f"{plan.get('date')} is not its scenario's date ({scenario.date.isoformat()})",
            source=label,
            path="date",
            expected="the date of `inputs.scenario` (the planner plans from it; to plan "
            "from another date, change the scenario's `date` and plan again)",
        )


def _check_regime(
    plan: Mapping[str, Any], scenario: Scenario, options: Mapping[str, Any], label: str
) -> None:
    """A plan's ``regime`` is the one it was made under: ``--regime`` (``inputs.options``) or
    its scenario's. Export asks for the lawful alternatives under it: a plan made under
    ai-diffusion, its ``regime`` edited to enacted, offered Johor and Singapore to the
    schedulers' failover, which the rule it was planned under keeps a China-headquartered
    tenant out of."""
    from straits.rules.est import REGIMES

    given = options.get("regime")
    if given is not None and given not in REGIMES:
        return  # not a regime at all: the options' own check names `inputs.options.regime`
    made = given or scenario.regime
    if plan.get("regime") != made:
        raise InputError(
            f"{plan.get('regime')} is not the regime the plan was made under ({made})",
            source=label,
            path="regime",
            expected="`inputs.options.regime`, else `inputs.scenario.regime` (to plan "
            "under another, plan again with --regime)",
        )


def _check_risk(plan: Mapping[str, Any], scenario: Scenario, label: str) -> None:
    """A plan's ``risk`` is its scenario's (``--risk`` writes it there; risk51)."""
    if plan.get("risk") not in (None, scenario.risk):
        raise InputError(
            f"{plan['risk']} is not the risk the plan was made at ({scenario.risk})",
            source=label,
            path="risk",
            expected="`inputs.scenario.risk` (to plan at another, plan again with --risk)",
        )


def _check_plan_fields(plan: Mapping[str, Any], label: str, text: str | None) -> None:
    """The fields that export, impact and re-checks read, with their types."""
    from straits.loading import validate_as
    from straits.plan_fields import PlanInput

    validate_as(PlanInput, plan, source=label, text=text)


def _check_totals(plan: Mapping[str, Any], label: str) -> None:
    """The high end of the cost a report shows beside the plan's cost is not below it (the
    fields are typed already): an edited document showed "$13.04M up to $1" (atk87). Totals
    are not held to the assignments' sum, so an edited plan (the docs invite it) need not be
    re-added by hand."""
    low, high = plan.get("total_cost_usd"), plan.get("total_cost_usd_high")
    if low is not None and high is not None and high < low - 0.01:
        raise InputError(
            f"{high:,.2f} is below total_cost_usd ({low:,.2f})",
            source=label,
            path="total_cost_usd_high",
            expected="at least total_cost_usd (the estimates' high end costs at least the plan)",
        )


def _check_status(plan: Mapping[str, Any], label: str) -> None:
    """``infeasible`` exactly when a stage is unplaced, as every solver writes it: a plan
    edited to ``infeasible`` with every stage placed (or ``optimal`` with some unplaced) was
    shown, exported and re-checked as it said (a hostile-input review)."""
    status, unplaced = plan.get("status"), bool(plan.get("unplaced"))
    if (status == "infeasible") != unplaced:
        raise InputError(
            f"status {status!r} but {'a stage is' if unplaced else 'no stage is'} unplaced",
            source=label,
            path="status",
            expected="`infeasible` when a stage is unplaced, `feasible` or `optimal` when "
            "every stage is placed",
        )


def _check_references(plan: Mapping[str, Any], sc: Scenario, label: str) -> None:
    """Every assignment names a stage, site and pool of the scenario; every stage is placed
    at most once, and an unplaced stage is one of the scenario's and not placed as well."""
    placed: dict[tuple[str, str], int] = {}
    for i, a in enumerate(plan.get("assignments", ())):
        where = f"assignments[{i}]"
        key = (a["workload"], a["stage"])
        if key in placed:
            raise InputError(
                f"stage {key[0]}/{key[1]} is placed twice (first at assignments[{placed[key]}])",
                source=label,
                path=where,
                expected="one assignment per stage",
            )
        placed[key] = i
        try:
            w = sc.workload(a["workload"])
        except KeyError:
            raise InputError(
                f"no workload {a['workload']!r} in the plan's scenario",
                source=label,
                path=f"{where}.workload",
            ) from None
        try:
            w.stage(a["stage"])
        except KeyError:
            raise InputError(
                f"workload {w.id!r} has no stage {a['stage']!r}",
                source=label,
                path=f"{where}.stage",
            ) from None
        try:
            site = sc.site(a["site"])
        except KeyError:
            raise InputError(
                f"no site {a['site']!r} in the plan's scenario", source=label, path=f"{where}.site"
            ) from None
        if not any(p.chip == a["chip"] for p in site.pools):
            raise InputError(
                f"site {site.id!r} has no pool of {a['chip']!r}", source=label, path=f"{where}.chip"
            )
    unplaced: set[tuple[str, str]] = set()
    for i, u in enumerate(plan.get("unplaced", ())):
        where, key = f"unplaced[{i}]", (u["workload"], u["stage"])
        try:
            sc.workload(key[0]).stage(key[1])
        except KeyError:
            raise InputError(
                f"no stage {key[0]}/{key[1]} in the plan's scenario", source=label, path=where
            ) from None
        if key in placed or key in unplaced:
            raise InputError(
                f"stage {key[0]}/{key[1]} is {'placed' if key in placed else 'unplaced'} already",
                source=label,
                path=where,
                expected="each stage either placed once or unplaced once",
            )
        unplaced.add(key)
    for w in sc.workloads:
        for st in w.stages:
            if (w.id, st.id) not in placed and (w.id, st.id) not in unplaced:
                raise InputError(
                    f"stage {w.id}/{st.id} of the plan's scenario is neither placed nor unplaced",
                    source=label,
                    path="unplaced",
                    expected="each stage either placed once or unplaced once",
                )


# --- a recorded plan as a document ---------------------------------------------------------------
def from_store(store: Store, ref: str) -> PlanDocument:
    """The finished plan recorded under ``ref`` (an id or a unique prefix) as a document."""
    from straits.loading import parse_scenario
    from straits.store.records import find_plan, get_plan, load_scenario_row

    rec = find_plan(store, ref)
    row = get_plan(store, rec.id)
    if row is None:  # removed between the two reads
        raise NotFoundError(f"no plan {ref!r}")
    if rec.scenario_doc is not None:  # proven, decoded and validated once already (web33)
        scenario_doc, sc = rec.scenario_doc, rec.scenario
    else:
        scenario_doc = load_scenario_row(store, row.scenario_digest)
        sc = parse_scenario(scenario_doc, source=f"stored scenario {row.scenario_digest[:12]}")
    options = rec.options if rec.options is not None else json.loads(row.options or "{}")
    body = plan_body(rec.plan)
    return PlanDocument(
        rec.id,
        content_digest(body, make_inputs(scenario_doc, options)),
        rec.ledger_seq,
        sc,
        scenario_doc,
        body,
        options,
    )
