"""Admission of scheduler launches: is this launch of a planned stage lawful today?

SkyPilot calls its RESTful admin policy before every launch, including each recovery relaunch
of a managed job, with the task YAML it is about to run. A task exported by `straits export`
names its plan and stage in ``envs``; :func:`admit_skypilot` maps every candidate resource of
the task, as SkyPilot's own parser reads it, back to a site and chip of the plan's scenario
and asks the rules, as of the launch date, whether the stage may run there. One unlawful
candidate rejects the launch, with the blocking rule's citation: silently dropping it would
let a user believe the region they asked for was fine.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from straits import safe_yaml
from straits.errors import RequestError
from straits.export.skypilot import ACCELERATORS, ENV_PLAN, ENV_STAGE, ENV_WORKLOAD
from straits.export.tpu import chip_of_slice
from straits.model.scenario import Scenario, Site
from straits.model.types import MAX_CHIPS
from straits.plan.recheck import PlanContext
from straits.rules.decision import Reason
from straits.rules.engine import RuleSet


@dataclass(frozen=True)
class Candidate:
    infra: str
    accelerator: str | None
    count: int | None


@dataclass
class Admission:
    allowed: bool
    message: str
    checked: list[dict[str, Any]] = field(default_factory=list)
    citations: list[Reason] = field(default_factory=list)
    regime: str | None = None
    """the regime the launch was checked under (the plan's), when a plan was found"""

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "message": self.message,
            "checked": self.checked,
            "rules": [r.to_json() for r in self.citations],
        }


def parse_user_request(data: Any) -> dict[str, Any]:
    """SkyPilot's UserRequest body: a JSON object, or (as its client sends it) a JSON string
    holding one, read as strictly as a body (``loading.parse_json``): Python's reader took
    a string of 100,000 ``[`` as a RecursionError, a 500, and let ``NaN`` and a key given
    twice through."""
    if isinstance(data, str):
        from straits.loading import parse_json, refuse_surrogates

        try:
            text = data
            data = parse_json(text, source="request body", error=RequestError)
            refuse_surrogates(data, text, source="request body", error=RequestError)
        except RequestError as exc:
            raise RequestError(
                f"the body is a string but not JSON: {exc.detail}",
                source="request body",
                path=exc.path,
                expected=exc.expected or "SkyPilot's UserRequest",
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("task"), str):
        raise RequestError(
            "no `task` YAML string",
            source="request body",
            expected="SkyPilot's UserRequest: {task, skypilot_config, ...}",
        )
    return data


def task_of(user_request: dict[str, Any]) -> dict[str, Any]:
    """The task YAML, parsed within Straits' limits (depth, aliases, each key once), with the
    shapes admission reads checked: a task whose ``resources`` or ``envs`` Straits cannot read
    is a 400, never a launch checked on what a lenient reading guessed."""
    try:
        task = safe_yaml.load(user_request["task"]) or {}
    except safe_yaml.YamlLimitError as exc:
        raise RequestError(exc.message, source="request body", path="task") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RequestError(
            f"task is not YAML: {first}", source="request body", path="task"
        ) from None
    if not isinstance(task, dict):
        raise RequestError("task YAML is not a mapping", source="request body", path="task")
    envs = task.get("envs")
    if envs is not None and not isinstance(envs, dict):
        raise RequestError("not a mapping", source="request body", path="task.envs")
    res = task.get("resources")
    if res is None or isinstance(res, dict):
        for key in ("any_of", "ordered"):
            alts = (res or {}).get(key)
            if alts is not None and not (
                isinstance(alts, list) and all(isinstance(a, dict | None) for a in alts)
            ):
                raise RequestError(
                    "not a list of resource mappings",
                    source="request body",
                    path=f"task.resources.{key}",
                )
    elif not (isinstance(res, list) and all(isinstance(a, dict | None) for a in res)):
        raise RequestError(
            "not a mapping or a list of them", source="request body", path="task.resources"
        )
    return task


