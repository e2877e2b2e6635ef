"""``straits export``: a plan as SkyPilot tasks, Kubernetes Jobs, Karmada policies or sbatch
scripts, written into a directory, an archive, or stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.common import (
    DbOption,
    JsonOption,
    QuietOption,
    RulesOption,
    console,
    fail,
    note,
    print_json,
    rule_dirs,
    set_quiet,
    state,
    write_file,
)
from straits.errors import InputError, StraitsError

if TYPE_CHECKING:
    from straits.archive import ArchiveFormat

TO_HELP = "Target (repeatable): skypilot | kubernetes | karmada | slurm | all."


def export(
    plan: str = typer.Argument(
        ...,
        metavar="PLAN",
        help="A recorded plan id (or unique prefix, see `straits ledger "
        "show`), a plan document (`straits plan --json`), a "
        "scenario file to plan now, or `-` for stdin.",
    ),
    to: list[str] = typer.Option(..., "--to", help=TO_HELP),
    out: str = typer.Option(
        ...,
        "-o",
        "--out",
        metavar="DIR|FILE|-",
        help="Where the files go: a directory (created; what an earlier "
        "export wrote there for the same targets is replaced, files it "
        "no longer writes removed), an archive FILE.tar.gz / .tgz / .zip / "
        ".tar, or `-`: a .tar.gz on stdout.",
    ),
    run: list[str] = typer.Option(
        None,
        "--run",
        help="What the stages run (repeatable): "
        "`CMD` for every stage without a command of its own, or "
        "`KEY=CMD` for the stages of a kind (pretrain, finetune, "
        "serve), a stage id, or WORKLOAD/STAGE. The most specific "
        "wins; a stage's `command` in the scenario beats a plain CMD. "
        "A stage with none fails saying so.",
    ),
    image: str = typer.Option(
        None, "--image", help="Container image of Kubernetes and Karmada pods."
    ),
    ordered: bool = typer.Option(
        False,
        "--ordered",
        help="SkyPilot: `ordered` resources (planned option tried first) instead of `any_of`.",
    ),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Write a plan as the schedulers' own files. Every stage's resources are limited to the
    options the rules allow (the planned one first), so a scheduler's failover stays lawful.
    Where each site lives in each scheduler comes from `targets` in the scenario's site and
    pool entries (docs/exports.md); a target no site is mapped to is an error that names the
    field to add. Nothing is written unless everything is."""
    from straits import archive

    set_quiet(quiet)
    fmt: ArchiveFormat | None = "tar.gz" if out == "-" else archive.format_of(out)
    try:
        _refuse_target_flags(to)
        if not out.strip():  # '' would be the current directory: an unset shell variable
            raise InputError(
                "an empty path",
                path="-o",
                expected="a directory, an archive FILE.tar.gz / .zip, or '-'",
            )
        if fmt is None:  # files into a directory: refuse anything else there at once
            from straits.fileio import is_dir, output_dir

            suffix = archive.other_archive(out)
            if suffix is not None and not is_dir(out):
                raise InputError(
                    f"{out}: Straits writes no {suffix} archive",
                    path="-o",
                    expected="an archive FILE.tar.gz / .tgz / .zip / .tar, a directory, or '-'",
                )
            output_dir(out)
        if json_out and out == "-":
            raise InputError(
                "--json and -o - both want stdout",
                path="--json",
                expected="-o DIR or -o FILE.tar.gz with --json",
            )
        if state.server_url:
            from straits.cli.remote import remote_export

            plan_id, data, summary = remote_export(
                plan, to, fmt or "tar.gz", run=run, image=image, ordered=ordered
            )
            if fmt:
                _write_archive(out, data)
                written = _files_in(summary)  # the archive's files (was: 0)
            else:
                written = _unpack(Path(out), data, summary.get("targets") or {})
            summary = {**summary, "out": out}
        else:
            from straits.api import export_summary

            plan_id, inp, results, files = _render(plan, to, run, image, ordered, db, rules)
            summary = export_summary(plan_id, out, inp, results)
            written = _write(out, fmt, files, plan_id, summary)
    except StraitsError as exc:
        fail(exc)
        return
    except OSError as exc:
        from straits.fileio import FULL, full_error

        # a full disk under a directory is exit 1, as under an archive or any -o FILE (it was
        # exit 2, "bad input", with Python's "[Errno 27] File too large")
        fail(
            full_error(Path(out), exc)
            if exc.errno in FULL
            else InputError(
                f"cannot write: {exc}", path="--out", expected="a writable directory or file"
            )
        )
        return
    if json_out:
        print_json(summary)
        return
    if out == "-":
        note(f"[dim]wrote {written} file(s) of plan {plan_id} as a .tar.gz to stdout[/dim]")
        return
    _show(summary, written)


