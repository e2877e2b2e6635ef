"""Static copies of a report (PDF, PNG) printed by a local Chromium, when one is installed.

Kaleido (Plotly's own static exporter) drives a Chrome it finds or downloads; here the report is
already a page, so a headless Chromium prints it as it is, offline, with every chart drawn.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from straits.errors import InputError

#: the variable that names the browser, and what it must name
ENV = "STRAITS_CHROMIUM"
EXPECTED = "the path or name of a Chrome/Chromium executable, or unset to search the PATH"
#: executables tried in order (STRAITS_CHROMIUM names another)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: seconds a print may take before it is abandoned
TIMEOUT = 120
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
)


def browser() -> str | None:
    named = os.environ.get("STRAITS_CHROMIUM")
    if named:  # named and not there: say so, not "install chromium" (user32)
        found = named if Path(named).is_file() else shutil.which(named)
        if found is None:
            raise InputError(f"{named!r} is no executable here", path=ENV, expected=EXPECTED)
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_page(html: str, out: Path, kind: str, width: int = 1280, height: int = 4000) -> None:
    """Write ``html`` as a PDF or PNG at ``out`` through headless Chromium."""
    exe = browser()
    if exe is None:
        raise InputError(
            f"a {kind.upper()} copy needs Chromium, and none was found",
            path="--out",
            expected="an .html file, or install chromium (or set "
            "STRAITS_CHROMIUM to a Chrome/Chromium executable)",
        )
    with tempfile.TemporaryDirectory(prefix="straits-print-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(tmp) / f"out.{kind}"
        flag = f"--print-to-pdf={target}" if kind == "pdf" else f"--screenshot={target}"
        cmd = [
            exe,
            *FLAGS,
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={width},{height}",
            "--no-pdf-header-footer",
            flag,
            page.as_uri() + "#all",
        ]  # every chart, not only those in view
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=False)
        except OSError as exc:  # not executable, not a program: was blamed on the -o file
            where = ENV if os.environ.get(ENV) else "--out"
            raise InputError(
                f"cannot run {exe}: {exc.strerror or exc}", path=where, expected=EXPECTED
            ) from None
        except subprocess.TimeoutExpired:
            raise InputError(
                f"Chromium did not finish printing within {TIMEOUT} s", path="--out"
            ) from None
        if not target.is_file():
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise InputError(
                f"Chromium could not print the report ({tail[0][:200]})",
                path="--out",
                expected=f"a working {exe}",
            )
        from straits.fileio import write_output

        write_output(out, target.read_bytes())
