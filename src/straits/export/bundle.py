"""Writing an export's files into a folder: all of them or none, one export at a time, and
nothing left over from the export that was there before.

A folder an export writes into holds a manifest (:data:`MANIFEST`, the files that export
wrote) and a lock file (:data:`LOCK`). Two exports into one folder at once take turns on the
lock, so the folder ends up holding one export's files, never a mix of two plans. An export
into a folder that held an earlier export removes the files the earlier one wrote under the
targets' folders this one writes (``slurm/``, ``kubernetes/``...) and this one does not (a stage
that moved to another site would otherwise leave its old manifest behind, and ``kubectl apply
-R`` of the folder would run both). Other targets' folders (``--to slurm`` then ``--to
kubernetes`` into one folder) and files Straits did not write are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from straits.errors import InputError
from straits.fileio import write_atomically
from straits.holding import signals_held

#: the file listing what the last export into a folder wrote
MANIFEST = ".straits-export.json"
#: the lock file two exports into one folder take turns on
LOCK = ".straits-export.lock"
#: the prefix of an export's staging folder inside the folder it writes into
STAGING = ".straits-export-"
#: what staged files end in until they are moved into place
PART = ".straits-part"
#: a manifest larger than this is not one Straits wrote (it is ignored, nothing is removed)
MAX_MANIFEST_BYTES = 1 << 20


def write_bundle(
    out_dir: Path,
    files: Mapping[str, str],
    *,
    executable: tuple[str, ...] = (),
    targets: Iterable[str] = (),
) -> list[Path]:
    """Write every file under ``out_dir`` or none: files are written into a staging folder
    inside it and moved into place once all are written (each move is atomic), under the
    folder's lock; then the files of the previous export there that this one does not write
    (under the same targets' folders) are removed.

    An export killed while staging leaves its staging folder behind: its files end in
    :data:`PART`, so no tool that picks files by their extension (``kubectl apply -R``, a glob
    of ``*.sbatch``) takes them, and the next export into the folder removes it (staging
    happens under the lock, so a staging folder found there is a dead export's).

    ``targets`` names target folders this export replaces although it writes nothing there
    (``--to all`` with no site mapped to SkyPilot): the earlier export's files there go too,
    or its ``skypilot/launch.sh`` stayed beside this plan's other targets."""
    new_dirs = _missing(out_dir)  # the folders this export makes for itself, outermost first
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = _locked(out_dir)
    with lock:  # folders too: another export may remove the ones it emptied
        try:
            return _write_locked(out_dir, files, executable, targets)
        except BaseException:
            # a failed export into a folder it made (a full disk) leaves no folder and no lock
            # behind; a lock it did not make, or a folder holding anything, stays (web33)
            if lock.created:
                lock.remove()
                for folder in reversed(new_dirs):
                    with contextlib.suppress(OSError):
                        folder.rmdir()  # only an empty one
            raise


def _write_locked(
    out_dir: Path, files: Mapping[str, str], executable: tuple[str, ...], targets: Iterable[str]
) -> list[Path]:
    """:func:`write_bundle` under the folder's lock."""
    written = []
    _remove_leftovers(out_dir)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=STAGING))
    made: list[Path] = []  # the folders this export made, so a failure takes them back
    try:
        for rel, text in files.items():
            tmp = staging / (rel + PART)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            if rel.endswith(executable) and executable:
                tmp.chmod(0o755)
        root = out_dir.resolve()
        for rel in files:  # every folder first: a clash fails before any file moves
            _refuse_link_out(out_dir, root, rel)
            made += _make_folders(out_dir, (out_dir / rel).parent)
            if (out_dir / rel).is_dir():
                raise IsADirectoryError(f"{out_dir / rel} is a directory")
        before = _manifest(out_dir)
        # Ctrl-C or a SIGTERM waits until every file is in place: stopped half way, the
        # folder held part of this plan beside part of the last (a new apply.sh naming old
        # manifests). A crash (kill -9) between here and the last line leaves a manifest
        # naming both exports' files, so the next export still removes what this one moved
        with signals_held():
            _write_manifest(out_dir, before | set(files))
            for rel in files:
                dest = out_dir / rel
                os.replace(staging / (rel + PART), dest)
                written.append(dest)
            mine = {_top(f) for f in files} | set(targets)
            stale = {r for r in before - set(files) if _top(r) in mine}
            _remove(out_dir, stale)
            _write_manifest(out_dir, (before - stale) | set(files))
    except BaseException:
        # a refused export leaves the folder as it was: it left the target folders it
        # had made empty (karmada/, kubernetes/<cluster>/...) beside the old files
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one: files moved in stay
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _missing(folder: Path) -> list[Path]:
    """``folder`` and the folders on its way that do not exist, the outermost first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))


def _make_folders(out_dir: Path, folder: Path) -> list[Path]:
    """Make ``folder`` (inside ``out_dir``) and the folders on its way; the ones made, the
    outermost first."""
    missing = []
    while folder != out_dir and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        f.mkdir(exist_ok=True)
    return list(reversed(missing))


def _remove_leftovers(out_dir: Path) -> None:
    """Remove the staging folders of exports killed before they finished (never a link)."""
    for entry in out_dir.iterdir():
        if entry.name.startswith(STAGING) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _refuse_link_out(out_dir: Path, root: Path, rel: str) -> None:
    """Refuse ``rel`` when a folder on its way is a link out of the folder (``slurm`` a link to
    another directory, planted in a shared folder such as /tmp/jobs): the files were written
    through it. The deepest folder of the way that exists is checked, before any is made."""
    folder = (out_dir / rel).parent
    while folder != out_dir and not folder.exists():
        folder = folder.parent
    real = folder.resolve()
    if real != root and root not in real.parents:
        raise InputError(
            f"{folder} is a link out of {out_dir} (to {real}); nothing was written",
            path="-o",
            expected="a folder whose subfolders are its own (remove the link, or export "
            "to another folder)",
        )


class _locked:
    """An exclusive ``flock`` on the folder's lock file for the ``with`` block; ``created``
    when this export made the lock file (a failed export removes it again: :meth:`remove`).

    A lock file can be removed while another export waits on it, so the lock is held only
    once the file locked is still the one the folder holds (else it is opened again)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK
        self.fd = -1
        self.created = False

    def __enter__(self) -> None:
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        while True:
            try:
                self.fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o666)
                self.created = True
            except FileExistsError:
                try:
                    self.fd = os.open(self.path, flags)
                except FileNotFoundError:  # removed meanwhile by a failed export
                    continue
                self.created = False
            except FileNotFoundError:  # the folder too, made by a failed export: again
                self.path.parent.mkdir(parents=True, exist_ok=True)
                continue
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            if self._current():
                return
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def _current(self) -> bool:
        """Whether the file locked is the folder's lock file now."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(self.fd)
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Remove the lock file (held): an export waiting on it opens the folder's again."""
        with contextlib.suppress(OSError):
            if self._current():
                self.path.unlink()

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _manifest(out_dir: Path) -> set[str]:
    """The files the previous export recorded; an unreadable or foreign manifest names none
    (so nothing is removed on its word)."""
    path = out_dir / MANIFEST
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
            return set()
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names = data.get("files") if isinstance(data, dict) else None
    if not isinstance(names, list):
        return set()
    return {n for n in names if isinstance(n, str) and _inside(n)}


def _top(rel: str) -> str:
    """The first folder of a path in the bundle (each target writes under its own)."""
    return Path(rel).parts[0]


def _inside(rel: str) -> bool:
    """A relative path that stays inside the folder (no absolute path, no ``..``)."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts and "\x00" not in rel


def _write_manifest(out_dir: Path, names: Iterable[str]) -> None:
    write_atomically(out_dir / MANIFEST, json.dumps({"files": sorted(names)}, indent=1) + "\n")


def _remove(out_dir: Path, stale: set[str]) -> None:
    """Remove the previous export's regular files this one does not write (never a folder, a
    link or a device), then the folders that removal left empty."""
    root = out_dir.resolve()
    for rel in sorted(stale):
        path = out_dir / rel
        try:
            if root not in path.parent.resolve().parents and path.parent.resolve() != root:
                continue  # a folder on the way is a link out of the export's folder
            if stat.S_ISREG(path.lstat().st_mode):
                path.unlink()
        except OSError:
            continue
        parent = path.parent
        while parent != out_dir and out_dir in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
