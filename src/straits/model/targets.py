"""Where a site lives in each scheduler: the mapping that `straits export` writes plans with.

A site entry may carry ``targets`` (how SkyPilot, Kubernetes/Karmada and Slurm name it) and a
pool entry may refine it per chip (the accelerator name SkyPilot knows, the node labels of that
GPU type, the Slurm partition holding it). Every field is optional: a site without a mapping for
a target is left out of that target's export, and the export says so.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from straits.errors import ScenarioError
from straits.model.types import ANY_CONTROL, NodeGpus, SlurmJobs, refuse_control

_SLURM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


def _one_line(text: str) -> str:
    return refuse_control(text, ANY_CONTROL, ": a name is one line of printable text")


def _slurm_name(text: str) -> str:
    if not _SLURM_NAME.fullmatch(text):
        raise ValueError(
            f"{text[:80]!r} is not a Slurm name: letters, digits, '.', '_', '+' "
            "or '-' (it goes unquoted into #SBATCH lines and scripts)"
        )
    return text


def _slurm_gres(text: str) -> str:
    name, sep, kind = text.partition(":")
    if not _SLURM_NAME.fullmatch(name) or (sep and not _SLURM_NAME.fullmatch(kind)):
        raise ValueError(
            f"{text[:80]!r} is not a GRES name: NAME or NAME:TYPE of letters, "
            "digits, '.', '_', '+' or '-' (Straits adds the count)"
        )
    return text


#: one line of printable text: no newline, tab or other control character (these names reach
#: generated YAML, shell scripts and the terminal; a newline would end a line early)
Name = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_one_line)]
#: a Slurm cluster, partition or account name: it goes unquoted into ``#SBATCH`` lines and
#: shell comments, so no space, quote, ``$``, ``;`` or newline (which would end the directive
#: block and run the rest of the line as a command)
SlurmName = Annotated[str, StringConstraints(max_length=128), AfterValidator(_slurm_name)]
#: a GRES name, optionally with its type (``gpu``, ``npu``, ``gpu:h100``)
SlurmGres = Annotated[str, StringConstraints(max_length=128), AfterValidator(_slurm_gres)]
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = re.compile(
    rf"(?:(?P<prefix>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)/)?(?P<name>[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)"
)


def _qualified_name(text: str) -> str:
    """apimachinery's IsQualifiedName: ``[PREFIX/]NAME``, PREFIX a DNS subdomain of at most 253
    characters, NAME at most 63 (the API server refuses a node affinity or resource naming
    anything else)."""
    m = _QUALIFIED.fullmatch(text)
    if m is None or len(m.group("name")) > 63 or len(m.group("prefix") or "") > 253:
        raise ValueError(
            f"{text[:80]!r} is not a Kubernetes qualified name: [PREFIX/]NAME, PREFIX a DNS "
            "subdomain of at most 253 characters, NAME at most 63 of letters, digits, '-', "
            "'_' and '.', alphanumeric at both ends"
        )
    return text


#: Kubernetes label keys and values (prefix/name; values up to 63 characters)
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=317,
    ),
    AfterValidator(_qualified_name),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)
]
DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]


# --- Slurm time strings -------------------------------------------------------------------------
#: minutes standing for UNLIMITED (Slurm's INFINITE is 0xffffffff minutes)
UNLIMITED = 2**32 - 1

_SLURM_TIMES = tuple(
    re.compile(f)
    for f in (
        r"(?P<m>\d{1,9})",
        r"(?P<m>\d{1,9}):(?P<s>\d{1,9})",
        r"(?P<h>\d{1,9}):(?P<m>\d{1,9}):(?P<s>\d{1,9})",
        r"(?P<d>\d{1,5})-(?P<h>\d{1,9})",
        r"(?P<d>\d{1,5})-(?P<h>\d{1,9}):(?P<m>\d{1,9})",
        r"(?P<d>\d{1,5})-(?P<h>\d{1,9}):(?P<m>\d{1,9}):(?P<s>\d{1,9})",
    )
)


def parse_minutes(text: str) -> int:
    """Minutes of a Slurm time string (sbatch(1): "minutes", "minutes:seconds",
    "hours:minutes:seconds", "days-hours", "days-hours:minutes", "days-hours:minutes:seconds";
    UNLIMITED or INFINITE), seconds rounded up to a minute as Slurm does."""
    t = text.strip()
    if t.upper() in ("UNLIMITED", "INFINITE"):
        return UNLIMITED
    for form in _SLURM_TIMES:
        m = form.fullmatch(t)
        if m:
            g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
            seconds = (
                g.get("d", 0) * 86400 + g.get("h", 0) * 3600 + g.get("m", 0) * 60 + g.get("s", 0)
            )
            minutes = math.ceil(seconds / 60)
            if 1 <= minutes < UNLIMITED:
                return minutes
    raise ValueError(
        f"{text!r} is not a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, "
        "D-HH:MM, D-HH:MM:SS (at least one minute) or UNLIMITED"
    )


def format_minutes(minutes: int) -> str:
    """``days-hours:minutes:00`` of ``minutes``."""
    d, rest = divmod(int(minutes), 24 * 60)
    h, m = divmod(rest, 60)
    return f"{d}-{h:02d}:{m:02d}:00"


def _slurm_time(text: str) -> str:
    parse_minutes(text)
    return text.strip()


SlurmTime = Annotated[str, StringConstraints(max_length=32), AfterValidator(_slurm_time)]
#: a path a shell expands inside double quotes ($HOME, ${SCRATCH}); no quotes, spaces or `;`
ShellPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./${}+-]+$", max_length=1024)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: the cloud names SkyPilot reaches through a kubeconfig (its infra_utils: the region is the
#: context, which may hold '/'; ``ssh`` node pools too)
SKY_KUBERNETES = ("kubernetes", "k8s", "ssh")


class SkyPilotSite(_Frozen):
    """The site as SkyPilot infra: ``cloud`` and ``region`` (and ``zone``), e.g. aws /
    ap-southeast-1, or kubernetes / the kubeconfig context of an on-premises cluster."""

    cloud: Name
    region: Name | None = None
    zone: Name | None = None

    @field_validator("cloud", "region", "zone")
    @classmethod
    def _one_part(cls, text: str | None, info: ValidationInfo) -> str | None:
        """One part of SkyPilot's ``cloud/region/zone``: SkyPilot reads ``*`` as any region (or
        cloud, zone), a ``/`` as the start of the next part and strips spaces around each, so
        such a mapping named somewhere else than the site, or nowhere SkyPilot knows (exp30).
        A Kubernetes context (the region of ``kubernetes``) may hold ``/``, as EKS's do."""
        if text is None:
            return None
        cloud = str(info.data.get("cloud", "")).lower()
        k8s = cloud in SKY_KUBERNETES
        if text.strip() in ("", "*") or text != text.strip():
            raise ValueError(
                f"{text[:80]!r}: SkyPilot reads '*' as any and strips spaces; name one "
                + str(info.field_name)
            )
        if "/" in text and not (info.field_name == "region" and k8s):
            raise ValueError(
                f"{text[:80]!r}: SkyPilot reads '/' as the start of the next part of "
                "cloud/region/zone; name one " + str(info.field_name)
            )
        if info.field_name == "zone" and k8s:
            raise ValueError(
                f"{cloud} has no zone: SkyPilot reads the rest after {cloud}/ as the context"
            )
        return text

    @property
    def infra(self) -> str:
        return "/".join(p for p in (self.cloud, self.region, self.zone) if p)

    @property
    def on_kubernetes(self) -> bool:
        """Whether SkyPilot reaches the site through Kubernetes (``kubernetes``, ``k8s``)."""
        return self.cloud.lower() in SKY_KUBERNETES


