"""docs/scenario-reference.md's tables match the pydantic models of the scenario: every field of
a model has a row in its table (or its `model` cell), and every row names a field that exists.
A field added, renamed or removed without the page fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from straits.model import scenario as sc
from straits.model import targets as tg

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "scenario-reference.md").read_text(encoding="utf-8")

#: the page's headings and the model each one's table describes
TABLES: dict[str, type[pydantic.BaseModel]] = {
    "## Top level": sc.Scenario,
    "## tenants[]": sc.Tenant,
    "## sites[]": sc.Site,
    "### sites[].pools[]": sc.Pool,
    "#### sites[].pools[].procurable": sc.Procurable,
    "## datasets[]": sc.Dataset,
    "## workloads[]": sc.Workload,
    "### workloads[].stages[]": sc.Stage,
}


def table_after(heading: str, nth: int = 0) -> list[str]:
    """The first cells of the ``nth`` table after ``heading``: the field names they give
    (`pue`, `grid_gco2_per_kwh`; `skypilot.cloud`, `.region`)."""
    lines = PAGE.split(f"\n{heading}\n", 1)[1].splitlines()
    tables: list[list[str]] = []
    cur: list[str] | None = None
    for line in lines:
        if line.startswith("#") and tables:
            break
        if line.startswith("|"):
            if cur is None:
                cur = []
                tables.append(cur)
            cur.append(line)
        else:
            cur = None
    rows = tables[nth][2:]  # header and separator
    names: list[str] = []
    for row in rows:
        first = row.split("|")[1]
        names += re.findall(r"`([\w.]+)`", first)
    return names


def fields(model: type[pydantic.BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize("heading", list(TABLES))
def test_every_field_has_a_row_and_every_row_a_field(heading: str) -> None:
    model = TABLES[heading]
    rows = set(table_after(heading))
    assert sorted(fields(model) - rows) == [], f"{heading}: fields without a row"
    assert sorted(rows - fields(model)) == [], f"{heading}: rows without a field"


def test_the_model_cell_names_every_model_field() -> None:
    row = next(ln for ln in PAGE.splitlines() if ln.startswith("| `model` |"))
    named = set(re.findall(r"`(\w+)`", row))
    assert sorted(fields(sc.ModelSpec) - named) == []


def test_scheduler_mappings_match_their_models() -> None:
    site: set[str] = set()
    prefix = ""
    for name in table_after("## Scheduler mapping (`targets`)", 0):
        if name.startswith("."):
            site.add(prefix + name)
        else:
            prefix = name.split(".")[0]
            site.add(name)
    want = {
        f"{part}.{f}"
        for part, model in (
            ("skypilot", tg.SkyPilotSite),
            ("kubernetes", tg.KubernetesSite),
            ("slurm", tg.SlurmSite),
        )
        for f in fields(model)
    }
    assert set(tg.SiteTargets.model_fields) == {"skypilot", "kubernetes", "slurm"}
    assert sorted(want - site) == [] and sorted(site - want) == []
    pool = set(table_after("## Scheduler mapping (`targets`)", 1))
    assert pool == fields(tg.PoolTargets)


def _literal(value: object) -> str:
    """A default as the page writes it: `[]`, `false`, `10` (not 10.0), `enacted`."""
    if value == ():
        return "[]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize("heading", list(TABLES))
def test_stated_defaults_are_the_models(heading: str) -> None:
    """Where the default column is one literal (`730`, `[]`, `hard`), it is the model's."""
    model = TABLES[heading]
    section = PAGE.split(f"\n{heading}\n", 1)[1]
    wrong = []
    for line in section.splitlines():
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.replace("\\|", "/").split("|")]
        if len(cells) < 5 or not re.fullmatch(r"`\w+`", cells[1]):
            continue
        name, default = cells[1].strip("`"), cells[3]
        m = re.fullmatch(r"`([^`]+)`", default)
        if m is None or name not in model.model_fields:
            continue
        f = model.model_fields[name]
        actual = "required" if f.is_required() else _literal(f.default)
        if m.group(1) != actual:
            wrong.append(f"{name}: page {m.group(1)}, model {actual}")
    assert wrong == [], f"{heading}: {wrong}"