def _sky() -> Any:
    """SkyPilot, imported on first use (it takes seconds), or a clear error without it."""
    try:
        import sky
    except ImportError:
        raise RequestError(
            "SkyPilot is not installed on this Straits server, so it cannot read SkyPilot tasks",
            source="request body",
            expected="pip install 'straits[skypilot]' on the server",
        ) from None
    return sky


def candidates(task: dict[str, Any]) -> list[Candidate]:
    """Every resource choice of the task as SkyPilot itself reads it
    (``sky.Resources.from_yaml_config``, what ``sky.Task`` calls): each ``any_of``/``ordered``
    entry over the base, each accelerator of a set or list of them, any spelling of ``infra``
    (``k8s/...``, ``cloud`` + ``region``). Resources SkyPilot rejects are a 400 with SkyPilot's
    own message. SkyPilot sends the same task again for every recovery relaunch, so readings
    are kept (by the resources' JSON) for the next."""
    res = task.get("resources")
    try:
        key = json.dumps(res, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise RequestError(
            "task.resources is not plain YAML data",
            source="request body",
            path="task.resources",
            expected="SkyPilot resources",
        ) from None
    return list(_read_resources(key))


@functools.lru_cache(maxsize=1024)
def _read_resources(key: str) -> tuple[Candidate, ...]:
    sky = _sky()
    config = json.loads(key)
    try:
        parsed = sky.Resources.from_yaml_config(config) if config else {sky.Resources()}
    except Exception as exc:  # whatever SkyPilot's parser rejects, in its words
        raise RequestError(
            f"SkyPilot cannot read the task's resources: {_first_line(exc)}",
            source="request body",
            path="task.resources",
            expected="resources `sky launch` accepts",
        ) from None
    resources = list(parsed)
    if isinstance(parsed, set):  # any_of: no order of its own
        resources.sort(key=repr)
    out = []
    for r in resources:
        infra = "/".join(str(p).lower() for p in (r.cloud, r.region, r.zone) if p)
        accs = r.accelerators or {None: None}
        for name, n in accs.items():
            out.append(Candidate(infra, name, _count(n) if n is not None else None))
    return tuple(out)


def _count(value: Any) -> int:
    """An accelerator count as SkyPilot read it, as whole chips: finite, above 0, at most
    MAX_CHIPS (a fractional share of a chip still occupies one)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        n = math.nan
    if not (math.isfinite(n) and 0 < n <= MAX_CHIPS):
        raise RequestError(
            f"accelerator count {str(value)[:40]!r} is not a number of chips "
            f"from 1 to {MAX_CHIPS:,}",
            source="request body",
            path="task.resources.accelerators",
        )
    return math.ceil(n)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


@functools.lru_cache(maxsize=4096)
def _canonical(infra: str) -> tuple[str, ...]:
    """``cloud/region/zone`` as SkyPilot spells it (``k8s`` is ``kubernetes``)."""
    _sky()
    from sky.utils import infra_utils

    info = infra_utils.InfraInfo.from_str(infra)
    return tuple(str(p).lower() for p in (info.cloud, info.region, info.zone) if p)


def site_of(sc: Scenario, infra: str) -> Site | None:
    """The site a SkyPilot infra string names (cloud and region must both match; a zone in the
    request narrows the region)."""
    parts = _canonical(infra) if infra else ()
    for s in sc.sites:
        sky = s.targets.skypilot if s.targets else None
        if sky is None:
            continue
        want = _canonical(sky.infra)
        if len(want) >= 2 and parts[: len(want)] == want:
            return s
    return None


def chip_of(site: Site, accelerator: str) -> str | None:
    """The chip of ``site``'s pool that ``accelerator`` names: the chip id, the pool's
    ``skypilot_accelerator``, SkyPilot's name for a GPU, or a Cloud TPU slice of the chip
    (``tpu-v4-128``: the export asks for a TPU as one slice of the planned chips)."""
    tpu = chip_of_slice(accelerator)
    for pool in site.pools:
        if tpu is not None and pool.chip == tpu:
            return pool.chip
        named = pool.targets.skypilot_accelerator if pool.targets else None
        if accelerator.lower() in {
            pool.chip.lower(),
            (named or "").lower(),
            ACCELERATORS.get(pool.chip, "").lower(),
        }:
            return pool.chip
    return None


#: contexts kept by a long-running server (their memoised verdicts serve every relaunch)
MAX_CONTEXTS = 64


def admit_skypilot(
    task: dict[str, Any],
    plan: tuple[Scenario, dict[str, Any]] | None,
    rules: RuleSet,
    *,
    date: dt.date,
    plan_ref: str | None,
    contexts: dict[tuple[str, dt.date], PlanContext] | None = None,
) -> Admission:
    """Decide one launch. ``plan`` is the recorded plan the task names (None: not found);
    ``contexts`` caches one :class:`PlanContext` per plan and date across calls."""
    cands = candidates(task)
    envs = task.get("envs") or {}
    if not any(c.accelerator for c in cands) and not envs.get(ENV_PLAN):
        return Admission(True, "no accelerators and no Straits plan: not a training launch")
    if not envs.get(ENV_PLAN) or not envs.get(ENV_STAGE):
        return Admission(
            False,
            f"an accelerator launch must name its Straits plan and stage "
            f"(envs {ENV_PLAN}, {ENV_WORKLOAD}, {ENV_STAGE}); export it "
            "with `straits export --to skypilot`",
        )
    if plan is None:
        return Admission(
            False,
            f"plan {plan_ref} is not recorded on this Straits server; "
            "export a recorded plan (`straits plan --record`)",
        )
    sc, plan_json = plan
    workload, stage_id = str(envs.get(ENV_WORKLOAD, "")), str(envs[ENV_STAGE])
    try:
        w = sc.workload(workload)
        stage = w.stage(stage_id)
    except KeyError:
        return Admission(False, f"plan {plan_ref} has no stage {workload}/{stage_id}")
    key = (str(plan_ref), date)
    ctx = contexts.get(key) if contexts is not None else None
    if ctx is None or ctx.plan is not plan_json:
        ctx = PlanContext(sc, plan_json, rules, date=date, regime=str(plan_json["regime"]))
        if contexts is not None:
            if len(contexts) >= MAX_CONTEXTS:
                contexts.clear()
            contexts[key] = ctx
    out = Admission(True, "", regime=str(plan_json["regime"]))
    problems = []
    for c in cands:
        site = site_of(sc, c.infra)
        row: dict[str, Any] = {"infra": c.infra, "accelerator": c.accelerator}
        out.checked.append(row)
        if site is None:
            problems.append(
                f"{c.infra or '(any region)'} is not a site of scenario {sc.name} "
                "(a request must pin cloud and region to a mapped site)"
            )
            row["decision"] = "deny"
            continue
        chip = chip_of(site, c.accelerator) if c.accelerator else None
        row["site"], row["chip"] = site.id, chip
        option = ctx.option(w, stage, site.id, chip, False) if chip else None
        if option is None:
            problems.append(f"{c.infra}: {c.accelerator} is not a pool of site {site.id}")
            row["decision"] = "deny"
            continue
        verdict = ctx.verdict(w, stage, option)
        row["decision"] = (
            "allow"
            if verdict.lawful
            else (verdict.blocking.outcome if verdict.blocking else "deny")
        )
        if not verdict.lawful and verdict.blocking is not None:
            b = verdict.blocking
            out.citations.append(b)
            problems.append(
                f"{workload}/{stage_id} on {site.id}/{chip} ({c.infra}) is not "
                f"lawful on {date}: {b.text} [{b.rule}; {b.citation}]"
            )
    if problems:
        out.allowed = False
        out.message = "; ".join(problems)
    else:
        out.message = (
            f"{workload}/{stage_id}: every candidate lawful on {date} under the "
            f"{plan_json['regime']} regime"
        )
    return out
