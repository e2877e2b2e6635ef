"""One resolver for every command that takes a plan (`plan`, `export`, `impact`, and `report`):
a recorded plan id (or a unique prefix), a plan document (the JSON or YAML `straits plan`
prints), or a scenario, each from a file or `-` (stdin). It says on stderr which it read.

Order: `-` is stdin; an existing path is a file (a plan document or a scenario, told apart by
their fields); something that looks like a path (a `/`, or a .json/.yaml/.yml suffix) but does
not exist is "file not found"; anything else is looked up as a recorded plan id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from straits.cli.common import (
    esc,
    note,
    open_store,
    parse_text,
    read_stdin_text,
    refuse_unread,
    state,
    working,
)
from straits.errors import InputError, NotFoundError, ScenarioError, StoreError

if TYPE_CHECKING:
    from straits.model.scenario import Scenario
    from straits.plan import Plan
    from straits.plandoc import PlanDocument
    from straits.rules import RuleSet
    from straits.store import Store
    from straits.store.tables import PlanRow

Kind = Literal["recorded", "document", "scenario"]
PATH_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class PlanSource:
    kind: Kind
    label: str
    """what was read, for people: 'plan document plan.json (plan 1a2b..., scenario x)'"""
    scenario: Scenario
    document: PlanDocument | None
    """None for a scenario not planned yet"""

    @property
    def scenario_doc(self) -> dict[str, Any]:
        if self.document is not None:
            return self.document.scenario_doc
        return dict(self.scenario.model_dump(mode="json"))


def looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.startswith("~") or Path(ref).suffix.lower() in PATH_SUFFIXES


def load_source(ref: str, *, db: str | None, what: str = "PLAN") -> PlanSource:
    """Read ``ref`` as a recorded plan id, a plan document or a scenario."""
    if ref == "-":
        return _from_text(read_stdin_text("a plan or a scenario"), "<stdin>")
    from straits.fileio import probe

    path = Path(ref).expanduser()
    if probe(path) is not None:  # a name too long, say: read_text says so
        from straits.loading import read_text

        return _from_text(read_text(path), str(path))
    if looks_like_path(ref) or not ref.strip():
        raise InputError(
            "file not found",
            source=ref,
            expected="a plan document, a scenario file, `-` for stdin, or a recorded plan id",
        )
    return _recorded(open_store(db, existing=True), ref, what)


def _recorded(store: Store, ref: str, what: str) -> PlanSource:
    from straits.plandoc import from_store

    try:
        doc = from_store(store, ref)
    except NotFoundError as exc:
        raise NotFoundError(
            f"{ref!r} is not a file, nor a recorded plan in {store!r}; "
            "`straits ledger show` lists the recorded plans"
        ) from exc
    except InputError as exc:
        if exc.source is not None or exc.path is not None:
            raise  # it names its own input (the ledger key file: it said 'PLAN: not a key')
        raise InputError(exc.detail, path=what, expected=exc.expected) from None
    entry = f", ledger entry {doc.ledger_seq}" if doc.ledger_seq else ""
    return PlanSource("recorded", f"recorded plan {doc.id}{entry} in {store!r}", doc.scenario, doc)


def _from_text(text: str, label: str) -> PlanSource:
    from straits.loading import parse_scenario
    from straits.plandoc import is_plan_document, read_document

    if not text.strip():
        raise InputError("input is empty", source=label, expected="a plan document or a scenario")
    data = parse_text(text, label, ScenarioError)
    if is_plan_document(data):
        doc = read_document(data, label, text)
        return PlanSource(
            "document",
            f"plan document {label} (plan {doc.id[:12]}, scenario {doc.scenario.name})",
            doc.scenario,
            doc,
        )
    sc = parse_scenario(data, source=label, text=text)
    return PlanSource("scenario", f"scenario {label}", sc, None)


def resolve_plan(ref: str, *, db: str | None, rules: RuleSet, what: str = "PLAN") -> PlanSource:
    """``ref`` as a plan: a scenario is planned now with the default options. Says on stderr
    what it read."""
    return planned(load_source(ref, db=db, what=what), rules)


def refuse_unread_db(
    sources: list[PlanSource], *, record: bool = False, expected: str = "a recorded plan id"
) -> None:
    """``--db`` given on the command line where no recorded plan is read and nothing is
    recorded is exit 2 naming it: ``export plan.json --db URL`` took a database it never
    opened, exit 0 (doc49). Environment and config defaults are never refused."""
    if not record and all(s.kind != "recorded" for s in sources):
        refuse_unread(
            ("db",),
            when=f"with {', '.join(s.label for s in sources)}: no recorded plan is read",
            expected=f"{expected} with --db",
        )


def planned(source: PlanSource, rules: RuleSet) -> PlanSource:
    """``source`` as a plan: a scenario is planned now with the default options."""
    if source.document is None:
        note(
            f"[dim]read {esc(source.label)}; planning it now with the default options "
            "(`straits plan` takes more)[/dim]"
        )
        from straits.plan import make_plan

        with working(f"planning {esc(source.label)}"):
            plan = make_plan(source.scenario, rules=rules)
        doc = document_of(plan, source.scenario, source.scenario_doc, DEFAULT_OPTIONS)
        return PlanSource("scenario", source.label, source.scenario, doc)
    note(f"[dim]read {esc(source.label)}[/dim]")
    return source


DEFAULT_OPTIONS: dict[str, Any] = {
    "solver": "auto",
    "objective": None,
    "regime": None,
    "time_limit": 20.0,
    "seed": 0,
}


def document_of(
    plan: Plan,
    sc: Scenario,
    scenario_doc: dict[str, Any],
    options: dict[str, Any],
    *,
    plan_id: str | None = None,
    ledger_seq: int | None = None,
    details: bool = False,
) -> PlanDocument:
    """The document of a plan made here from ``sc`` (``scenario_doc`` is its JSON)."""
    from straits.plandoc import (
        PlanDocument,
        content_digest,
        content_id,
        make_inputs,
        plan_body,
    )

    body = plan_body(plan.to_json(details=details))
    d = content_digest(body, make_inputs(scenario_doc, options))
    return PlanDocument(
        plan_id or content_id(body, scenario_doc, options),
        d,
        ledger_seq,
        sc,
        scenario_doc,
        body,
        dict(options),
    )


def record(
    store: Store,
    sc: Scenario,
    plan: Plan,
    rules: RuleSet,
    options: dict[str, Any],
    *,
    tenant: str,
    actor: str,
) -> tuple[str, int | None, bool]:
    """Record ``plan`` under its content id: (id, ledger entry, whether it is new). A plan
    the tenant already recorded (the same scenario, options and result) is not appended
    again. Another tenant's recording of the same plan is not the tenant's: it gets its own
    record and entry, under an id that also covers the tenant (:func:`tenant_plan_id`)."""
    from sqlalchemy.exc import IntegrityError

    from straits.plandoc import content_id
    from straits.store.records import get_plan, record_plan

    scenario_doc = dict(sc.model_dump(mode="json"))
    first = content_id(plan.to_json(), scenario_doc, options)
    for _ in range(3):
        plan_id = first
        row = get_plan(store, plan_id)
        if row is not None and row.tenant != tenant:
            plan_id = tenant_plan_id(first, tenant)
            row = get_plan(store, plan_id)
        if row is not None:  # recorded before: the entry says so, not the row (atk39)
            return plan_id, _proven_seq(store, row), False
        try:
            plan_id, entry = record_plan(
                store, sc, plan, rules, options, tenant=tenant, actor=actor, plan_id=plan_id
            )
            return plan_id, entry.seq, True
        except IntegrityError:  # another process recorded the same plan a moment ago
            continue
    raise StoreError(f"plan {first} could neither be recorded nor read back")


def _proven_seq(store: Store, row: PlanRow) -> int:
    """The entry that records the plan of ``row`` (``LedgerError`` naming it when the row was
    detached from its entry, moved to another or altered): ``already recorded (ledger entry
    None)`` was said of a detached row, and the entry a moved ``ledger_seq`` named, exit 0."""
    from straits.store.proven import prove_plan
    from straits.store.records import refuse_detached

    refuse_detached(row)
    return prove_plan(store, row).proof.entry.seq


def tenant_plan_id(content: str, tenant: str) -> str:
    """The id a plan whose content id another tenant recorded first is recorded under."""
    from straits.store.ledger import digest

    return digest({"plan": content, "tenant": tenant})[:32]


#: the flags that only planning reads (--show prints, --recheck asks the rules, neither plans)
_PLANNING = ("objective", "solver", "time_limit", "seed", "risk", "pareto", "record")


def refuse_unread_flags(
    show: bool, recheck: bool, record: bool, fmt: str, pareto: int, solver: str | None = None
) -> None:
    """``straits plan``: a flag this run would not read is exit 2 (``common.refuse_unread``)."""
    if show or recheck or pareto or state.server_url or fmt not in ("json", "yaml"):
        # only a plan made here and printed as a document lists every rejected option
        refuse_unread(
            ("details",),
            when="unless a plan made here is printed with -o json or -o yaml",
            expected="-o json or -o yaml",
        )
    if show:
        refuse_unread(
            ("regime", *_PLANNING, "rules", "date"), when="with --show", expected="no --show"
        )
    if recheck:
        refuse_unread(_PLANNING, when="with --recheck", expected="no --recheck")
    if pareto:  # the frontier is cost against makespan, searched by CP-SAT, and not recorded
        refuse_unread(
            ("record", "objective", "solver"), when="with --pareto", expected="no --pareto"
        )
    if not recheck:
        refuse_unread(("date",), when="without --recheck", expected="--recheck --date D")
    if state.server_url and solver == "greedy" and not pareto:
        _refuse_greedy_seed()  # as planned here (the server would record the seed unread)
    if state.server_url:  # the server records under its token's tenant, with its own rules
        refuse_unread(
            ("tenant", "actor", "rules", "db"), when="with --server", expected="no --server"
        )
    elif not record:
        refuse_unread(("tenant", "actor"), when="without --record", expected="--record")


def refuse_unread_loaded(
    source: PlanSource, record: bool, solver: str | None, pareto: bool
) -> None:
    """``straits plan``, once ``source`` is read: ``--db`` without a recorded plan or
    ``--record`` (``plan F --show --db URL`` opened no database, exit 0), and ``--seed`` for
    the greedy baseline (it draws no random numbers, yet the seed was recorded and changed the
    plan's id; a frontier searches by CP-SAT and reads it)."""
    refuse_unread_db([source], record=record, expected="a recorded plan id or --record")
    if solver is None and source.document is not None:
        solver = source.document.options.get("solver")  # planned again with its options
    if solver == "greedy" and not pareto:
        _refuse_greedy_seed()


def _refuse_greedy_seed() -> None:
    refuse_unread(
        ("seed",),
        when="with --solver greedy: the greedy baseline draws no random numbers",
        expected="--solver auto, cpsat or lns with --seed",
    )


def check_document_options(label: str, given: Mapping[str, Any], read: Iterable[str]) -> None:
    """The options of a plan document (``inputs.options``) that planning it again reads, as
    the flags check them: exit 2 naming the file and ``inputs.options.KEY``. They were read
    unchecked (a ``time_limit`` of -5 or 10^9 planned anyway, and went into the new plan)."""
    import math

    from straits.model.types import Regime
    from straits.plan.registry import SOLVER_NAMES

    def bad(key: str, expected: str) -> InputError:
        shown = repr(given[key])[:60]
        return InputError(
            f"{shown} is not a {key}",
            source=label,
            path=f"inputs.options.{key}",
            expected=expected,
        )

    for key in read:
        if key not in given or given[key] is None:
            continue
        v = given[key]
        if key == "time_limit":
            number = isinstance(v, int | float) and not isinstance(v, bool)
            if not number or not math.isfinite(v) or not 0.5 <= v <= 3600:
                raise bad(key, "seconds, a number from 0.5 to 3600 (or --time-limit)")
        elif key == "seed":
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 2**31 - 1:
                raise bad(key, "an integer from 0 to 2147483647 (or --seed)")
        elif key == "solver":
            if not isinstance(v, str) or v.strip().lower() not in SOLVER_NAMES:
                raise bad(key, f"one of {', '.join(SOLVER_NAMES)} (or --solver)")
        elif key == "regime":
            if v not in get_args(Regime):
                raise bad(key, f"{' or '.join(get_args(Regime))} (or --regime)")
        elif key == "objective":
            from straits.plan.registry import objective

            if not isinstance(v, str):
                raise bad(key, "an objective name or weighted sum (or --objective)")
            objective(v, source=label, path=f"inputs.options.{key}")