class KubernetesSite(_Frozen):
    """The site as a Kubernetes cluster: its Karmada member-cluster name, kubeconfig context,
    namespace, Kueue LocalQueue, and the node labels that pin pods to it."""

    cluster: DnsLabel
    context: Name | None = None
    namespace: DnsLabel = "default"
    queue: DnsLabel = "training"
    node_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    cluster_queue: DnsLabel | None = None
    """The Kueue ClusterQueue behind ``queue``: when given, the export also writes the
    LocalQueue (the namespace's side of Kueue; the ClusterQueue and ResourceFlavors are the
    cluster administrator's)."""
    priority_class: DnsLabel | None = None
    """Kueue WorkloadPriorityClass of training stages (``kueue.x-k8s.io/priority-class``)."""
    serve_priority_class: DnsLabel | None = None
    """Kueue WorkloadPriorityClass of serving stages (default: ``priority_class``)."""
    checkpoint_claim: DnsLabel | None = None
    """A PersistentVolumeClaim (ReadWriteMany) mounted at /checkpoints in training pods, so a
    restarted JobSet resumes; without it checkpoints are the command's business."""


class SlurmSite(_Frozen):
    """The site as a Slurm cluster: its name (the folder its scripts go in; submit them from
    its login node), default partition, GPUs per node, account, the partition's MaxTime and
    where checkpoints live."""

    cluster: SlurmName
    partition: SlurmName | None = None
    gpus_per_node: NodeGpus = 8
    account: SlurmName | None = None
    max_time: SlurmTime = "2-00:00:00"
    """The partition's MaxTime (``scontrol show partition``): a stage that needs longer runs
    as a chain of jobs, each within it. Default 2 days, a common cap on shared GPU partitions:
    set it to the real one."""
    max_jobs: SlurmJobs = 10_000
    """The most jobs the cluster holds at once (slurm.conf ``MaxJobCount``; 10,000 is Slurm's
    default, slurm.conf(5)): ``submit.sh`` submits every job of the plan up front, so an export
    whose chains need more is refused rather than failing half way through its submission."""
    checkpoint_root: ShellPath = "$HOME/straits-checkpoints"
    """A folder on a file system every node and job of the cluster sees; each stage gets
    ``<root>/<plan>/<workload>/<stage>`` as STRAITS_CHECKPOINT_DIR."""

    @property
    def max_minutes(self) -> int:
        return parse_minutes(self.max_time)


