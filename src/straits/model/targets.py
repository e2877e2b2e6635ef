"""Where a site lives in each scheduler: the mapping that `straits export` writes plans with.

A site entry may carry ``targets`` (how SkyPilot, Kubernetes/Karmada and Slurm name it) and a
pool entry may refine it per chip (the accelerator name SkyPilot knows, the node labels of that
GPU type, the Slurm partition holding it). Every field is optional: a site without a mapping for
a target is left out of that target's export, and the export says so.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
#: Kubernetes label keys and values (prefix/name; values up to 63 characters)
LabelKey = Annotated[str, StringConstraints(
    pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    max_length=316)]
LabelValue = Annotated[str, StringConstraints(
    pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)]
DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                            max_length=63)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SkyPilotSite(_Frozen):
    """The site as SkyPilot infra: ``cloud`` and ``region`` (and ``zone``), e.g. aws /
    ap-southeast-1, or kubernetes / the kubeconfig context of an on-premises cluster."""

    cloud: Name
    region: Name | None = None
    zone: Name | None = None

    @property
    def infra(self) -> str:
        return "/".join(p for p in (self.cloud, self.region, self.zone) if p)


class KubernetesSite(_Frozen):
    """The site as a Kubernetes cluster: its Karmada member-cluster name, kubeconfig context,
    namespace, Kueue LocalQueue, and the node labels that pin pods to it."""

    cluster: DnsLabel
    context: Name | None = None
    namespace: DnsLabel = "default"
    queue: DnsLabel = "training"
    node_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


class SlurmSite(_Frozen):
    """The site as a Slurm cluster: its name (``--clusters``), default partition, GPUs per
    node, and account."""

    cluster: Name
    partition: Name | None = None
    gpus_per_node: Annotated[int, Field(ge=1, le=64)] = 8
    account: Name | None = None


class SiteTargets(_Frozen):
    skypilot: SkyPilotSite | None = None
    kubernetes: KubernetesSite | None = None
    slurm: SlurmSite | None = None


class PoolTargets(_Frozen):
    """Per-chip refinements of the site's mapping."""

    skypilot_accelerator: Name | None = None
    """The accelerator name SkyPilot knows (default: from the chip id, e.g. H100-SXM -> H100)."""
    kubernetes_resource: Name = "nvidia.com/gpu"
    """The extended resource the pods request."""
    kubernetes_node_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Node labels of this GPU type (e.g. nvidia.com/gpu.product)."""
    slurm_partition: Name | None = None
    slurm_gres: Name = "gpu"
    """The GRES name of this chip in Slurm (``--gpus-per-node=<gres>:<n>`` when not gpu)."""
