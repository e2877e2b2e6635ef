"""Run hostile-input cases through the real CLI in one process, under hard limits.

Usage: python hostile_harness.py CASES.json RESULTS.json

Each case runs ``straits.cli.main()`` with its argv, stdin and files, under a 60 s alarm; the
process has a 6 GiB address-space limit, so a case that tries to eat memory fails with a
MemoryError instead of taking the machine. For each case: the exit status, stderr and stdout
(truncated), the seconds it took, whether a traceback escaped, and the process's peak RSS
before and after it (the peak only grows: what a case adds to it is its own).
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

CASE_SECONDS = 60
ADDRESS_SPACE = 6 << 30


class _Timeout(BaseException):
    pass


def _alarm(_sig: int, _frame: Any) -> None:
    raise _Timeout()


def run_case(case: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from straits.cli import main

    argv = []
    for arg in case["argv"]:
        for name, content in case["files"].items():
            if f"{{{name}}}" in arg:
                path = workdir / f"{abs(hash(case['id']))}-{name}.yaml"
                if isinstance(content, dict):
                    path.write_bytes(bytes.fromhex(content["bytes"]))
                else:
                    path.write_text(content, encoding="utf-8", errors="surrogatepass")
                arg = arg.replace(f"{{{name}}}", str(path))
        argv.append(arg)
    stdin_bytes = (case["stdin"] or "").encode("utf-8", "surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    escaped = None
    old_stdin, old_argv = sys.stdin, sys.argv
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8")
    sys.argv = ["straits", *argv]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    t0 = time.monotonic()
    signal.alarm(CASE_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except _Timeout:
        escaped = f"timeout after {CASE_SECONDS} s"
    except BaseException:
        escaped = traceback.format_exc()
    finally:
        signal.alarm(0)
        sys.stdin, sys.argv = old_stdin, old_argv
    return {
        "id": case["id"],
        "exit": code,
        "stdout": out.getvalue()[-2000:],
        "stderr": err.getvalue()[-4000:],
        "escaped": escaped,
        "seconds": round(time.monotonic() - t0, 3),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "rss_before_mb": rss_before,
    }


def main() -> None:
    cases_path, results_path, verbose = Path(sys.argv[1]), Path(sys.argv[2]), "-v" in sys.argv
    cases = json.loads(cases_path.read_text())
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _alarm)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            results.append(run_case(case, Path(tmp)))
            if verbose:
                print(
                    case["id"],
                    results[-1]["exit"],
                    results[-1]["seconds"],
                    file=sys.__stderr__,
                    flush=True,
                )
    results_path.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
