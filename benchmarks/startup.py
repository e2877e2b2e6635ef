"""How long `straits` spends importing before it does anything, by `python -X importtime`.

For each command: the sum of the self times `-X importtime` reports (every module the process
imports, the interpreter's own start-up modules included), the best and the median of several
runs (other processes only ever add time, so the best is the figure to judge, as `timeit`
does), the process's CPU time, and its median wall time. The baseline, measured in the same
run, is the bare interpreter (`python -c pass`); `import typer` is the floor any Typer CLI
pays. Goal (issue #19): `straits --help` and `straits check` under 0.3 s of import time. The
slowest imports of each command are listed so a regression names its culprit.

    .venv/bin/python benchmarks/startup.py [--runs 15] [--against REV]

`--against REV` also measures `straits --help` and `straits check` of another revision (its
`src/` taken with `git archive`, run by the same interpreter), e.g. `--against 7e7bcdc`, the
commit before the start-up work.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUEST = ROOT / "examples" / "request.json"
GOAL_S = 0.3

CASES: list[tuple[str, list[str], Path | None]] = [
    ("bare interpreter (baseline)", ["-c", "pass"], None),
    ("import typer (the floor)", ["-c", "import typer"], None),
    ("straits --help", ["-m", "straits", "--help"], None),
    ("straits --version", ["-m", "straits", "--version"], None),
    ("straits check --json < req", ["-m", "straits", "check", "--json"], REQUEST),
    ("straits check (table)", ["-m", "straits", "check"], REQUEST),
    ("straits chips --json", ["-m", "straits", "chips", "--json"], None),
    ("straits plan --help", ["-m", "straits", "plan", "--help"], None),
]


def _env(src: Path | None = None) -> dict[str, str]:
    """Bytecode caches written and read, as in any installed copy (a shell that sets
    PYTHONDONTWRITEBYTECODE would otherwise compile every source on every start); ``src``
    puts another tree's sources first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return {**env, "COLUMNS": "100"}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(
    args: list[str], stdin: Path | None, src: Path | None = None
) -> tuple[float, float, float, list[tuple[int, int, str]]]:
    """(import seconds, wall seconds, CPU seconds, [(self us, cumulative us, module)])."""
    env = _env(src)
    c0 = _cpu()
    t0 = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        p = subprocess.run(
            [sys.executable, "-X", "importtime", *args],
            stdin=f,
            capture_output=True,
            env=env,
            check=False,
        )
    wall = time.perf_counter() - t0
    cpu = _cpu() - c0
    if p.returncode != 0:
        raise SystemExit(f"{args} exited {p.returncode}: {p.stderr[-2000:]!r}")
    rows = []
    for line in p.stderr.decode().splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        rows.append((int(own), int(cumulative), name.rstrip()))
    return sum(r[0] for r in rows) / 1e6, wall, cpu, rows


def top(rows: list[tuple[int, int, str]], n: int = 6) -> list[str]:
    """The slowest top-level-ish imports (cumulative), outermost first."""
    depth = [(len(name) - len(name.lstrip()), c, name.strip()) for _, c, name in rows]
    shallow = sorted((d for d in depth if d[0] <= 4), key=lambda d: -d[1])
    return [f"{name} {c / 1000:.0f} ms" for _, c, name in shallow[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--against", metavar="REV", help="also measure this git revision")
    opts = ap.parse_args()
    runs = opts.runs
    print(
        f"python {sys.version.split()[0]}, {runs} runs each; {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f}: figures are indicative on a shared "
        "machine)\n"
    )
    print(
        "import s: the sum of -X importtime's self times; cpu s: the process's user+system "
        "time (less sensitive to other load than wall time)\n"
    )
    print(
        f"{'command':30} {'import best':>11} {'median':>7} {'x bare':>7} {'cpu s':>6} "
        f"{'wall s':>7}  slowest imports (best run)"
    )
    base = None
    results = {}
    for label, args, stdin in CASES:
        run(args, stdin)  # warm: bytecode written, files in the page cache
        samples = [run(args, stdin) for _ in range(runs)]
        best = min(s[0] for s in samples)
        median = statistics.median(s[0] for s in samples)
        wall = statistics.median(s[1] for s in samples)
        cpu = min(s[2] for s in samples)
        rows = min(samples, key=lambda s: s[0])[3]
        base = base or best
        results[label] = best
        names = ", ".join(top(rows, 4)) if label.startswith("straits") else ""
        print(
            f"{label:30} {best:11.3f} {median:7.3f} {best / base:7.1f} {cpu:6.3f} "
            f"{wall:7.3f}  {names}"
        )
    print()
    for label in ("straits --help", "straits check --json < req"):
        verdict = "meets" if results[label] < GOAL_S else "MISSES"
        print(
            f"{label}: {results[label]:.3f} s of import time {verdict} the {GOAL_S} s goal "
            f"({results[label] - results['import typer (the floor)']:+.3f} s over Typer "
            "alone)"
        )
    if opts.against:
        against(opts.against, runs, results)


def against(rev: str, runs: int, results: dict[str, float]) -> None:
    """The same two commands from ``rev``'s sources, and how many times faster this tree
    starts."""
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / "src"
        print(f"\nagainst {rev} (its src/, this interpreter and packages):")
        for label, args, stdin in CASES:
            if label not in ("straits --help", "straits check --json < req"):
                continue
            run(args, stdin, src)
            best = min(run(args, stdin, src)[0] for _ in range(runs))
            print(
                f"{label:30} {best:11.3f} s at {rev}, {results[label]:.3f} s here: "
                f"{best / results[label]:.1f}x faster"
            )


if __name__ == "__main__":
    main()
