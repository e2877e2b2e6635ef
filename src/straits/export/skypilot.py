"""SkyPilot: training stages as a managed-job pipeline per workload, serving stages as SkyServe
services, every task's resources limited to the options the rules allow.

Resources. The planned (infra, accelerator) comes first and the lawful alternatives at the same
chip count follow, so SkyPilot's own failover (a preempted or full region, a managed job's
recovery relaunch, a new service replica) never leaves the lawful set: ``any_of`` (the default,
as SkyPilot documents it: its optimizer picks among the candidates) or ``ordered`` (tried in
this order, so the planned option wins while it has capacity).

Order. The training stages of a workload, in the order the plan starts them (a predecessor
first), form one multi-document YAML (a name document, then one task per stage): ``sky jobs
launch`` runs such a pipeline one task after another, each only once the one before has
succeeded. ``launch.sh`` launches each workload's pipelines and services in that order, each
pipeline waited for. A training stage the plan starts after a service (brought up first) or
after a stage no task here runs (its site has no SkyPilot mapping) starts another pipeline;
``launch.sh`` starts one of the latter only once ``STRAITS_COMPLETED`` lists that stage
(``apply.sh`` does the same). A stage started later than the plan says because a pipeline
runs one task at a time (parallel branches) gets a note.

Start. ``launch.sh`` launches a pipeline or brings up a service no earlier than the planned start
of its (first) stage, as Slurm's ``--begin`` and ``apply.sh`` wait: a stage the plan holds for
bought chips, a capacity window or a rule's date does not start when its predecessors end
(``STRAITS_START_NOW`` starts one, or every one, without waiting). A task of a pipeline starts
as the one before it succeeds, so a training stage the plan starts later than that one's
planned end (beyond moving its data, ``transfer_hours``, and the planner's rounding,
:data:`HOLD_SLACK`) starts another pipeline, launched at its planned start; one that stays
waits for its planned start in its ``run`` (the task before may end early:
:mod:`straits.export.skypilot_order`).

Every task names its plan and stage in ``envs``, which the admission hook
(``POST /v1/skypilot/policy``) reads to re-check each launch; its ``run`` first sets the
rendezvous every target gives (MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK, NPROC_PER_NODE)
from SkyPilot's SKYPILOT_NODE_IPS, SKYPILOT_NODE_RANK and SKYPILOT_NUM_GPUS_PER_NODE. Datasets
with a ``uri`` are mounted read-only at ``/data/<dataset>``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from straits.export.base import (
    MASTER_PORT,
    READINESS_PATH,
    SERVE_PORT,
    Choice,
    ExportInput,
    ExportResult,
    StageJob,
    dump_yaml,
    gate,
    replica_chips,
    wait_start,
)
from straits.export.names import LABEL_MAX, distinct
from straits.export.skypilot_order import (
    HOLD_SLACK as HOLD_SLACK,
)
from straits.export.skypilot_order import (
    START_NOW_ENV,
    follower_wait,
    held,
    launch_script,
    serialized,
    unless_done,
)
from straits.export.tpu import is_tpu, slice_for
from straits.plan.options import NODE

#: catalog chip id -> the accelerator name SkyPilot's catalogs use
ACCELERATORS = {
    "A100-SXM-80GB": "A100-80GB",
    "A100-SXM-40GB": "A100",
    "A800-SXM": "A800",
    "H100-SXM": "H100",
    "H800-SXM": "H800",
    "H200-SXM": "H200",
    "H20": "H20",
    "B200": "B200",
    "MI300X": "MI300X",
    "Ascend-910B": "Ascend910B",
    "Ascend-910C": "Ascend910C",
}
# TPU chips are not here: SkyPilot asks for a TPU as one slice named by its size
# (straits.export.tpu), not as chips per node
#: URI schemes SkyPilot mounts from object storage
MOUNTABLE = ("s3://", "gs://", "r2://", "cos://", "oci://", "https://")
ENV_PLAN, ENV_WORKLOAD, ENV_STAGE = "STRAITS_PLAN_ID", "STRAITS_WORKLOAD", "STRAITS_STAGE"
#: how long a replica may take to load its model before SkyServe's probe counts
STARTUP_SECONDS = 1800
RENDEZVOUS = (
    'export MASTER_ADDR="$(echo "$SKYPILOT_NODE_IPS" | head -n 1)" '
    f"MASTER_PORT={MASTER_PORT} "
    'NNODES="$SKYPILOT_NUM_NODES" NODE_RANK="$SKYPILOT_NODE_RANK" '
    'NPROC_PER_NODE="$SKYPILOT_NUM_GPUS_PER_NODE"\n'
)


def accelerator(choice: Choice) -> str:
    """The name SkyPilot knows a GPU pool's chip by (a TPU's is its slice: :func:`tpu_slice`)."""
    t = choice.pool.targets
    if t is not None and t.skypilot_accelerator:
        return t.skypilot_accelerator
    return ACCELERATORS.get(choice.pool.chip, choice.pool.chip)


def tpu_slice(choice: Choice, chips: int) -> tuple[str | None, str]:
    """The slice of ``chips`` chips of a TPU pool, asked for once on one node (None and why
    not when Cloud TPU has no slice of that size, or the pool's ``skypilot_accelerator`` names
    another)."""
    t = choice.pool.targets
    return slice_for(choice.pool.chip, chips, t.skypilot_accelerator if t else None)


def _infra(choice: Choice) -> str | None:
    """The site's ``cloud/region[/zone]``, or None: no mapping, or one without a region (in
    which SkyPilot picks any region of the cloud, any kubeconfig context: outside the site, and
    the admission hook knows no site by it)."""
    sky = choice.site.targets.skypilot if choice.site.targets else None
    return sky.infra if sky and sky.region else None


def _unmapped(choice: Choice) -> str:
    """What a note says of a choice :func:`_infra` gives no infra for."""
    sky = choice.site.targets.skypilot if choice.site.targets else None
    if sky is None:
        return "has no sites[].targets.skypilot mapping"
    return (
        f"has no region in sites[].targets.skypilot (cloud {sky.cloud} alone lets SkyPilot "
        "pick any region, outside the site)"
    )


#: why a TPU choice SkyPilot would reach through Kubernetes is not exported (atk93)
ON_KUBERNETES = (
    "a Cloud TPU slice is asked of SkyPilot on GCP only (through Kubernetes, GKE podslices go "
    "by other names, which are not exported)"
)


def _on_kubernetes(choice: Choice) -> bool:
    """Whether SkyPilot reaches ``choice``'s site through Kubernetes (its ``cloud``)."""
    sky = choice.site.targets.skypilot if choice.site.targets else None
    return sky is not None and sky.on_kubernetes


