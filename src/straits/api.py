"""The Python API: what every shell (CLI, REST server) calls, returning the public JSON shapes.

Each function takes validated inputs or plain documents and returns exactly the JSON of the
contract it serves (``docs/contracts.md``); the CLI prints it, the server returns it. Nothing
here prints, reads files or touches a database. Arguments of the wrong kind (a dict for a
model, one built with ``model_construct``, a NaN chip count, a date outside 2000-2100) are a
:class:`~straits.errors.RequestError` naming the argument (``api_args.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from straits import api_args as args
from straits.errors import InputError, RequestError, suggesting, unknown_names
from straits.limits import MAX_CHECK_REQUESTS

if TYPE_CHECKING:  # imported where used: the CLI's start-up must not pay for them
    from straits.catalog import Chip
    from straits.estimate import Estimate
    from straits.model.request import CheckRequest, EstimateRequest
    from straits.model.types import Regime
    from straits.rules import Rule, RuleSet


# --- check ---------------------------------------------------------------------------------------
def parse_check_document(
    data: Any, label: str, text: str | None = None
) -> tuple[list[CheckRequest], bool]:
    """(requests, was_list) from a parsed document: one object or a non-empty list of them;
    with ``text`` (the document as written) a bad field's error names its line."""
    from straits.loading import validate_as
    from straits.model.request import CheckRequest
    from straits.scenario_listing import items_listing

    if text is not None and not isinstance(text, str):
        raise RequestError(f"got {type(text).__name__}, not text", path="text", expected="str")
    if isinstance(data, dict):
        return [validate_as(CheckRequest, data, source=label, error=RequestError, text=text)], False
    if isinstance(data, list) and data:
        if len(data) > MAX_CHECK_REQUESTS:  # before any is validated: that is the cost
            raise RequestError(
                f"{len(data):,} requests in one list",
                source=label,
                expected=f"at most {MAX_CHECK_REQUESTS:,}: split the list",
            )
        out, bad = [], []  # every bad request's problems, not only the first's (cli65)
        with suggesting():  # the listed problems' names alone, of every request (rev65c)
            for i, item in enumerate(data):
                try:
                    if not isinstance(item, dict):
                        raise RequestError("each request must be a JSON object", path=f"[{i}]")
                    out.append(validate_as(CheckRequest, item, source=label, error=RequestError))
                except InputError as exc:
                    bad.append((i, exc))
        if bad:
            raise items_listing(bad, label, text, RequestError)
        return out, True
    raise RequestError(
        "expected a JSON object (one request) or a non-empty list of them", source=label
    )


def check_json(rules: RuleSet, requests: list[CheckRequest], was_list: bool) -> Any:
    """The ``straits check --json`` answer: one decision object, or a list in request order.
    An answer lists as ``ignored`` the fields its request set that no loaded rule reads for
    its action (an order's ``quantity`` on ``train``), only when there are some: every other
    answer is what it was, as recorded before (fix90).

    Raises :class:`~straits.errors.RequestError` for arguments of the wrong kind: ``rules``
    not a RuleSet, a request not a CheckRequest (or a dict of its fields; one built with
    ``model_construct`` is validated again), or not exactly one request when ``was_list``
    is false."""
    from straits.rules.unread import unread_fields

    rules = args.rules_arg(rules)
    requests = args.requests_arg(requests)
    if not was_list and len(requests) != 1:
        raise RequestError(
            f"{len(requests)} requests with was_list=False", path="requests", expected="one"
        )
    answers = []
    for req, d in zip(requests, rules.check_many(requests), strict=True):
        answer = d.to_json()
        ignored = unread_fields(rules.rules, req)
        if ignored:
            answer["ignored"] = ignored
        answers.append(answer)
    return answers if was_list else answers[0]


# --- estimate ------------------------------------------------------------------------------------
def run_estimate(req: EstimateRequest, chips: int | None = None) -> Estimate:
    """The request's estimate; a training request without ``chips`` runs on the cluster size
    published runs of its size typically used (see :func:`chips_basis`).

    Raises :class:`~straits.errors.RequestError` for a ``req`` that is no EstimateRequest (or
    dict of its fields) or a ``chips`` that is no chip count (``True``, NaN, ``10**30``), and
    :class:`~straits.errors.EstimateError` for an estimate that cannot be made."""
    from straits.catalog import get_chip
    from straits.estimate import estimate_serving, estimate_training, typical_chips
    from straits.model.request import EstimateRequest

    req = args.model_arg(req, EstimateRequest, "req")
    chips = args.chips_arg(chips)
    chip = get_chip(req.chip)
    n = chips if chips is not None else req.chips
    if req.kind == "serve":
        assert req.days is not None
        return estimate_serving(
            req.model,
            chip,
            n,
            req.days,
            req.usd_per_chip_hour,
            tokens_per_s=req.tokens_per_s,
            prompt_tokens=req.prompt_tokens,
            output_tokens=req.output_tokens,
        )
    assert req.tokens is not None
    if n is None:
        n = typical_chips(req.model, req.tokens, chip, software_year=req.software_year)
    return estimate_training(
        req.model,
        req.tokens,
        chip,
        n,
        req.usd_per_chip_hour,
        software_year=req.software_year,
        mfu=req.mfu,
    )


