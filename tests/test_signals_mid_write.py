"""sig51: a stop signal (SIGTERM from ``kill`` or a scheduler's limit, SIGHUP from a closed
terminal, Ctrl-C) that comes while a file is written through its temporary file. The target
is the old file or the whole new one, and no ``.NAME.*.tmp`` is left beside it: SIGTERM and
SIGHUP ended the process between the temporary file's write and its rename, so it stayed
there for good. The signal is sent from inside the temporary file's ``fsync``, so no timing
is involved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: runs the CLI (argv) or a snippet (``-c CODE``) with ``fsync`` of a temporary file sending
#: the signal named in SIG_AT_FSYNC to the process, once
HARNESS = """
import os, signal, sys
real = os.fsync
sent = []
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if name.endswith(".tmp") and not sent:
        sent.append(1)
        os.kill(os.getpid(), getattr(signal, os.environ["SIG_AT_FSYNC"]))
    return real(fd)
os.fsync = fsync
if sys.argv[1] == "-c":
    exec(sys.argv[2])
else:
    sys.argv = ["straits", *sys.argv[1:]]
    from straits.cli import main
    main()
"""

MARKET = (  # as `market run -o` and `market sweep` write their files; Ctrl-C as the CLI ends
    "from pathlib import Path\n"
    "from straits.market.outputs import write_bytes_atomically\n"
    "try:\n"
    "    write_bytes_atomically(Path('out/m.parquet'), b'new' * 1000)\n"
    "except KeyboardInterrupt:\n"
    "    sys.exit(130)\n"
)

#: (what is written, its arguments, the file it writes; a new key is written where none was)
WRITES = [
    ("scenario generate -o", ["scenario", "generate", "-o", "out/g.yaml"], "out/g.yaml"),
    ("ledger keygen --force", ["ledger", "keygen", "--force", "-o", "out/k"], "out/k"),
    ("ledger keygen", ["ledger", "keygen", "-o", "out/new"], "out/new.pub"),
    ("market output", ["-c", MARKET], "out/m.parquet"),
]

SIGNALS = {"SIGTERM": 143, "SIGHUP": 129, "SIGINT": 130}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("sig", sorted(SIGNALS))
@pytest.mark.parametrize(("what", "args", "target"), WRITES, ids=[w[0] for w in WRITES])
def test_a_stop_signal_mid_write_leaves_no_temporary_file(
    tmp_path: Path, sig: str, what: str, args: list[str], target: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = b"old\n"
    if "new" not in target:
        (tmp_path / target).write_bytes(old)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SIG_AT_FSYNC": sig,
        "STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 'straits.db'}",
    }
    p = subprocess.run(
        [sys.executable, "-c", HARNESS, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        # the signals as a terminal or `kill` delivers them (a test runner may ignore SIGINT)
        preexec_fn=lambda: [signal.signal(getattr(signal, s), signal.SIG_DFL) for s in SIGNALS],
    )
    assert p.returncode in (SIGNALS[sig], -getattr(signal, sig)), p.stderr
    assert b"Traceback" not in p.stderr, p.stderr
    assert sorted(f.name for f in out.iterdir() if f.name.endswith(".tmp")) == []
    if "new" in target:  # a new key and its .pub, both whole
        assert len((out / "new").read_bytes()) > 40 and len((out / "new.pub").read_bytes()) > 40
    else:
        data = (tmp_path / target).read_bytes()
        assert data == old or len(data) > len(old)  # the old file or the whole new one
