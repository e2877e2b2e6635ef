"""``straits worker``: plan jobs from the database queue, as a process of its own."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from straits.cli.common import (
    DbOption,
    RulesOption,
    err_console,
    fail,
    finite_float,
    open_store,
    rule_dirs,
    whole,
)
from straits.errors import InputError, StraitsError
from straits.limits import LEASE_RANGE_S

#: the worker's log levels (``serve``'s, uvicorn's ``trace`` aside), any case: it took any
#: name the logging module defines (``notset``, ``warn``, ``fatal``) though its help listed three
WORKER_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def worker(
    db: str = DbOption,
    slots: int = typer.Option(
        1,
        "--slots",
        click_type=whole(1, 64),
        help="Plans solved at once (each runs CP-SAT with 4 search threads).",
    ),
    rules: list[Path] = RulesOption,
    lease: float = typer.Option(
        None,
        "--lease",
        click_type=finite_float(*LEASE_RANGE_S),
        help="Seconds a job's lease lasts without renewal (default: STRAITS_PLAN_LEASE_S or 30).",
    ),
    attempts: int = typer.Option(
        None,
        "--attempts",
        click_type=whole(1, 100),
        help="Times a job is started before it is failed (default: STRAITS_PLAN_ATTEMPTS or 3).",
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="Log level: " + ", ".join(WORKER_LEVELS) + " (any case)."
    ),
) -> None:
    """Run plan workers: take the plans submitted to `straits serve` (POST /v1/plans) from the
    database queue and plan them, until stopped (SIGTERM, SIGHUP or Ctrl-C gives running plans
    back to the queue). Run as many as you like, on this machine or others sharing a PostgreSQL
    database (`--db postgresql+psycopg://...`): each job runs on one worker at a time, and a job
    whose worker dies is resumed by another. Workers take only the jobs submitted under the same
    rules (`--rules`) as theirs."""
    import dataclasses

    from straits.server.jobs import run_worker
    from straits.server.settings import Settings

    level = WORKER_LEVELS.get(log_level.lower())
    if level is None:
        fail(
            InputError(
                f"unknown log level {log_level!r}",
                path="--log-level",
                expected=", ".join(WORKER_LEVELS),
            )
        )
        return
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        policy = Settings.from_env().queue_policy()
        if lease is not None:
            policy = dataclasses.replace(policy, lease_s=lease)
        if attempts is not None:
            policy = dataclasses.replace(policy, max_attempts=attempts)
        # the same database as `straits serve` and every other command: --db, else the
        # config's `database`, else the default file (Store(None) was ./straits.db, so a
        # worker started beside a server with the defaults watched another database)
        dirs = rule_dirs(rules)
        from straits.rules import ruleset

        ruleset(dirs)  # bad --rules fail before the database is made and migrated
        store = open_store(db)
        err_console.print(f"Straits worker on {store!r}: {slots} slot(s)")
        # the config's `rules` too, as serve reads them: a worker under other rules than the
        # server's takes none of its jobs (they wait for the queue timeout)
        run_worker(store, slots=slots, rule_dirs=dirs, policy=policy)
    except StraitsError as exc:
        fail(exc)
