"""What every exporter gets (one job per placed stage, with its lawful alternatives) and the
protocol each target implements.

Data flow: a recorded plan (the JSON contract, from the ledger or a fresh ``make_plan``) and its
scenario become an :class:`ExportInput`; an :class:`Exporter` turns that into files; the CLI
writes them all at once (:func:`straits.export.bundle.write_bundle`), or none.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from straits.catalog import catalog
from straits.errors import InputError
from straits.estimate.serving import replica_size
from straits.export.commands import Commands
from straits.export.names import dns_name as dns_name  # re-exported for older callers
from straits.export.names import image_reference, unique_names
from straits.export.names import label_value as label_value
from straits.export.names import unique_labels as unique_labels
from straits.export.planned import refuse_unplannable
from straits.model.scenario import Dataset, Pool, Scenario, Site, Workload
from straits.plan.options import NODE
from straits.plan.recheck import Placement, PlanContext
from straits.rules.engine import RuleSet

#: the port torchrun's rendezvous (MASTER_PORT) listens on, on the first node
MASTER_PORT = 29500
#: the port a serving stage's command listens on, and the path that answers 200 when it is
#: ready (vLLM's OpenAI server and SGLang's both serve /health; vLLM's default port)
SERVE_PORT = 8000
READINESS_PATH = "/health"


@dataclass(frozen=True)
class Choice:
    """A (site, pool) a stage may run on."""

    site: Site
    pool: Pool

    @property
    def label(self) -> str:
        return f"{self.site.id}/{self.pool.chip}"


@dataclass(frozen=True)
class StageJob:
    workload: str
    stage: str
    tenant: str
    kind: str
    placement: Placement
    planned: Choice
    alternatives: tuple[Choice, ...]
    """Lawful options at the same chip count, cheapest first, without the planned one."""
    after: tuple[str, ...]
    """Predecessor stages of the same workload that the plan places."""
    datasets: tuple[Dataset, ...]
    name: str = ""
    """The stage's name, unique within the plan: ``<workload>-<stage>`` as an RFC 1035 label
    (a hash suffix when that had to change or is taken; :mod:`straits.export.names`)."""
    command: str = ""
    """The shell command the stage runs (see :mod:`straits.export.commands`)."""
    command_source: str = "none"
    """Where the command came from: ``--run KEY=``, ``scenario``, ``--run`` or ``none``."""
    replica_chips: int = 0
    """Serving: chips of one model replica (the fewest that hold the weights and a KV cache,
    rounded up to a power of two: tensor parallelism); 0 for training."""

    @property
    def serving(self) -> bool:
        return self.kind == "serve"

    def layout(self, per_node_max: int = NODE) -> tuple[int, int]:
        """(nodes, chips per node) of a training stage on nodes of ``per_node_max`` chips."""
        per_node = max(1, min(per_node_max, self.chips))
        return max(1, -(-self.chips // per_node)), per_node

    def rounding_note(self, per_node_max: int = NODE) -> str | None:
        """What the export says when :meth:`layout` asks for more chips than the plan placed
        (9 chips on nodes of 8 are 2 whole nodes: 16 chips, which the plan did not price)."""
        nodes, per_node = self.layout(per_node_max)
        if nodes * per_node == self.chips:
            return None
        return (
            f"{self.workload}/{self.stage}: {self.chips} chips rounded up to "
            f"{nodes} nodes of {per_node} ({nodes * per_node} chips)"
        )

    def replicas(self) -> int:
        """Serving: model replicas in the planned chips."""
        return max(1, self.chips // max(1, self.replica_chips))

    def count_note(self, per_node_max: int = NODE) -> str | None:
        """What the export says when it asks for other chips than the plan placed: training
        rounded up to whole nodes (:meth:`rounding_note`), serving rounded down to whole
        replicas (6 chips of 4-chip replicas are one replica: 4 chips, 2 left idle)."""
        if not self.serving:
            return self.rounding_note(per_node_max)
        used = self.replicas() * self.replica_chips
        if used == self.chips:
            return None
        return (
            f"{self.workload}/{self.stage}: {self.chips} chips planned, exported as "
            f"{self.replicas()} replica(s) of {self.replica_chips} ({used} chips; "
            f"{self.chips - used} planned chips hold no whole replica)"
        )

    def env(self, plan_id: str) -> dict[str, str]:
        """The variables every target gives a stage's command: which plan, workload, stage and
        site it is, the command, and the parallel layout the plan priced
        (:func:`layout_env`), so a command can run the layout it was planned at."""
        return {
            "STRAITS_PLAN_ID": plan_id,
            "STRAITS_WORKLOAD": self.workload,
            "STRAITS_STAGE": self.stage,
            "STRAITS_STAGE_KIND": self.kind,
            "STRAITS_SITE": self.planned.site.id,
            "STRAITS_COMMAND": self.command,
            **layout_env(self.placement.raw.get("layout")),
        }

    @property
    def chips(self) -> int:
        return self.placement.chips

    @property
    def hours(self) -> float:
        return (self.placement.end - self.placement.start).total_seconds() / 3600

    @property
    def choices(self) -> tuple[Choice, ...]:
        return (self.planned, *self.alternatives)

    @property
    def begin(self) -> int:
        """The planned start, in seconds since 1970 UTC: no target starts the stage before it
        (Slurm's ``--begin``, the wait of ``apply.sh`` and ``launch.sh``)."""
        return epoch(self.placement.start)

    @property
    def begin_utc(self) -> str:
        """:attr:`begin` as the scripts print it (ISO 8601, UTC, to the second)."""
        return dt.datetime.fromtimestamp(self.begin, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(t: dt.datetime) -> int:
    """``t`` in seconds since 1970 UTC (a naive time is UTC, as the plan writes it)."""
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())


@dataclass(frozen=True)
class ExportInput:
    plan_id: str
    scenario: Scenario
    plan: Mapping[str, Any]
    jobs: tuple[StageJob, ...]
    unplaced: tuple[str, ...]
    run: str | None
    """The plain ``--run``: the command of stages without one of their own."""
    image: str
    """The container image of Kubernetes jobs."""

    def job(self, workload: str, stage: str) -> StageJob:
        return next(j for j in self.jobs if (j.workload, j.stage) == (workload, stage))

    @property
    def at_risk(self) -> str:
        """What a training stage's planned hours are at a p90 plan (risk51), else ""."""
        return " (p90: the estimate's high end)" if self.scenario.risk == "p90" else ""


@dataclass
class ExportResult:
    target: str
    files: dict[str, str] = field(default_factory=dict)
    """relative path -> text"""
    notes: list[str] = field(default_factory=list)
    """What was left out and why (a site without a mapping for this target, ...)."""
    jobs: int = 0


class Exporter(Protocol):
    name: str
    """The ``--to`` value."""
    description: str

    def render(self, inp: ExportInput) -> ExportResult: ...


#: the variable an operator lists completed stages in for ``apply.sh`` and ``launch.sh``
COMPLETED_VAR = "STRAITS_COMPLETED"
#: bash functions of ``apply.sh`` and ``launch.sh`` for stages run outside the export: a stage
#: whose predecessor the script does not run starts only once the operator lists that
#: predecessor in STRAITS_COMPLETED (as Slurm holds such a stage until released); a stage
#: listed there is not started again
COMPLETED_HELPERS = (
    f"# {COMPLETED_VAR}: the stages (WORKLOAD/STAGE, comma-separated) that have completed: a",
    "# stage listed is not started again, and a stage whose predecessor this script does not",
    "# run (another target, another export) starts only once that predecessor is listed",
    "listed() {  # STAGE: 0 when STAGE is in STRAITS_COMPLETED",
    '  case ",${STRAITS_COMPLETED:-}," in *",$1,"*) return 0 ;; esac',
    "  return 1",
    "}",
    "after_outside() {  # STAGE PRED: 0 once PRED (run elsewhere) or STAGE itself is listed",
    '  { listed "$1" || listed "$2"; } && return 0',
    '  echo "$1 waits for $2, which this script does not run: once $2 has completed, run it'
    ' again with STRAITS_COMPLETED=$2 (and the stages already done)" >&2',
    "  return 1",
    "}",
)


#: the variable an operator names stages in that ``apply.sh`` and ``launch.sh`` start without
#: waiting for their planned start: 1 for every stage, or WORKLOAD/STAGE, comma-separated
START_NOW_VAR = "STRAITS_START_NOW"
#: the longest ``sleep`` of that wait: the clock is read again after each, so a machine that
#: was suspended (or a clock set anew) does not stretch the wait, and a script stopped while it
#: waits leaves no ``sleep`` behind for long
WAIT_CHUNK_S = 60
#: bash functions of ``apply.sh`` and ``launch.sh``: a stage is applied or launched no earlier
#: than its planned start (Slurm's ``--begin``): one the plan holds for chips still to arrive, a
#: capacity window or a rule's date does not start as soon as its predecessors are done
START_HELPERS = (
    f"# {START_NOW_VAR}: the stages (WORKLOAD/STAGE, comma-separated; 1: every stage) started",
    "# without waiting for their planned start (chips that arrived early, a window opened",
    "# early): a stage still waits for its predecessors and for STRAITS_COMPLETED",
    "wait_start() {  # STAGE BEGIN WHEN: return once BEGIN (seconds since 1970 UTC: WHEN) has come",
    '  local now left said=""',
    "  while :; do",
    '    now=$(date +%s) || now=""',
    '    case "$now" in',
    "      ''|*[!0-9]*)",
    '        echo "$1: cannot read the clock (date +%s): not started" >&2; return 1 ;;',
    "    esac",
    "    left=$(( $2 - now ))",
    '    [ "$left" -gt 0 ] || return 0',
    '    if [ -z "$said" ]; then',
    f'      case ",${{{START_NOW_VAR}:-}}," in',
    '        *,1,*|*",$1,"*)',
    f'          echo "$1: planned to start $3, started now ({START_NOW_VAR})"; return 0 ;;',
    "      esac",
    '      echo "$1 waits until its planned start, $3 (in $left s;'
    f' {START_NOW_VAR}=$1 starts it now)"',
    "      said=1",
    "    fi",
    f'    sleep "$(( left < {WAIT_CHUNK_S} ? left : {WAIT_CHUNK_S} ))" || return 1',
    "  done",
    "}",
)


def start_args(job: StageJob) -> str:
    """``wait_start``'s arguments for ``job``: STAGE BEGIN WHEN."""
    return f"{shlex.quote(job.workload + '/' + job.stage)} {job.begin} {job.begin_utc}"


def wait_start(job: StageJob) -> str:
    """The ``apply.sh`` / ``launch.sh`` call that returns once ``job``'s planned start has
    come (at once when it has passed or the operator names the stage in STRAITS_START_NOW)."""
    return f"wait_start {start_args(job)}"


def gate(job: StageJob, pred: str) -> str:
    """The ``apply.sh`` / ``launch.sh`` line that stops ``job`` until ``pred`` (of the same
    workload, run outside the script) is listed as completed."""
    return (
        f"after_outside {shlex.quote(job.workload + '/' + job.stage)} "
        f"{shlex.quote(job.workload + '/' + pred)}"
    )


DEFAULT_RUN = 'echo "straits: no command was given (straits export --run CMD)" >&2; exit 1'
"""Kept for callers of the old API; stages without a command now get
:func:`straits.export.commands.missing`, which names the stage."""
DEFAULT_IMAGE = "nvcr.io/nvidia/pytorch:25.01-py3"


#: libyaml's emitter when PyYAML was built with it (about 10x faster), else the pure-Python one
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _PlainDumper(_DUMPER):  # type: ignore[misc]
    """No anchors and aliases: an object shared between two places is written out twice,
    as a person would write it (and as kubectl and sky show it)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


#: plain scalars that Kubernetes' YAML reader (sigs.k8s.io/yaml: go-yaml v2, YAML 1.1) takes
#: for a boolean, a null or a number, beyond what PyYAML quotes itself: a workload ``y``, a
#: stage ``1e10`` or ``0o17`` were written bare, and kubectl refused the manifest ("cannot
#: unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string")
_GO_WORDS = frozenset(
    {
        v
        for w in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
        for v in (w, w.capitalize(), w.upper())
    }
    | {f"{sign}.{v}" for sign in ("", "-", "+") for v in ("inf", "Inf", "INF")}
    | {"~", ".nan", ".NaN", ".NAN"}
)
_GO_NUMBER = re.compile(
    r"[-+]?(?:0[bB][01]+|0[oO]?[0-7]+|0[xX][0-9a-fA-F]+"
    r"|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
)


def _go_yaml_non_string(text: str) -> bool:
    """Whether go-yaml v2 reads ``text`` unquoted as something other than a string (it drops
    every ``_`` before reading a number)."""
    return text in _GO_WORDS or bool(_GO_NUMBER.fullmatch(text.replace("_", "")))


def _str(dumper: Any, data: str) -> Any:
    """Multi-line strings (commands) as literal blocks, as a person writes them; a string
    Kubernetes would read as a boolean or a number quoted."""
    style = "|" if "\n" in data else "'" if _go_yaml_non_string(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_PlainDumper.add_representer(str, _str)


def dump_yaml(*docs: Any) -> str:
    """YAML documents in the order given, keys in insertion order."""
    return str(yaml.dump_all(docs, Dumper=_PlainDumper, sort_keys=False, width=100))


def export_input(
    sc: Scenario,
    plan: Mapping[str, Any],
    rules: RuleSet,
    *,
    plan_id: str,
    run: str | None = None,
    image: str = DEFAULT_IMAGE,
    commands: Commands | None = None,
) -> ExportInput:
    """Jobs of ``plan`` with the lawful alternatives of each, as of the plan's date and regime
    (the law the plan was made under). ``commands`` (from ``--run``) says what each stage runs;
    without it ``run`` is the command of every stage without one in the scenario."""
    if not _PLAN_ID.fullmatch(plan_id):
        raise InputError(
            f"plan id {plan_id[:80]!r} cannot name exported files and jobs",
            path="plan_id",
            expected="letters, digits, '.', '_', ':' or '-' (at most 128)",
        )
    if not image_reference(image):
        raise InputError(
            f"{image[:80]!r} is not a container image reference",
            path="image",
            expected="[REGISTRY/]NAME[:TAG][@DIGEST] (e.g. nvcr.io/nvidia/pytorch:25.01-py3)",
        )
    if commands is None:
        commands = Commands(None if run == DEFAULT_RUN else run)
    ctx = PlanContext(sc, dict(plan), rules, date=_date(plan), regime=str(plan["regime"]))
    refuse_unplannable(ctx)  # the planned option is what runs: it must be one the rules allow
    jobs = []
    names = unique_names(list(ctx.placements))
    depth = {(w.id, s): d for w in sc.workloads for s, d in _depths(w).items()}
    # by start, a predecessor first when both start at once (one that lasts no time)
    order = sorted(
        ctx.placements.values(), key=lambda p: (p.start, p.workload, depth[p.key], p.stage)
    )
    for p in order:
        w = sc.workload(p.workload)
        stage = w.stage(p.stage)
        site = sc.site(p.site)
        pool = next(x for x in site.pools if x.chip == p.chip)
        alts = tuple(
            Choice(o.site, o.pool)
            for o in ctx.alternatives(p)
            if (o.site.id, o.chip.id) != (p.site, p.chip)
        )
        command, source = commands.resolve(w.id, stage)
        context = stage.prompt_tokens + stage.output_tokens
        replica = (
            replica_chips(sc, w.id, p.chip, p.chips, context=context)
            if stage.kind == "serve"
            else 0
        )
        jobs.append(
            StageJob(
                workload=w.id,
                stage=stage.id,
                tenant=w.tenant,
                kind=stage.kind,
                placement=p,
                planned=Choice(site, pool),
                alternatives=alts,
                after=tuple(a for a in stage.after if (w.id, a) in ctx.placements),
                datasets=tuple(sc.dataset(d) for d in stage.datasets),
                name=names[p.key],
                command=command,
                command_source=source,
                replica_chips=replica,
            )
        )
    unplaced = tuple(f"{u['workload']}/{u['stage']}" for u in plan.get("unplaced", ()))
    return ExportInput(plan_id, sc, plan, tuple(jobs), unplaced, commands.default, image)


def _depths(w: Workload) -> dict[str, int]:
    """How many stages each stage of ``w`` runs after, on the longest path of predecessors."""
    depth: dict[str, int] = {}
    for t in w.topological_stages():
        depth[t.id] = 1 + max((depth[a] for a in t.after), default=-1)
    return depth


def replica_chips(
    sc: Scenario, workload: str, chip: str, limit: int = 2**31, *, context: int = 0
) -> int:
    """Chips of one serving replica of ``workload``'s model on ``chip`` (at most ``limit``),
    holding the KV cache of one request of ``context`` tokens: the estimator's replica
    (:func:`straits.estimate.serving.replica_size`: the next power of two, a TPU's slice), the
    size its throughput and ``fits`` are for. Whole nodes beyond a node made 18 chips a replica
    of 24 where the plan priced 32: 85 replicas of the 2,048 planned chips took 2,040 of them."""
    size = replica_size(sc.workload(workload).model, catalog().get(chip), context)
    return max(1, min(limit, size))


#: one part of a planned layout (``TP4 PP1 DP512 EP8 ZeRO-3 recompute=selective``)
_LAYOUT_PART = re.compile(r"(TP|PP|DP|EP)([0-9]{1,9})|ZeRO-([0-9])|recompute=([a-z]{1,20})")


def layout_env(layout: object) -> dict[str, str]:
    """The planned parallel layout as variables: ``STRAITS_LAYOUT`` (as the plan writes it)
    and, for the parts it names, ``STRAITS_TP``, ``STRAITS_PP``, ``STRAITS_DP``,
    ``STRAITS_EP``, ``STRAITS_ZERO`` and ``STRAITS_RECOMPUTE``. None when the plan gives no
    layout (a serving stage, an older plan); a part it does not know is left in
    ``STRAITS_LAYOUT`` alone."""
    if not isinstance(layout, str) or not layout.strip():
        return {}
    out = {"STRAITS_LAYOUT": layout}
    for part in layout.split():
        m = _LAYOUT_PART.fullmatch(part)
        if m is None:
            continue
        if m[1]:
            out[f"STRAITS_{m[1]}"] = m[2]
        elif m[3]:
            out["STRAITS_ZERO"] = m[3]
        else:
            out["STRAITS_RECOMPUTE"] = m[4]
    return out


#: what a plan id may hold: it goes into file comments, paths, labels and job environments
_PLAN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _date(plan: Mapping[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str(plan["date"]))