class SiteTargets(_Frozen):
    skypilot: SkyPilotSite | None = None
    kubernetes: KubernetesSite | None = None
    slurm: SlurmSite | None = None


class KubernetesTopology(_Frozen):
    """Kueue topology-aware scheduling for this pool: pods of a stage are packed into one
    domain of ``level`` (a node label of a level of the pool's Kueue Topology, e.g.
    ``cloud.google.com/gce-topology-block`` or ``kubernetes.io/hostname``)."""

    level: LabelKey
    mode: Literal["required", "preferred"] = "preferred"
    """required: the stage waits until one domain has room; preferred: packed when possible."""


class PoolTargets(_Frozen):
    """Per-chip refinements of the site's mapping."""

    skypilot_accelerator: Name | None = None
    """The accelerator name SkyPilot knows (default: from the chip id, e.g. H100-SXM -> H100)."""
    kubernetes_resource: Annotated[Name, AfterValidator(_qualified_name)] = "nvidia.com/gpu"
    """The extended resource the pods request."""
    kubernetes_node_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Node labels of this GPU type (e.g. nvidia.com/gpu.product)."""
    kubernetes_topology: KubernetesTopology | None = None
    """Topology-aware scheduling through Kueue (the pool's ResourceFlavor has a topology)."""
    slurm_partition: SlurmName | None = None
    slurm_gres: SlurmGres = "gpu"
    """The GRES name of this chip in Slurm (``--gpus-per-node=<gres>:<n>`` when not gpu)."""


def _key(mapping: BaseModel) -> str:
    """A mapping as one string, the same however its labels were ordered."""
    return json.dumps(mapping.model_dump(mode="json"), sort_keys=True)


def one_place_each(sites: list[tuple[str, SiteTargets | None]]) -> None:
    """Refuse two sites mapped to one place of a scheduler (exp30): the same SkyPilot infra
    (SkyPilot's failover and the admission hook, which takes the first such site, cannot tell
    them apart), or the same Kubernetes or Slurm mapping (nothing tells the scheduler which of
    the two a stage is for). A plan that placed a stage in China for its data then ran it on
    the Singapore cluster both named, without a word."""
    seen: dict[tuple[str, str], str] = {}
    narrower: dict[str, str] = {}  # a region's infra -> a site in one of its zones
    for i, (site_id, t) in enumerate(sites):
        if t is None:
            continue
        keys: list[tuple[str, str, str]] = []
        if t.skypilot is not None and t.skypilot.region:  # without one: no task (export)
            sky = t.skypilot
            parts = (sky.cloud.lower(), *(p.lower() for p in (sky.region, sky.zone) if p))
            if sky.on_kubernetes:
                parts = ("kubernetes", parts[1])
            infra = "/".join(parts)
            # a zone narrows its region: the hook takes aws/R/Z for the site of aws/R
            wider = "/".join(parts[:2]) if len(parts) > 2 else None
            clash = seen.get(("skypilot", wider)) if wider else narrower.get(infra)
            if clash is not None:
                seen[("skypilot", infra)] = clash
            keys.append(("skypilot", f"SkyPilot infra {infra}", infra))
            if wider:
                narrower.setdefault(wider, site_id)
        if t.kubernetes is not None:
            keys.append(
                (
                    "kubernetes",
                    f"Kubernetes cluster {t.kubernetes.cluster}",
                    _key(t.kubernetes),
                )
            )
        if t.slurm is not None:
            keys.append(("slurm", f"Slurm cluster {t.slurm.cluster}", _key(t.slurm)))
        for target, what, key in keys:
            other = seen.setdefault((target, key), site_id)
            if other != site_id:
                raise ScenarioError(
                    f"sites {other} and {site_id} are mapped to one place of {target} ({what}, "
                    "or a zone of its region): a stage planned on one would run on either",
                    path=f"sites[{i}].targets.{target}",
                    expected="one place of a scheduler per site (another region, context, "
                    "cluster, partition or node labels)",
                )
