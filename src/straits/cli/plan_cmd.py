"""``straits plan``: place every stage of a scenario lawfully, over capacity and time."""

from __future__ import annotations

from pathlib import Path

import typer

from straits.cli.common import JsonOption, RulesOption, console, fail, print_json
from straits.cli.plan_view import plan_view
from straits.errors import InputError
from straits.loading import load_scenario
from straits.model.types import Objective, Regime
from straits.plan import make_plan
from straits.rules import ruleset

EXIT_UNPLACED = 3


def plan(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML or JSON)."),
    json_out: bool = JsonOption,
    regime: Regime = typer.Option(None, "--regime", help="Override the scenario's regime: "
                                  "enacted | ai-diffusion."),
    objective: Objective = typer.Option(None, "--objective",
                                        help="Override the objective: cost | time."),
    details: bool = typer.Option(False, "--details",
                                 help="With --json, list every rejected option."),
    rules: list[Path] = RulesOption,
) -> None:
    """Plan a scenario: for every stage, estimate and check every (site, pool), schedule the
    lawful ones over capacity and time, and explain why every other option lost.

    Exit status: 0 when every stage is placed, 3 when some are not, 2 on bad input.
    """
    try:
        sc = load_scenario(scenario)
        result = make_plan(sc, regime=regime, objective=objective,
                           rules=ruleset(tuple(rules or ())))
    except InputError as exc:
        fail(exc)
        return
    if json_out:
        print_json(result.to_json(details=details))
    else:
        console.print(plan_view(result))
    if result.unplaced:
        raise typer.Exit(EXIT_UNPLACED)
