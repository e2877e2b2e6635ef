"""A progress bar on stderr while ``straits ledger verify`` walks the log (a full verify of
10^5 entries takes seconds, of 10^6 about two minutes): the entries walked of the head's count,
then the step it is on (the tree's nodes, the checkpoints, the heads given, the plan and
decision rows). Shown on a terminal unless ``--quiet`` or ``--no-progress``; it is gone when
the result is printed (stdout alone carries the result, JSON included)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from straits.cli.common import err_console, state
from straits.store.integrity import Progress

STEPS = {
    "entries": "entries: chain and leaves",
    "tree": "the Merkle tree's nodes",
    "checkpoints": "signed checkpoints",
    "heads": "older heads",
    "records": "plan and decision rows",
}


def shown(flag: bool | None) -> bool:
    """``--progress/--no-progress`` as given, else on when stderr is a terminal; never with
    ``--quiet``."""
    return (sys.stderr.isatty() if flag is None else flag) and not state.quiet


@contextmanager
def verify_progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]verify[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console.get(),  # type: ignore[attr-defined]
        transient=True,
    ) as bar:
        task = bar.add_task(STEPS["entries"], total=None)

        def update(phase: str, done: int, total: int) -> None:
            if phase == "entries":
                bar.update(task, completed=done, total=total or None)
            else:
                bar.update(task, description=STEPS.get(phase, phase))

        yield update
