"""Two CLI processes writing the same output at once (a careless operator's cron and shell):
the file left is one run's output, whole; never a mix, a truncation or a stray temporary
file. Two `ledger keygen` for one path: exactly one wins, and its key matches its .pub."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from straits.store.keys import load_signer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    f = tar.extractfile(member)
    assert f is not None
    return f.read().decode()


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )


def _both(a: subprocess.Popen[str], b: subprocess.Popen[str]) -> list[int]:
    codes = []
    for p in (a, b):
        p.communicate(timeout=300)
        codes.append(p.returncode)
    return codes


def test_two_generates_to_one_file_leave_one_whole_output(tmp_path: Path) -> None:
    out = tmp_path / "s.yaml"
    runs = [
        ["scenario", "generate", "--workloads", "200", "--sites", "30", "--seed", str(s)]
        for s in (1, 2)
    ]
    expected = [
        subprocess.run(
            [sys.executable, "-m", "straits", *r], capture_output=True, text=True, check=True
        ).stdout
        for r in runs
    ]
    assert expected[0] != expected[1]
    for _ in range(3):
        codes = _both(*(_start(*r, "-o", str(out), cwd=tmp_path) for r in runs))
        assert codes == [0, 0]
        assert out.read_text() in expected
        assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]  # no temporary file left


def test_two_exports_to_one_archive_leave_one_whole_archive(tmp_path: Path) -> None:
    out = tmp_path / "jobs.tar.gz"
    runs = [
        ["export", str(EXAMPLE), "--to", "slurm", "--run", cmd, "-o", str(out)]
        for cmd in ("python a.py", "python b.py")
    ]
    codes = _both(*(_start(*r, cwd=tmp_path) for r in runs))
    assert codes == [0, 0]
    with tarfile.open(out) as tar:  # a whole archive: every member reads to its end
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".sbatch")]
        texts = [_read(tar, m) for m in members]
    assert texts
    commands = {c for c in ("python a.py", "python b.py") if any(c in t for t in texts)}
    assert len(commands) == 1  # one run's files, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.tar.gz"]


def test_two_keygens_for_one_path_one_wins_and_its_key_matches_its_pub(tmp_path: Path) -> None:
    for i in range(3):
        key = tmp_path / f"k{i}"
        codes = _both(
            *(
                _start("ledger", "keygen", "-o", str(key), "--origin", f"log{n}", cwd=tmp_path)
                for n in (1, 2)
            )
        )
        assert sorted(codes) == [0, 2]
        pub = key.with_name(key.name + ".pub").read_text().strip()
        assert load_signer(key).verifier.vkey == pub


def test_forced_key_writes_never_leave_a_key_beside_another_runs_pub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic interleaving: the first writer is slow between its key and its .pub (the
    two renames), the second starts in that gap. Without the directory lock the second's key
    would be left beside the first's .pub; with it, the second waits and the pair left is its
    own."""
    from straits.store.keys import write_keys
    from straits.store.note import Signer

    real = os.replace
    slow = threading.Event()

    def replace(src: str | Path, dst: str | Path) -> None:
        real(src, dst)
        if threading.current_thread().name == "first" and Path(dst).name == "k":
            slow.set()
            time.sleep(0.5)

    monkeypatch.setattr(os, "replace", replace)
    key = tmp_path / "k"
    signers = {"first": Signer.generate("one"), "second": Signer.generate("two")}
    threads = [
        threading.Thread(target=write_keys, args=(key, signers[n]), kwargs={"force": True}, name=n)
        for n in ("first", "second")
    ]
    threads[0].start()
    assert slow.wait(10)
    threads[1].start()
    for t in threads:
        t.join(10)
    pub = key.with_name("k.pub").read_text().strip()
    assert load_signer(key).verifier.vkey == pub == signers["second"].verifier.vkey


@pytest.mark.parametrize("killed_at", ["k", "k.pub"])
def test_a_forced_keygen_killed_between_its_renames(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    killed_at: str,
) -> None:
    """Both files are written (and synced) before either is renamed: killed before the key's
    rename, the old pair stands; killed between the two renames, the new key stands beside
    the old .pub, and loading the key says so (naming the .pub and the key's public key). No
    temporary file is left either way."""
    import logging

    import straits.store.keys as keys
    from straits.store.note import Signer

    key = tmp_path / "k"
    old, new = Signer.generate("old"), Signer.generate("new")
    keys.write_keys(key, old)
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == killed_at:
            raise KeyboardInterrupt  # the signal arrives here
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        keys.write_keys(key, new, force=True)
    monkeypatch.setattr(os, "replace", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "k.pub"]
    assert key.with_name("k.pub").read_text().strip() == old.verifier.vkey
    caplog.set_level(logging.WARNING, logger="straits.store.keys")
    keys._warned.clear()
    signer = load_signer(key)
    load_signer(key)  # said once
    if killed_at == "k":
        assert signer.verifier.vkey == old.verifier.vkey
        assert not caplog.records
    else:
        assert signer.verifier.vkey == new.verifier.vkey
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert new.verifier.vkey in caplog.text and "k.pub" in caplog.text


def test_keygen_waits_a_bounded_time_for_a_lock_another_process_holds_on_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who can read a directory can flock it (``/tmp``: every user): keygen waited for
    as long as they held it. Now it waits LOCK_WAIT_S, then refuses, naming -o, and writes
    nothing; once the lock is gone it writes its pair."""
    import fcntl

    import straits.store.keys as keys
    from straits.errors import InputError
    from straits.store.note import Signer

    monkeypatch.setattr(keys, "LOCK_WAIT_S", 0.3)
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # an unrelated holder (its own open file description)
    key = tmp_path / "k"
    try:
        for force in (False, True):
            with pytest.raises(InputError) as err:
                keys.write_keys(key, Signer.generate("one"), force=force)
            assert err.value.path == "-o"
            assert sorted(p.name for p in tmp_path.iterdir()) == []
    finally:
        os.close(fd)
    signer = Signer.generate("two")
    keys.write_keys(key, signer, force=True)
    assert load_signer(key).verifier.vkey == key.with_name("k.pub").read_text().strip()


def test_keygen_into_a_directory_it_may_write_but_not_read_locks_a_file_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drop-box directory (mode 0333: write and search, no read) cannot be opened to flock:
    keygen was refused there ('cannot write: Permission denied') though it can write its
    files. It locks ``.k.lock`` beside the key instead. (Simulated: root may open any
    directory.)"""
    import straits.store.keys as keys
    from straits.store.note import Signer

    real = os.open
    box = tmp_path / "box"
    box.mkdir()

    def no_read(path: object, flags: int, *a: object, **kw: object) -> int:
        if Path(str(path)) == box and not flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_read)
    key = box / "k"
    for n, force in enumerate((False, True)):
        signer = Signer.generate(f"s{n}")
        keys.write_keys(key, signer, force=force)
        assert key.with_name("k.pub").read_text().strip() == signer.verifier.vkey
        assert load_signer(key).verifier.vkey == signer.verifier.vkey
    assert sorted(p.name for p in box.iterdir()) == [".k.lock", "k", "k.pub"]
