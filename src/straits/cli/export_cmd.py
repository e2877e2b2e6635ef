"""``straits export``: a plan as SkyPilot tasks, Kubernetes Jobs, Karmada policies or sbatch
scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from straits.cli.common import DbOption, JsonOption, RulesOption, console, fail, print_json
from straits.errors import InputError, StraitsError

TO_HELP = ("Target (repeatable): skypilot | kubernetes | karmada | slurm | all.")


def load_plan(ref: str, db: str | None, rules: list[Path] | None
              ) -> tuple[str, Any, dict[str, Any]]:
    """(plan id, scenario, plan JSON) of a recorded plan id, or of a fresh plan of a scenario
    file."""
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file():
        from straits.loading import load_scenario
        from straits.plan import make_plan
        from straits.rules import ruleset
        from straits.store.ledger import digest
        from straits.store.records import scenario_document

        sc = load_scenario(path)
        plan = make_plan(sc, rules=ruleset(tuple(rules or ())))
        return f"unrecorded-{digest(scenario_document(sc))[:12]}", sc, plan.to_json()
    from straits.store import Store
    from straits.store.records import find_plan

    rec = find_plan(Store(db), ref)
    return rec.id, rec.scenario, rec.plan


def export(
    plan: str = typer.Argument(..., metavar="PLAN",
                               help="A recorded plan id (or unique prefix, see `straits ledger "
                                    "show`), or a scenario file to plan now."),
    to: list[str] = typer.Option(..., "--to", help=TO_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Directory to write into (created; "
                             "files of the same name are replaced)."),
    run: list[str] = typer.Option(None, "--run", help="What the stages run (repeatable): "
                                  "`CMD` for every stage without a command of its own, or "
                                  "`KEY=CMD` for the stages of a kind (pretrain, finetune, "
                                  "serve), a stage id, or WORKLOAD/STAGE. The most specific "
                                  "wins; a stage's `command` in the scenario beats a plain CMD. "
                                  "A stage with none fails saying so."),
    image: str = typer.Option(None, "--image", help="Container image of Kubernetes Jobs."),
    ordered: bool = typer.Option(False, "--ordered", help="SkyPilot: `ordered` resources "
                                 "(planned option tried first) instead of `any_of`."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
) -> None:
    """Write a plan as the schedulers' own files. Every stage's resources are limited to the
    options the rules allow (the planned one first), so a scheduler's failover stays lawful.
    Where each site lives in each scheduler comes from `targets` in the scenario's site and
    pool entries (docs/exports.md)."""
    from straits import export as ex
    from straits.rules import ruleset

    try:
        targets = tuple(dict.fromkeys(
            t2 for t in to for t2 in (ex.TARGETS if t == "all" else (t.lower(),))))
        for t in targets:
            if t not in ex.TARGETS:
                raise InputError(f"unknown export target {t!r}", path="--to",
                                 expected="one of " + ", ".join((*ex.TARGETS, "all")))
        plan_id, sc, plan_json = load_plan(plan, db, rules)
        from straits.export.commands import parse as parse_run

        inp = ex.export_input(sc, plan_json, ruleset(tuple(rules or ())), plan_id=plan_id,
                              commands=parse_run(run, sc), image=image or ex.DEFAULT_IMAGE)
        results = ex.render(inp, targets, ordered=ordered)
        files = {k: v for r in results for k, v in r.files.items()}
        written = ex.write_bundle(out, files, executable=(".sh", ".sbatch"))
    except StraitsError as exc:
        fail(exc)
        return
    except OSError as exc:
        fail(InputError(f"cannot write: {exc}", path="--out", expected="a writable directory"))
        return
    summary = {"plan_id": plan_id, "out": str(out),
               "targets": {r.target: {"jobs": r.jobs, "files": sorted(r.files),
                                      "notes": r.notes} for r in results},
               "commands": {f"{j.workload}/{j.stage}": j.command_source for j in inp.jobs},
               "unplaced": list(inp.unplaced)}
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"Plan {plan_id} exported to {out}", title_justify="left")
    for col in ("target", "jobs", "files", "notes"):
        table.add_column(col)
    for r in results:
        table.add_row(r.target, str(r.jobs), str(len(r.files)), "\n".join(r.notes) or "-")
    console.print(table)
    for j in inp.jobs:
        alts = ", ".join(c.label for c in j.alternatives) or "none"
        console.print(f"  {j.workload}/{j.stage}: {j.planned.label}; lawful alternatives at "
                      f"{j.chips} chips: {alts}; command: {j.command_source}")
    if inp.unplaced:
        console.print(f"[yellow]not exported (unplaced):[/yellow] {', '.join(inp.unplaced)}")
    console.print(f"wrote {len(written)} file(s)")
