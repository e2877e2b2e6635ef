"""A careless operator's market sweep: more local workers than CPUs (each a process of about
100 MB: --workers 512 would take a small machine's memory) runs as many as there are CPUs,
and says so. The market files a hostile user writes are in tests/hostile_corpus.py
(``market:*``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_more_workers_than_cpus_run_as_many_as_there_are_cpus(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "market",
            "sweep",
            "--runs",
            "2",
            "--firms",
            "5",
            "--backend",
            "processes",
            "--workers",
            "512",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["workers"] == min(512, os.cpu_count() or 1)
    assert summary["runs"] == 2
    if (os.cpu_count() or 1) < 512:
        assert "--workers 512" in p.stderr
