"""A hostile pass (atk28) on what the estimator answers beyond its figures: the sweep chart of a
chip without a price or of sizes that do not fit, and serving requests whose cluster or context
the answer must not silently accept."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from straits.cli import app

SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}
#: 122 sequences a step: more than 122 replicas have nothing to run
FED_122 = {**SMALL, "seq_len": 8192, "global_batch_tokens": 1e6}


def _figures(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    assert m is not None
    return dict(json.loads(m.group(1)))


def _sweep_chart(request_: dict[str, Any], out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["estimate", "-", "--sweep", "chips", "-o", str(out)], input=json.dumps(request_)
    )
    return result.exit_code, out.read_text("utf-8") if out.exists() else ""


# --- the sweep chart ----------------------------------------------------------------------------
def test_a_sweep_chart_of_a_chip_without_a_price_is_drawn(tmp_path: Path) -> None:
    """B200 has no reference price (cost null): the chart was a TypeError traceback."""
    code, html = _sweep_chart({"model": SMALL, "tokens": 1e12, "chip": "B200"}, tmp_path / "s.html")
    assert code == 0 and html
    names = [t["name"] for t in _figures(html)["sweep"]["data"]]
    assert "cost" not in names and "days" in names
    rows = re.findall(r"<tr><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>", html)
    assert rows and all(cost == "-" for _, cost in rows)


def test_a_sweep_chart_marks_the_sizes_that_do_not_fit(tmp_path: Path) -> None:
    """The table and JSON of a sweep mark a size no layout fits; the chart drew its days and
    cost as those of a cluster that runs."""
    request_ = {"model": FED_122, "tokens": 2e13, "chip": "H100-SXM"}
    rows = json.loads(
        CliRunner()
        .invoke(app, ["estimate", "-", "--sweep", "chips", "--json"], input=json.dumps(request_))
        .output
    )
    misfits = {r["chips"] for r in rows if not r["fits"]}
    assert misfits
    code, html = _sweep_chart(request_, tmp_path / "s.html")
    assert code == 0
    for trace in _figures(html)["sweep"]["data"]:
        if trace["name"] not in ("days", "cost"):
            continue
        symbols = zip(trace["x"], trace["marker"]["symbol"], strict=True)
        crossed = {x for x, s in symbols if s == "x"}
        assert crossed == misfits
        said = {x for x, c in zip(trace["x"], trace["customdata"], strict=True) if c[0]}
        assert said == misfits
    marked = re.findall(r"<tr><td>([\d,]+) \(does not fit\)</td>", html)
    assert {int(m.replace(",", "")) for m in marked} == misfits