KINDS = {"train": "training", "serve": "serving"}


def chips_basis(req: EstimateRequest, chips: int | None = None) -> str:
    """Where the estimate's cluster size came from: 'given', or 'typical' (training) /
    'target' (serving sized for ``tokens_per_s``) when the request did not say."""
    from straits.model.request import EstimateRequest

    req, chips = args.model_arg(req, EstimateRequest, "req", again=False), args.chips_arg(chips)
    if chips is not None or req.chips is not None:
        return "given"
    return "typical" if req.kind == "train" else "target"


def estimate_json(
    req: EstimateRequest,
    est: Estimate | None = None,
    *,
    chips: int | None = None,
    guidance: bool = True,
) -> dict[str, Any]:
    """The ``straits estimate --json`` answer (the estimate is computed when not given;
    ``chips`` overrides the request's cluster size, as in ``--sweep chips``), with
    ``guidance`` where the answer alone would leave a user stuck. Raises as
    :func:`run_estimate`."""
    from straits.catalog import get_chip
    from straits.estimate import Estimate, nearest_runs
    from straits.model.request import EstimateRequest

    req = args.model_arg(req, EstimateRequest, "req")
    chips = args.chips_arg(chips)
    est = args.instance_arg(est, Estimate, "est") if est is not None else run_estimate(req, chips)
    out = est.to_json()
    e = est.energy(
        get_chip(req.chip), pue=req.pue, gco2_per_kwh=req.grid_gco2_per_kwh, country=req.country
    )
    out["energy"] = e.to_json() if e is not None else None
    out["chips_basis"] = chips_basis(req, chips)
    out["ignored"] = list(req.ignored_fields())
    out["notes"] = [
        *out["notes"],
        *(f"`{f}` does not apply to a {KINDS[req.kind]} estimate: ignored" for f in out["ignored"]),
    ]
    if req.kind == "train":
        assert req.tokens is not None
        out["nearest_runs"] = [
            n.to_json() for n in nearest_runs(req.model, req.tokens, get_chip(req.chip))
        ]
    if guidance:
        out["guidance"] = estimate_guidance(req, est)
    return out


def sweep_sizes(est: Estimate) -> list[int]:
    """The chip counts ``--sweep chips`` tries (``estimate.guidance.sweep_sizes``)."""
    from straits.estimate import Estimate
    from straits.estimate.guidance import sweep_sizes as sizes

    return sizes(args.instance_arg(est, Estimate, "est"))


def estimate_guidance(req: EstimateRequest, est: Estimate) -> list[dict[str, Any]]:
    """Hints for an estimate a user cannot act on as it is (``estimate/guidance.py``)."""
    from straits.estimate import Estimate
    from straits.estimate.guidance import estimate_guidance as guidance
    from straits.model.request import EstimateRequest

    req = args.model_arg(req, EstimateRequest, "req", again=False)
    est = args.instance_arg(est, Estimate, "est")
    return guidance(req, est, lambda n: run_estimate(req, n))


# --- catalog and rules ---------------------------------------------------------------------------
def chip_json(chip: Chip) -> dict[str, Any]:
    from straits.catalog import Chip, classify_2022, classify_2023
    from straits.catalog.chips import SPEC_FIELDS

    chip = args.instance_arg(chip, Chip, "chip")
    figures = {}
    for name in (*SPEC_FIELDS, "rent_usd_per_hour"):  # every sourced figure of the chip
        fig = getattr(chip, name)
        if fig is not None:
            figures[name] = fig.model_dump(exclude_none=True)
    c22, c23 = classify_2022(chip), classify_2023(chip)
    pd = chip.performance_density
    return {
        "id": chip.id,
        "name": chip.name,
        "vendor": chip.vendor,
        "origin": chip.origin,
        "family": chip.family,
        "datacenter": chip.datacenter,
        "figures": figures,
        "derived": {
            "tpp": round(chip.tpp, 1),
            "tpp_upper": round(chip.tpp_upper, 1),
            "performance_density": round(pd, 3) if pd is not None else None,
            "class_2022": c22.cls,
            "class_2022_basis": c22.basis,
            "class_2023": c23.cls,
            "class_2023_basis": c23.basis,
            "us_origin": chip.origin == "US",
            "prc_advanced": chip.is_prc_advanced,
            "midpoints_used": chip.mid_figures,
        },
    }


