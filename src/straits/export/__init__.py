"""Plans as jobs for the schedulers that run them: SkyPilot, Kubernetes (Kueue), Karmada and
Slurm, one module per target behind the :class:`~straits.export.base.Exporter` protocol."""

from __future__ import annotations

from straits.errors import InputError
from straits.export.base import (
    DEFAULT_IMAGE,
    DEFAULT_RUN,
    Exporter,
    ExportInput,
    ExportResult,
    StageJob,
    export_input,
)
from straits.export.bundle import write_bundle
from straits.export.kubernetes import KarmadaExporter, KubernetesExporter
from straits.export.skypilot import SkyPilotExporter
from straits.export.slurm import SlurmExporter

TARGETS = ("skypilot", "kubernetes", "karmada", "slurm")


def exporter(target: str, *, ordered: bool = False) -> Exporter:
    """The exporter named ``target`` (one of :data:`TARGETS`)."""
    if target == "skypilot":
        return SkyPilotExporter(ordered=ordered)
    if target == "kubernetes":
        return KubernetesExporter()
    if target == "karmada":
        return KarmadaExporter()
    if target == "slurm":
        return SlurmExporter()
    raise InputError(
        f"unknown export target {target!r}", path="--to", expected="one of " + ", ".join(TARGETS)
    )


def render(
    inp: ExportInput, targets: tuple[str, ...], *, ordered: bool = False
) -> list[ExportResult]:
    return [exporter(t, ordered=ordered).render(inp) for t in targets]


__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_RUN",
    "TARGETS",
    "ExportInput",
    "ExportResult",
    "Exporter",
    "StageJob",
    "export_input",
    "exporter",
    "render",
    "write_bundle",
]
