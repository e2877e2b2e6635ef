"""What every exporter gets (one job per placed stage, with its lawful alternatives) and the
protocol each target implements.

Data flow: a recorded plan (the JSON contract, from the ledger or a fresh ``make_plan``) and its
scenario become an :class:`ExportInput`; an :class:`Exporter` turns that into files; the CLI
writes them all at once (:func:`write_bundle`), or none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from straits.model.scenario import Dataset, Pool, Scenario, Site
from straits.plan.recheck import Placement, PlanContext
from straits.rules.engine import RuleSet


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
    """A DNS label unique within the plan: ``<workload>-<stage>`` (a hash suffix when that is
    too long or taken)."""

    @property
    def chips(self) -> int:
        return self.placement.chips

    @property
    def hours(self) -> float:
        return (self.placement.end - self.placement.start).total_seconds() / 3600

    @property
    def choices(self) -> tuple[Choice, ...]:
        return (self.planned, *self.alternatives)


@dataclass(frozen=True)
class ExportInput:
    plan_id: str
    scenario: Scenario
    plan: Mapping[str, Any]
    jobs: tuple[StageJob, ...]
    unplaced: tuple[str, ...]
    run: str
    """The command each job runs."""
    image: str
    """The container image of Kubernetes jobs."""

    def job(self, workload: str, stage: str) -> StageJob:
        return next(j for j in self.jobs if (j.workload, j.stage) == (workload, stage))


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


DEFAULT_RUN = ('echo "straits: no training command was given (straits export --run CMD)" >&2; '
               "exit 1")
DEFAULT_IMAGE = "nvcr.io/nvidia/pytorch:25.01-py3"


#: libyaml's emitter when PyYAML was built with it (about 10x faster), else the pure-Python one
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(*docs: Any) -> str:
    """YAML documents in the order given, keys in insertion order."""
    return str(yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False, width=100))


def dns_name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label from ``text`` (Kubernetes names, SkyPilot task names)."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (out[:limit].rstrip("-")) or "straits"


def label_value(text: str) -> str:
    """A Kubernetes label value (63 characters, alphanumeric at both ends)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", out)


def unique_names(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``<workload>-<stage>`` as DNS labels; one that was shortened, or that two stages
    share, gets the first 6 hex digits of a hash of its full name."""
    plain = {k: dns_name(f"{k[0]}-{k[1]}") for k in keys}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    out = {}
    for k, name in plain.items():
        full = f"{k[0]}-{k[1]}"
        if counts[name] > 1 or name != full.lower():
            tag = hashlib.sha256(f"{k[0]}\0{k[1]}".encode()).hexdigest()[:6]
            name = f"{dns_name(full, 56)}-{tag}"
        out[k] = name
    return out


def export_input(sc: Scenario, plan: Mapping[str, Any], rules: RuleSet, *, plan_id: str,
                 run: str = DEFAULT_RUN, image: str = DEFAULT_IMAGE) -> ExportInput:
    """Jobs of ``plan`` with the lawful alternatives of each, as of the plan's date and regime
    (the law the plan was made under)."""
    ctx = PlanContext(sc, dict(plan), rules, date=_date(plan), regime=str(plan["regime"]))
    jobs = []
    names = unique_names(list(ctx.placements))
    for p in sorted(ctx.placements.values(), key=lambda p: (p.start, p.workload, p.stage)):
        w = sc.workload(p.workload)
        stage = w.stage(p.stage)
        site = sc.site(p.site)
        pool = next(x for x in site.pools if x.chip == p.chip)
        alts = tuple(Choice(o.site, o.pool) for o in ctx.alternatives(p)
                     if (o.site.id, o.chip.id) != (p.site, p.chip))
        jobs.append(StageJob(
            workload=w.id, stage=stage.id, tenant=w.tenant, kind=stage.kind, placement=p,
            planned=Choice(site, pool), alternatives=alts,
            after=tuple(a for a in stage.after if (w.id, a) in ctx.placements),
            datasets=tuple(sc.dataset(d) for d in stage.datasets), name=names[p.key]))
    unplaced = tuple(f"{u['workload']}/{u['stage']}" for u in plan.get("unplaced", ()))
    return ExportInput(plan_id, sc, plan, tuple(jobs), unplaced, run, image)


def _date(plan: Mapping[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str(plan["date"]))


def write_bundle(out_dir: Path, files: Mapping[str, str], *, executable: tuple[str, ...] = ()
                 ) -> list[Path]:
    """Write every file under ``out_dir`` or none: files are written into a temporary folder
    beside it and moved into place once all are written (each move is atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".straits-export-"))
    written = []
    try:
        for rel, text in files.items():
            tmp = staging / rel
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            if rel.endswith(executable) and executable:
                tmp.chmod(0o755)
        for rel in files:  # every folder first: a clash fails before any file moves
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            if (out_dir / rel).is_dir():
                raise IsADirectoryError(f"{out_dir / rel} is a directory")
        for rel in files:
            dest = out_dir / rel
            os.replace(staging / rel, dest)
            written.append(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