def chips_json() -> list[dict[str, Any]]:
    """The ``straits chips --json`` answer."""
    from straits.catalog import catalog

    return [chip_json(c) for c in catalog()]


def rule_json(r: Rule) -> dict[str, Any]:
    from straits.rules import Rule
    from straits.rules.listing import rule_regimes

    r = args.instance_arg(r, Rule, "rule")
    return {
        "rule": r.id,
        "pack": r.pack,
        "file": r.file,
        "line": r.line,
        "title": r.title,
        "citation": r.citation,
        "confidence": r.confidence,
        "effect": r.effect,
        "requires": r.requires,
        "presumption": r.presumption,
        "effective_from": r.effective_from.isoformat(),
        "effective_until": r.effective_until.isoformat() if r.effective_until else None,
        "regimes": list(rule_regimes(r)),
        "reason": r.reason,
        "reading": r.reading,
    }


def select_rules(
    rules: RuleSet,
    date: dt.date | None = None,
    regime: Regime = "enacted",
    packs: list[str] | None = None,
) -> list[Rule]:
    """The rules of ``rules`` in force on ``date`` under ``regime`` (every rule without a
    date), of ``packs`` only when given. Raises :class:`~straits.errors.RequestError` for an
    unknown pack or regime, a date outside 2000-01-01 to 2100-12-31 or not a date, and
    ``rules`` that is not a RuleSet."""
    from straits.rules.listing import in_force

    rules = args.rules_arg(rules)
    date = args.date_arg(date)
    regime = args.regime_arg(regime)
    packs = args.texts_arg(packs, "pack")
    known = [p.name for p in rules.packs]
    unknown = sorted(set(packs or ()) - set(known))
    if unknown:  # a misspelt pack listed no rule at all, as if nothing were in force
        err = unknown_names("pack(s)", unknown, known, path="pack")  # with "did you mean"
        raise RequestError(
            err.detail, path="pack", expected="one of " + ", ".join(known),
            suggestions=err.suggestions,
        )  # fmt: skip
    selected = list(rules.rules)
    if date is not None:
        selected = in_force(selected, date, regime)
    if packs:
        selected = [r for r in selected if r.pack in packs]
    return selected