def _refuse_target_flags(to: list[str]) -> None:
    """Exit 2 for `--image` without a Kubernetes or Karmada target and `--ordered` without
    SkyPilot: `--to slurm --image I` wrote scripts that run no container, exit 0 (h49)."""
    from straits.api import export_targets
    from straits.cli.common import refuse_unread

    targets = set(export_targets(to))
    if not targets & {"kubernetes", "karmada"}:
        refuse_unread(
            ("image",),
            when="without a Kubernetes or Karmada target",
            expected="--to kubernetes, karmada or all with --image",
        )
    if "skypilot" not in targets:
        refuse_unread(
            ("ordered",),
            when="without the SkyPilot target",
            expected="--to skypilot or all with --ordered",
        )


def _render(
    ref: str,
    to: list[str],
    run: list[str] | None,
    image: str | None,
    ordered: bool,
    db: str | None,
    rules: list[Path] | None,
) -> tuple[str, Any, list[Any], dict[str, str]]:
    from straits.api import check_image, export_files, export_targets
    from straits.cli.plan_source import load_source, planned, refuse_unread_db
    from straits.rules import ruleset

    export_targets(to)  # a bad --to or --image fails before anything is read or planned
    check_image(image)
    rs = ruleset(rule_dirs(rules))
    source = load_source(ref, db=db)
    refuse_unread_db([source])  # a file: the database was taken and never opened (doc49)
    doc = planned(source, rs).document
    assert doc is not None
    inp, results, files = export_files(
        doc.scenario, doc.plan, rs, plan_id=doc.id, to=to, run=run, image=image, ordered=ordered
    )
    return doc.id, inp, results, files


def _write(
    out: str,
    fmt: ArchiveFormat | None,
    files: dict[str, str],
    plan_id: str,
    summary: dict[str, Any],
) -> int:
    """Into the directory ``out``, or as an archive (with the summary inside, as the
    server's)."""
    import json

    from straits import archive

    if fmt is None:
        from straits.export import write_bundle

        return len(
            write_bundle(
                Path(out), files, executable=(".sh", ".sbatch"), targets=summary["targets"]
            )
        )
    manifest = {**summary, "out": archive.MANIFEST}
    data = archive.build(
        {**files, archive.MANIFEST: json.dumps(manifest, indent=2) + "\n"},
        fmt,
        root=f"straits-{plan_id[:12]}",
    )
    _write_archive(out, data)
    return len(files)


def _write_archive(out: str, data: bytes) -> int:
    if out == "-":
        if sys.stdout.isatty():
            raise InputError(
                "will not write an archive to a terminal",
                path="-o",
                expected="a pipe or a redirect (> plan.tar.gz), or -o DIR",
            )
        from straits.fileio import write_stdout

        write_stdout(data)  # closed or full: one error line, exit 1 (was a traceback, exit 2)
        return 0
    write_file(Path(out), data)
    return 0


def _files_in(summary: dict[str, Any]) -> int:
    """How many files an export summary lists, over its targets."""
    targets = summary.get("targets") or {}
    return sum(len(r.get("files") or ()) for r in targets.values() if isinstance(r, dict))


def _unpack(out: Path, data: bytes, targets: Iterable[str]) -> int:
    """A server's tar.gz written into ``out`` (all files or none), replacing what an earlier
    export wrote for ``targets``."""
    import io
    import tarfile

    from straits import archive
    from straits.export import write_bundle

    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts[1:]  # drop the archive's root folder
            if not m.isfile() or not parts or ".." in parts or parts == (archive.MANIFEST,):
                continue
            f = tar.extractfile(m)
            if f is not None:
                files[str(Path(*parts))] = f.read().decode("utf-8")
    from straits.export import TARGETS

    mine = [t for t in targets if t in TARGETS]  # the server's word: only target folders
    return len(write_bundle(out, files, executable=(".sh", ".sbatch"), targets=mine))


def _show(summary: dict[str, Any], written: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    if state.quiet:  # --quiet: the summary line alone
        unplaced = (
            f"; not exported (unplaced): {', '.join(summary['unplaced'])}"
            if summary["unplaced"]
            else ""
        )
        console.print(
            f"wrote {written} file(s) of plan {summary['plan_id']} to {summary['out']}{unplaced}",
            soft_wrap=True,
            markup=False,
        )
        return

    # notes and paths carry names from the scenario and -o: text, never Rich markup
    table = Table(
        title=escape(f"Plan {summary['plan_id']} exported to {summary['out']}"),
        title_justify="left",
    )
    for col in ("target", "jobs", "files", "notes"):
        table.add_column(col)
    for target, r in summary["targets"].items():
        table.add_row(
            target, str(r["jobs"]), str(len(r["files"])), escape("\n".join(r["notes"])) or "-"
        )
    console.print(table)
    commands = summary.get("commands", {})
    for j in summary.get("jobs", ()):
        alts = ", ".join(j["alternatives"]) or "none"
        source = commands.get(f"{j['workload']}/{j['stage']}", "")
        console.print(
            f"  {j['workload']}/{j['stage']}: {j['planned']}; lawful alternatives at "
            f"{j['chips']} chips: {alts}" + (f"; command: {source}" if source else ""),
            soft_wrap=False,
            markup=False,
        )
    if summary["unplaced"]:
        console.print(
            "[yellow]not exported (unplaced):[/yellow] " + escape(", ".join(summary["unplaced"]))
        )
    console.print(f"wrote {written} file(s)")
