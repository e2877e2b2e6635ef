"""docs/architecture.md names every module of the package (the brief: docs describe the code
as it is): a module added without a line there fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "straits"
#: modules the page need not name: package markers, the entry point, Alembic's migrations
#: (named as a folder), and the CLI's command modules (the page names the commands)
SKIP = {"__init__.py", "__main__.py"}


def test_every_module_is_named_in_the_architecture_page() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if path.name in SKIP or "migrations" in rel.parts:
            continue
        if rel.parts[0] == "cli" and path.stem.endswith("_cmd"):
            command = path.stem.removesuffix("_cmd")
            if f"`{command}`" in page or f"`{path.name}`" in page:
                continue
        if f"`{path.name}`" not in page and f"{path.stem}.py" not in page:
            missing.append(str(rel))
    assert missing == [], f"not named in docs/architecture.md: {missing}"


def _table_rows(page: str) -> dict[str, str]:
    """The module table's rows: first cell (`pkg/` or `module.py`, several comma-separated)
    to the row's text."""
    rows: dict[str, str] = {}
    for line in page.splitlines():
        m = re.match(r"\| (`[^|]+`) \|(.*)\|\s*$", line)
        if m:
            for name in re.findall(r"`([\w/.]+)`", m.group(1)):
                rows[name] = line
    return rows


def test_every_module_has_a_line_in_its_packages_row() -> None:
    """Named somewhere on the page is not enough: a module's description is in the table row
    of its top-level package (or its own row)."""
    rows = _table_rows((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if path.name in SKIP or "migrations" in rel.parts:
            continue
        if len(rel.parts) == 1:
            if rel.name not in rows:
                missing.append(str(rel))
            continue
        row = rows.get(f"{rel.parts[0]}/", "")
        command = path.stem.removesuffix("_cmd")
        if rel.parts[0] == "cli" and path.stem.endswith("_cmd") and f"`{command}`" in row:
            continue
        if f"`{path.name}`" not in row and f"{path.stem}.py" not in row:
            missing.append(str(rel))
    assert missing == [], f"no line in its row of docs/architecture.md's table: {missing}"


def test_every_module_the_table_names_exists() -> None:
    """The other way round: a module removed or renamed leaves no line behind."""
    rows = _table_rows((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    gone = []
    for first, row in rows.items():
        if first.endswith("/"):
            pkg = PACKAGE / first.rstrip("/")
            if not pkg.is_dir():
                gone.append(first)
                continue
            for name in re.findall(r"`([\w/]+\.py)`", row.split("|", 2)[2]):
                if (ROOT / name).exists():  # benchmarks/..., named from the repository root
                    continue
                if not list(pkg.rglob(name.split("/")[-1])):
                    gone.append(f"{first}{name}")
        elif first.endswith(".py") and not (PACKAGE / first).exists():
            gone.append(first)
    assert gone == [], f"docs/architecture.md's table names modules that do not exist: {gone}"


def test_every_dependency_has_a_reason_on_the_page() -> None:
    """The section "Dependencies and why" names every requirement of pyproject.toml."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page.split("## Dependencies and why", 1)[1].lower()
    reqs = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += extra
    missing = []
    for req in reqs:
        name = re.match(r"[A-Za-z0-9_.-]+", req)
        assert name is not None, req
        if name.group(0) == "straits":  # dev's own extras
            continue
        if name.group(0).lower() not in table:
            missing.append(name.group(0))
    assert missing == [], f"not in docs/architecture.md's dependency table: {missing}"
