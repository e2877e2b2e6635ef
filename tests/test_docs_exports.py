"""docs/exports.md's table "What each target gets" names the files an export writes: every file
of the shipped example's `--to all` export matches one of the table's paths, and the paths the
page quotes from that export are there."""

from __future__ import annotations

import re
from pathlib import Path

from test_cli import straits

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "exports.md").read_text(encoding="utf-8")


def table_paths() -> list[re.Pattern[str]]:
    section = PAGE.split("### What each target gets", 1)[1]
    out = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        files = line.split("|")[2]
        for path in re.findall(r"`([^`]+)`", files):
            rx = re.sub(
                r"<[^>]+>", "[^/]+", re.escape(path).replace(r"\<", "<").replace(r"\>", ">")
            )
            out.append(re.compile(rx + r"\Z"))
    return out


def test_every_exported_file_is_in_the_table(tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    p = straits(
        "export", str(ROOT / "examples" / "offshore-2025.yaml"), "--to", "all", "-o", str(out)
    )
    assert p.returncode == 0, p.stderr
    written = sorted(
        str(f.relative_to(out))
        for f in out.rglob("*")
        if f.is_file() and not f.name.startswith(".")
    )
    patterns = table_paths()
    assert written and patterns
    assert [f for f in written if not any(rx.match(f) for rx in patterns)] == []
    intro = PAGE.split("### What each target gets", 1)[1].split("| target |", 1)[0]
    found = re.findall(r"`([\w./-]+\.(?:yaml|sbatch))`", intro)
    quoted = [q for q in found if not q.startswith("examples/")]
    assert quoted and [q for q in quoted if q not in written] == []