def rules_json(
    rules: RuleSet,
    date: dt.date | None = None,
    regime: Regime = "enacted",
    packs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The ``straits rules list --json`` answer."""
    return [rule_json(r) for r in select_rules(rules, date, regime, packs)]


def packs_json(rules: RuleSet) -> list[dict[str, str]]:
    """The loaded packs with their versions and content digests (recorded in the ledger)."""
    rules = args.rules_arg(rules)
    return [{"name": p.name, "version": p.version, "digest": p.digest} for p in rules.packs]


# --- export --------------------------------------------------------------------------------------
#: the scenario field each export target reads, for the message when none is set
TARGET_FIELDS = {
    "skypilot": "sites[].targets.skypilot (cloud, region)",
    "kubernetes": "sites[].targets.kubernetes (cluster, namespace, queue)",
    "karmada": "sites[].targets.kubernetes (cluster: the Karmada member cluster)",
    "slurm": "sites[].targets.slurm (cluster, partition)",
}


def export_targets(to: list[str]) -> tuple[str, ...]:
    """``--to`` values (repeatable, or ``all``) as a tuple of known targets, in order."""
    from straits.export import TARGETS

    to = args.texts_arg(to, "--to")
    if not to:
        raise InputError(
            "no export target given",
            path="--to",
            expected="one or more of " + ", ".join((*TARGETS, "all")),
        )
    targets = tuple(
        dict.fromkeys(
            t2 for t in to for t2 in (TARGETS if t.strip().lower() == "all" else (t.lower(),))
        )
    )
    for t in targets:
        if t not in TARGETS:
            raise InputError(
                f"unknown export target {t!r}",
                path="--to",
                expected="one of " + ", ".join((*TARGETS, "all")),
            )
    return targets


#: an OCI image reference, loosely: what registries accept, no whitespace or quotes
_IMAGE = re.compile(r"[A-Za-z0-9[][A-Za-z0-9._/:@+\[\]-]{0,511}")


def check_image(image: str | None) -> None:
    """Refuse an ``--image`` that is no image reference: '' was the default image without a
    word, 'a b' or a newline a manifest kubectl refuses only at apply time, and one the
    kubelet cannot parse ('a::b', 'x@y', an uppercase path) pods that never start
    (InvalidImageName)."""
    from straits.export.names import image_reference

    if image is not None and not isinstance(image, str):
        raise InputError(
            f"got {type(image).__name__}, not text", path="--image", expected="a string or None"
        )
    if image is not None and not (_IMAGE.fullmatch(image) and image_reference(image)):
        raise InputError(
            f"{image[:80]!r} is not a container image reference",
            path="--image",
            expected="[REGISTRY/]NAME[:TAG][@DIGEST], a lowercase NAME, without spaces, at "
            "most 512 characters (e.g. nvcr.io/nvidia/pytorch:25.01-py3)",
        )


def export_files(
    sc: Any,
    plan: dict[str, Any],
    rules: RuleSet,
    *,
    plan_id: str,
    to: list[str],
    run: str | Sequence[str] | None = None,
    image: str | None = None,
    ordered: bool = False,
) -> tuple[Any, list[Any], dict[str, str]]:
    """(export input, results per target, every file) of a plan for the targets in ``to``.

    A target that gets no job although stages are placed (no site of the plan is mapped to it)
    is an error naming the field to add, unless ``all`` was asked for and another target got
    jobs: then it is left out with its note."""
    from straits import export as ex
    from straits.export.commands import parse as parse_run
    from straits.model.scenario import Scenario

    sc = args.model_arg(sc, Scenario, "scenario", again=False)
    rules = args.rules_arg(rules)
    if not isinstance(plan, dict):
        raise InputError(
            f"got {type(plan).__name__}, not a plan", path="PLAN", expected="a plan's JSON object"
        )
    to = args.texts_arg(to, "--to")
    asked_all = any(t.strip().lower() == "all" for t in to)
    targets = export_targets(to)
    check_image(image)
    runs = [run] if isinstance(run, str) else list(run or ())
    inp = ex.export_input(
        sc,
        plan,
        rules,
        plan_id=plan_id,
        commands=parse_run(runs, sc),
        image=image or ex.DEFAULT_IMAGE,
    )
    if not inp.jobs:
        raise InputError(
            "the plan places no stage: nothing to export",
            path="PLAN",
            expected="a plan with at least one placed stage (see `straits plan`)",
        )
    results = ex.render(inp, targets, ordered=ordered)
    empty = [r for r in results if r.jobs == 0]
    if empty and (not asked_all or len(empty) == len(results)):
        # a target whose mapped sites got stages it cannot run (a TPU count no slice has):
        # its notes say why, where "no site is mapped" would send the user to the wrong field
        refused = [r for r in empty if any(_mapped(j.planned.site, r.target) for j in inp.jobs)]
        if refused:
            raise InputError(
                "no stage of the plan could be exported to "
                + "; ".join(f"{r.target}: {' | '.join(r.notes)}" for r in refused),
                path="PLAN",
                expected="stages the target can run (each note names the field that decided)",
            )
        sites = sorted({j.planned.site.id for j in inp.jobs})
        fields = "; ".join(f"{r.target}: {TARGET_FIELDS[r.target]}" for r in empty)
        raise InputError(
            f"no site of the plan is mapped to {', '.join(r.target for r in empty)}"
            f" (sites {', '.join(sites)})",
            path="targets",
            expected=f"`targets` in the scenario's site entries: {fields} (docs/exports.md)",
        )
    files = {k: v for r in results for k, v in r.files.items()}
    return inp, results, files


def _mapped(site: Any, target: str) -> bool:
    """Whether ``site`` has the mapping ``target`` needs (Karmada's is Kubernetes')."""
    t = site.targets
    return t is not None and getattr(t, "kubernetes" if target == "karmada" else target) is not None


def export_summary(plan_id: str, out: str, inp: Any, results: list[Any]) -> dict[str, Any]:
    """The ``straits export --json`` answer."""
    return {
        "plan_id": plan_id,
        "out": out,
        "targets": {
            r.target: {"jobs": r.jobs, "files": sorted(r.files), "notes": r.notes} for r in results
        },
        "jobs": [
            {
                "workload": j.workload,
                "stage": j.stage,
                "chips": j.chips,
                "planned": j.planned.label,
                "alternatives": [c.label for c in j.alternatives],
            }
            for j in inp.jobs
        ],
        "commands": {f"{j.workload}/{j.stage}": j.command_source for j in inp.jobs},
        "unplaced": list(inp.unplaced),
    }
