"""Every `STRAITS_*` environment variable the code reads or sets is named in README.md or
docs/, and every one the docs name exists in the code or the tests (user32: the witness's
`STRAITS_WITNESS_STATE`, SkyPilot's `STRAITS_START` / `STRAITS_END` and Slurm's
`STRAITS_SEGMENT` / `STRAITS_SEGMENTS` / `STRAITS_RAN_MARKER` were in no page)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bSTRAITS_[A-Z0-9_]*[A-Z0-9]\b")


def names(paths: list[Path]) -> dict[str, str]:
    """Each variable named in ``paths`` and the first file that names it."""
    out: dict[str, str] = {}
    for path in paths:
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            out.setdefault(name, str(path.relative_to(ROOT)))
    return out


def docs() -> dict[str, str]:
    return names([ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_every_variable_of_the_code_is_documented() -> None:
    code = names(sorted((ROOT / "src" / "straits").rglob("*.py")))
    assert code, "no STRAITS_ variable found in src/"
    missing = {name: where for name, where in code.items() if name not in docs()}
    assert missing == {}, f"named in the code but in no page of docs/ or README.md: {missing}"


def test_every_documented_variable_exists() -> None:
    real = names(
        [
            *sorted((ROOT / "src" / "straits").rglob("*.py")),
            *sorted((ROOT / "tests").glob("*.py")),
        ]
    )
    ghosts = {name: where for name, where in docs().items() if name not in real}
    assert ghosts == {}, f"documented but read or set nowhere: {ghosts}"