def _field(inp: ExportInput, job: StageJob, c: Choice, override: bool) -> str:
    """The field that decides a TPU choice's slice: the pool's ``skypilot_accelerator`` when
    set, else the planned chips of the stage's assignment."""
    if override:
        i = next(i for i, s in enumerate(inp.scenario.sites) if s.id == c.site.id)
        j = next(j for j, p in enumerate(c.site.pools) if p.chip == c.pool.chip)
        return f"sites[{i}].pools[{j}].targets.skypilot_accelerator"
    i = next(
        i
        for i, a in enumerate(inp.plan.get("assignments", ()))
        if (a["workload"], a["stage"]) == (job.workload, job.stage)
    )
    return f"assignments[{i}].chips"


class SkyPilotExporter:
    name = "skypilot"
    description = (
        "managed-job pipeline per workload and SkyServe service per serving stage "
        "(resources limited to lawful options), launch.sh in order"
    )

    def __init__(self, ordered: bool = False) -> None:
        self.ordered = ordered

    def resources(
        self, inp: ExportInput, job: StageJob, per_node: int, notes: list[str], nodes: int = 1
    ) -> list[dict[str, Any]]:
        out = []
        stage = inp.scenario.workload(job.workload).stage(job.stage)
        context = stage.prompt_tokens + stage.output_tokens
        for c in job.choices:
            infra = _infra(c)
            if infra is None:
                notes.append(
                    f"{job.workload}/{job.stage}: {c.label} {_unmapped(c)}; left out of its "
                    "resources"
                )
                continue
            n, need = per_node, nodes  # chips per node, nodes this choice needs
            r = job.replica_chips if job.serving else job.chips
            if job.serving and c is not job.planned:
                # a replica of this chip's size, holding the KV cache of one request as the
                # planned replica does: without the context a 1M-token stage's replica was
                # asked as half the chips it needs. Never smaller than the planned one: the
                # service has one `replicas` for every candidate, so 2-chip H200 replicas
                # took 128 chips where the plan, the rules and the other targets ask 256
                r = max(
                    job.replica_chips,
                    replica_chips(inp.scenario, job.workload, c.pool.chip, context=context),
                )
                n, need = min(NODE, r), -(-r // NODE)
            elif not job.serving:
                need, n = job.layout(NODE)
            if is_tpu(c.pool.chip) and _on_kubernetes(c):
                notes.append(
                    f"{job.workload}/{job.stage}: {c.label}: {ON_KUBERNETES}; left out of its "
                    "resources"
                )
                continue
            if is_tpu(c.pool.chip):
                # one slice of the chips (a replica's, serving) on one node: SkyPilot starts
                # every host of a multi-host slice itself; on a task of more nodes it would
                # launch a slice per node
                acc, why = tpu_slice(c, r)
                if acc is None:
                    notes.append(
                        f"{job.workload}/{job.stage}: {c.label}: {why}; left out of its resources"
                    )
                    continue
                entry, fits = f"{acc}:1", nodes == 1
            else:
                entry = f"{accelerator(c)}:{n}"
                # a replica may take fewer nodes than the task has; a training stage all of them
                fits = need <= nodes if job.serving else need == nodes
            if not fits:
                if is_tpu(c.pool.chip):
                    why = f"is one TPU slice on one node, and the task has {nodes} nodes"
                elif job.serving:
                    why = f"needs replicas of {r} chips, more than the task's {nodes} node(s)"
                else:
                    why = f"needs {need} node(s) of {n} chips, the task is one TPU slice"
                notes.append(
                    f"{job.workload}/{job.stage}: {c.label} {why}; left out of its resources"
                )
                continue
            out.append({"infra": infra, "accelerators": entry})
        return out

    def task(self, inp: ExportInput, job: StageJob, notes: list[str]) -> dict[str, Any] | None:
        if is_tpu(job.planned.pool.chip) and _on_kubernetes(job.planned):
            notes.append(
                f"{job.workload}/{job.stage}: {job.planned.label}: {ON_KUBERNETES}; no task written"
            )
            return None
        if is_tpu(job.planned.pool.chip):
            # the planned chips (a replica's, serving) as one slice on one node, or no task:
            # a count no slice has is a task SkyPilot cannot launch
            chips = job.replica_chips if job.serving else job.chips
            acc, why = tpu_slice(job.planned, chips)
            if acc is None:
                t = job.planned.pool.targets
                named = bool(t and t.skypilot_accelerator)
                notes.append(
                    f"{job.workload}/{job.stage}: {_field(inp, job, job.planned, named)}: {why}; "
                    "no task written" + ("" if named else " (plan the stage at a slice's chips)")
                )
                return None
            nodes, per_node = 1, chips
        else:
            if job.serving:
                nodes = max(1, -(-job.replica_chips // NODE))
                per_node = min(NODE, job.replica_chips)
            else:
                nodes, per_node = job.layout(NODE)
            if (note := job.count_note(NODE)) is not None:
                notes.append(note)
        options = self.resources(inp, job, per_node, notes, nodes)
        if not options or options[0]["infra"] != _infra(job.planned):
            notes.append(
                f"{job.workload}/{job.stage}: the planned site {job.planned.site.id} "
                + (
                    _unmapped(job.planned)
                    if _infra(job.planned) is None
                    else "has no SkyPilot mapping"
                )
                + "; no task written"
            )
            return None
        mounts = {
            f"/data/{d.id}": d.uri
            for d in job.datasets
            if d.uri is not None and d.uri.startswith(MOUNTABLE)
        }
        for d in job.datasets:
            if f"/data/{d.id}" not in mounts:
                notes.append(
                    f"{job.workload}/{job.stage}: dataset {d.id} stays at "
                    f"{d.located_at} (no object-storage uri); mount it on the cluster"
                )
        if job.command_source == "none":
            notes.append(
                f"{job.workload}/{job.stage}: no command given; the task fails saying so (--run)"
            )
        task: dict[str, Any] = {
            "name": job.name,
            "num_nodes": nodes,
            "resources": {"ordered" if self.ordered else "any_of": options},
            "envs": {
                **job.env(inp.plan_id),
                "STRAITS_START": job.placement.raw["start"],
                "STRAITS_END": job.placement.raw["end"],
            },
            "run": RENDEZVOUS + job.command,
        }
        if job.serving:
            task["envs"]["STRAITS_REPLICA_CHIPS"] = str(job.replica_chips)
            task["envs"]["STRAITS_SERVE_PORT"] = str(SERVE_PORT)
            task["service"] = {
                "readiness_probe": {
                    "path": READINESS_PATH,
                    "initial_delay_seconds": STARTUP_SECONDS,
                },
                "replicas": job.replicas(),
                "ports": SERVE_PORT,
            }
        if mounts:
            task["file_mounts"] = mounts
        return task

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        # per workload, what launch.sh starts, in order: pipelines (lists of training tasks)
        # and services; every stage comes after the items its predecessors are in
        items: dict[str, list[_Item]] = {}
        paths: dict[str, str] = {}
        for job in _dependency_order(inp):
            task = self.task(inp, job, res.notes)
            if task is None:
                continue
            res.jobs += 1
            mine = items.setdefault(job.workload, [])
            if job.serving:
                path = f"skypilot/{job.name}.service.yaml"
                head = (
                    f"# Straits plan {inp.plan_id}: {job.workload}/{job.stage} on "
                    f"{job.planned.label}, {job.replicas()} replica(s) of "
                    f"{job.replica_chips} chips; `sky serve up` it"
                    + (f" after {', '.join(job.after)}" if job.after else "")
                    + " (launch.sh does)\n"
                )
                res.files[path] = head + dump_yaml(task)
                paths[f"{job.workload}/{job.stage}"] = path
                mine.append(_Item([(job, task)], serving=True))
                continue
            # a pipeline runs its tasks one after another: a task joins the last pipeline
            # when everything it runs after is in that pipeline or before it; a task after a
            # stage no task here runs (its site has no SkyPilot mapping) starts a new
            # pipeline, which launch.sh launches only once that stage is listed as completed;
            # so does a task the plan holds after the one before it (held), and one after a
            # service the plan starts before it: in the pipeline before that service it held
            # the service back until the whole pipeline had ended (launch.sh brings a service
            # up once the pipeline before it is done), days after the service's planned start
            last = next((i for i in range(len(mine) - 1, -1, -1) if not mine[i].serving), -1)
            where = {j.stage: i for i, item in enumerate(mine) for j, _ in item.tasks}
            joins = last == len(mine) - 1 >= 0 and all(
                a in where and (where[a] < last or not mine[where[a]].serving) for a in job.after
            )
            if joins and (why := held(job, mine[last].tasks[-1][0])) is not None:
                res.notes.append(why)
                joins = False
            if joins:
                # it starts as the task before succeeds, however early: it waits for its own
                # planned start first (Slurm's --begin, apply.sh's wait); or late, when the
                # plan runs the two at once (parallel branches): a note says so
                if (late := serialized(job, mine[last].tasks[-1][0])) is not None:
                    res.notes.append(late)
                task["run"] = follower_wait(job) + task["run"]
                mine[last].tasks.append((job, task))
            else:
                mine.append(_Item([(job, task)], serving=False))
        launch: dict[str, list[str]] = {}
        labels = _pipeline_labels(items)
        for workload, mine in items.items():
            n = 0
            ended: StageJob | None = None  # the last task, ending last, of the pipelines so far
            for i, item in enumerate(mine):
                first = item.tasks[0][0]
                if i and ended is not None and (late := serialized(first, ended, _HOW)):
                    res.notes.append(late)
                if not item.serving:
                    end = item.tasks[-1][0]
                    if ended is None or end.placement.end > ended.placement.end:
                        ended = end
                before = {j.stage: x.serving for x in mine[:i] for j, _ in x.tasks}
                outside = [a for a in first.after if a not in before]
                served = [a for a in first.after if before.get(a)]
                if outside:
                    res.notes.append(
                        f"{first.workload}/{first.stage}: after {', '.join(outside)}, which "
                        "no SkyPilot task here runs; launch.sh starts it once "
                        f"STRAITS_COMPLETED lists {_listed(first, outside)}"
                    )
                if served:
                    res.notes.append(
                        f"{first.workload}/{first.stage}: after the service(s) "
                        f"{', '.join(served)}; launch.sh starts it once they are up (sky serve "
                        "up), not once they are ready or their serving period is over"
                    )
                if item.serving:
                    path = paths[f"{first.workload}/{first.stage}"]
                    cmd = (
                        f"sky serve up --yes --service-name {shlex.quote(first.name)} "
                        f"{path.split('/', 1)[1]}"
                    )
                else:
                    name = labels[(workload, n)]
                    n += 1
                    path = f"skypilot/{name}.pipeline.yaml"
                    res.files[path] = _pipeline(inp, workload, name, item, outside)
                    cmd = (
                        f"sky jobs launch --yes --name {shlex.quote(name)} {path.split('/', 1)[1]} "
                        + START_NOW_ENV
                    )
                jobs = [j for j, _ in item.tasks]
                gates = [gate(first, a) for a in outside]
                launch.setdefault(workload, []).extend(
                    unless_done(jobs, gates, cmd, wait_start(first))
                )
        if launch:
            res.files["skypilot/launch.sh"] = launch_script(inp.plan_id, launch)
        return res


#: how launch.sh starts an item after a pipeline (:func:`serialized`)
_HOW = "launch.sh starts it (sky jobs launch waits for the pipeline before it)"


@dataclass
class _Item:
    """What launch.sh starts at once: a pipeline of training tasks, or one service."""

    tasks: list[tuple[StageJob, dict[str, Any]]]
    serving: bool


def _pipeline(inp: ExportInput, workload: str, name: str, item: _Item, outside: list[str]) -> str:
    lines = [
        f"# Straits plan {inp.plan_id}: the training stages of {workload} as one "
        "managed-job pipeline (`sky jobs launch`): each task starts once the one "
        "before has succeeded.",
        *(
            f"# {j.stage} on {j.planned.label}, {j.chips} chips, {j.hours:.1f} h{inp.at_risk}; "
            f"{len(j.alternatives)} lawful alternative(s)"
            for j, _ in item.tasks
        ),
    ]
    if outside:
        lines.append(
            f"# launch.sh launches it once {', '.join(outside)} (not run here) "
            "is listed in STRAITS_COMPLETED"
        )
    return "\n".join(lines) + "\n" + dump_yaml({"name": name}, *(t for _, t in item.tasks))


def _listed(job: StageJob, stages: list[str]) -> str:
    return ",".join(f"{job.workload}/{a}" for a in stages)


def _pipeline_labels(items: dict[str, list[_Item]]) -> dict[tuple[str, int], str]:
    """A name per pipeline, distinct: the workload's for its first, ``<workload>-<n>`` for
    the n-th (a workload named so too makes both hashed)."""
    counts = {w: sum(1 for x in mine if not x.serving) for w, mine in items.items()}
    keys = {(w, i): w if i == 0 else f"{w}-{i + 1}" for w, n in counts.items() for i in range(n)}
    return distinct(keys, LABEL_MAX, seeds={k: f"{k[0]}\0{k[1]}" for k in keys})


def _dependency_order(inp: ExportInput) -> list[StageJob]:
    """The jobs, each workload's in the order the plan starts them, a predecessor first
    (:func:`~straits.export.base.export_input`'s order). In the topological order of the
    stages' declaration, a stage of a parallel branch declared after a held one joined that
    one's pipeline: launched with it, days after its own planned start, without a word."""
    out: dict[str, list[StageJob]] = {}
    for j in inp.jobs:
        out.setdefault(j.workload, []).append(j)
    return [j for mine in out.values() for j in mine]
