"""A hostile pass on what `straits estimate` prints and answers (atk37): the table, the JSON
shape, and the refusals of a shell."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from straits.cli import app

SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}


def _rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1]:
            rows[cells[1].split(" at ")[0]] = cells[2]
    return rows


def test_a_chip_without_a_price_prints_no_cost_range() -> None:
    """B200 has no reference price: the cost row read '- (80%: - - -)'."""
    request: dict[str, Any] = {"model": SMALL, "tokens": 1e12, "chip": "B200", "chips": 64}
    result = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request))
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["cost"] == "-"
    assert "80%" in rows["chip-hours"]  # the figures that exist keep their interval
