"""A TPU stage on Kubernetes (and Karmada) as GKE runs Cloud TPUs.

GKE offers a TPU slice as a node pool of TPU VMs, each offering its chips as ``google.com/tpu``
and labelled ``cloud.google.com/gke-tpu-accelerator`` (``tpu-v4-podslice``,
``tpu-v5-lite-podslice``, ``tpu-v5p-slice``, ``tpu-v6e-slice``) and
``cloud.google.com/gke-tpu-topology`` (the slice's shape, ``2x2x1``, ``2x4``...). A workload
asks for a slice with those two labels as its node selector and one pod per VM, each asking all
of its VM's chips: 4 on v4 and v5p and on a multi-host v5e or v6e slice, 1, 4 or 8 on a
single-host v5e or v6e slice (GKE's docs, "Plan TPUs in GKE" and "Deploy TPU workloads in GKE
Standard"). The shapes are :data:`straits.catalog.tpu_slices.GKE_TPU`.

The export asked a TPU pool that set no ``kubernetes_resource`` as ``nvidia.com/gpu``, 8 a
pod, which no TPU node offers (atk93 said so in a note). A pool's own ``kubernetes_resource``
still wins: the user knows their cluster, and the stage is asked as a GPU stage of that
resource. A slice size the docs give no topology for is left out with a note, not guessed at.
"""

from __future__ import annotations

from straits.catalog.tpu_slices import GKE_TPU, is_tpu
from straits.export.base import Choice, StageJob
from straits.plan.options import NODE

TPU_RESOURCE = "google.com/tpu"
GPU_RESOURCE = "nvidia.com/gpu"  # PoolTargets.kubernetes_resource's default
ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"


def on_gke(choice: Choice) -> bool:
    """A TPU choice asked as GKE runs it: its pool sets no ``kubernetes_resource`` of its
    own. The default's value counts as none: a stored or planned scenario is the validated
    one with its defaults written out, so the field is always "set" once read back (every
    export of a plan document or a recorded plan asked a TPU pool with any targets as
    ``nvidia.com/gpu``, 8 a pod), and no TPU node offers that resource anyway."""
    t = choice.pool.targets
    return is_tpu(choice.pool.chip) and (t is None or t.kubernetes_resource == GPU_RESOURCE)


def slice_chips(job: StageJob) -> int:
    """The chips of one slice of the stage: a serving replica's, or the training stage's."""
    return job.replica_chips if job.serving else job.chips


def gke_slice(choice: Choice, chips: int) -> tuple[dict[str, str], int, int] | None:
    """(node selector, TPU VM hosts, chips of each) of the GKE slice of ``chips`` chips of
    ``choice``'s TPU, None when no topology of that size is sourced."""
    gke = GKE_TPU.get(choice.pool.chip)
    topology = gke.topologies.get(chips) if gke is not None else None
    if gke is None or topology is None:
        return None
    hosts, per_host = gke.hosts(chips)
    return {ACCELERATOR_LABEL: gke.accelerator, TOPOLOGY_LABEL: topology}, hosts, per_host


def tpu_selector(job: StageJob, choice: Choice | None = None) -> dict[str, str]:
    """The GKE TPU node selector of ``job`` on ``choice`` (the planned one), {} for a GPU or a
    pool that names its own resource."""
    c = choice or job.planned
    s = gke_slice(c, slice_chips(job)) if on_gke(c) else None
    return s[0] if s is not None else {}


def pod_layout(job: StageJob) -> tuple[int, int]:
    """(pods, chips of each) of the stage's gang: a training stage's, or one serving
    replica's. A GKE TPU slice is a pod per TPU VM host; GPUs (and a TPU pool that names its
    own resource) are nodes of :data:`NODE` chips."""
    s = gke_slice(job.planned, slice_chips(job)) if on_gke(job.planned) else None
    if s is not None:
        return s[1], s[2]
    if not job.serving:
        return job.layout(NODE)
    if job.replica_chips <= NODE:
        return 1, job.replica_chips
    return -(-job.replica_chips // NODE), NODE


def tpu_left_out(job: StageJob) -> str | None:
    """Why a TPU stage is not exported to Kubernetes: the docs give GKE no topology for a
    slice of its chips (None when it is exported)."""
    c = job.planned
    chips = slice_chips(job)
    if not on_gke(c) or gke_slice(c, chips) is not None:
        return None
    gke = GKE_TPU.get(c.pool.chip)
    sizes = ", ".join(f"{n:,}" for n in sorted(gke.topologies)) if gke is not None else "none"
    what = "a replica's slice" if job.serving else "a slice"
    return (
        f"{job.workload}/{job.stage}: {c.label}: no GKE TPU topology is sourced for {what} "
        f"of {chips:,} chips (sourced: {sizes}); left out, not guessed at. Set the pool's "
        "targets.kubernetes_resource and kubernetes_node_labels to ask it as your cluster "
        "runs it"
    )
