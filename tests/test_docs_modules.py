"""docs/architecture.md names every module of the package (the brief: docs describe the code
as it is): a module added without a line there fails here, naming it."""

from __future__ import annotations

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
