"""``straits report``: a plan as one self-contained HTML file a reviewer opens from an e-mail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from straits.cli.common import DbOption, JsonOption, RulesOption, err_console, fail, print_json
from straits.errors import InputError, StraitsError

KINDS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".png": "png"}


def output_kind(out: Path) -> str:
    if str(out) == "-":
        return "html"
    kind = KINDS.get(out.suffix.lower())
    if kind is None:
        raise InputError(f"cannot tell what to write from {out.name!r}", path="--out",
                         expected="a file ending in .html (or .pdf / .png, printed by a local "
                                  "Chromium), or - for HTML on stdout")
    return kind


def write_page(html: str, out: Path) -> dict[str, Any]:
    """Write the page (or its PDF/PNG print) and say what was written: only a regular file is
    replaced, atomically; ``-`` is stdout (``fileio.write_output``)."""
    from straits.fileio import output_path, write_output

    kind = output_kind(out)
    path = output_path(out, option="--out")  # refuse a directory, a device... before rendering
    if path is None:
        write_output(None, html)
        return {"path": "-", "kind": kind, "bytes": len(html.encode("utf-8"))}
    if kind == "html":
        write_output(path, html, option="--out")
    else:
        from straits.report.static import print_page

        print_page(html, path, kind)
    return {"path": str(path), "kind": kind, "bytes": path.stat().st_size}


def report(
    plan: str = typer.Argument(..., metavar="PLAN",
                               help="A recorded plan id (or unique prefix), or a scenario file "
                                    "to plan now."),
    out: Path = typer.Option(..., "-o", "--out",
                             help="The file to write: .html (self-contained, no network), or "
                                  ".pdf / .png printed by a local Chromium; - for HTML on "
                                  "stdout."),
    regime: str = typer.Option(None, "--regime",
                               help="With a scenario: plan under this regime (enacted | "
                                    "ai-diffusion) instead of the scenario's."),
    pareto: int = typer.Option(None, "--pareto", min=2, max=50,
                               help="With a scenario: chart the cost / time frontier of N "
                                    "points instead of one plan."),
    time_limit: float = typer.Option(20.0, "--time-limit", min=0.1,
                                     help="With a scenario: seconds for the search."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
) -> None:
    """Write a plan report: summary, Gantt per site and pool with capacity and use, a map of
    sites and what moves between them, costs, **why not** for every stage with the rule and
    citation, the rules in force on the plan's date on a timeline, warnings, and the ledger
    entry of a recorded plan."""
    from straits.cli.plan_source import resolve_plan
    from straits.report import pareto_report, plan_report
    from straits.rules import ruleset

    try:
        rs = ruleset(tuple(rules or ()))
        if pareto is not None:
            from straits.loading import load_scenario
            from straits.plan.candidates import Candidates
            from straits.plan.pareto import frontier

            path = Path(plan)
            if not path.is_file():
                raise InputError(f"{plan} is not a scenario file", path="PLAN",
                                 expected="a scenario file with --pareto")
            sc = load_scenario(path)
            cand = Candidates(sc, rs, regime=regime or sc.regime, date=sc.date)
            points = frontier(cand, points=pareto, time_limit=time_limit)
            html = pareto_report([p.to_json() for p in points], sc.name)
        else:
            src = resolve_plan(plan, db=db, rules=rs, regime=regime, time_limit=time_limit)
            html = plan_report(src.plan, src.scenario, rs, source=src.describe,
                               recorded=src.recorded)
        written = write_page(html, out)
    except StraitsError as exc:
        fail(exc)
        return
    except OSError as exc:
        fail(InputError(f"cannot write {out}: {exc.strerror or exc}", path="--out",
                        expected="a writable file path"))
        return
    if json_out:
        print_json(written)
    elif written["path"] != "-":
        err_console.print(f"wrote {written['path']} ({written['bytes'] / 1e6:,.1f} MB)")
