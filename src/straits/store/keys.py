"""The ledger's signing key lives in a file outside the database.

``straits ledger keygen`` writes the signer key (``PRIVATE+KEY+...``, mode 0600) and, next to
it, ``<file>.pub`` with the verifier key, which is what auditors, tenants and witnesses are given.
Whoever can write the database but cannot read the key file cannot produce a checkpoint the
verifier key accepts.

Where the keys come from: ``--key FILE`` or ``$STRAITS_LEDGER_KEY`` (the signer; its verifier is
derived from it) and ``--pubkey FILE|VKEY`` or ``$STRAITS_LEDGER_PUBKEY`` (a verifier only). With
neither, the ledger still keeps and checks its Merkle tree, but nothing is signed and every check
says that no signature was checked.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from straits import tempfiles
from straits.errors import InputError
from straits.fileio import lock_within
from straits.store.note import NoteError, Signer, Verifier

log = logging.getLogger(__name__)
_warned: set[str] = set()

KEY_ENV = "STRAITS_LEDGER_KEY"
PUBKEY_ENV = "STRAITS_LEDGER_PUBKEY"
MAX_KEY_FILE = 4096
#: seconds keygen waits for a lock on the key's directory (see :func:`_directory_lock`)
LOCK_WAIT_S = 30.0


#: seconds a key handed over a pipe (``--key <(vault read ...)``) may take to arrive
PIPE_WAIT_S = 30.0


def _read_bounded(path: Path) -> bytes:
    """At most ``MAX_KEY_FILE + 1`` bytes of the file. Opened without blocking: a FIFO
    nothing writes to blocked ``open`` forever (``--key FIFO``, or ``STRAITS_LEDGER_KEY``
    naming one at ``straits serve``). What is not a regular file (a pipe from a process
    substitution, a device) is read until its end for at most :data:`PIPE_WAIT_S`."""
    from straits import pipes

    return pipes.read_path(path, MAX_KEY_FILE, PIPE_WAIT_S)


def _read(path: Path, what: str, option: str) -> str:
    try:
        raw = _read_bounded(path)
    except OSError as exc:
        raise InputError(
            f"cannot read the {what}: {exc.strerror or exc}", source=str(path), path=option
        ) from None
    if len(raw) > MAX_KEY_FILE:
        raise InputError(
            f"not a {what}: the file is over {MAX_KEY_FILE} bytes", source=str(path), path=option
        )
    try:
        return raw.removeprefix(b"\xef\xbb\xbf").decode("ascii").strip()  # a BOM: Notepad
    except UnicodeDecodeError:
        raise InputError(
            f"not a {what}: the file is not ASCII text", source=str(path), path=option
        ) from None


def _warn_if_shared(path: Path) -> None:
    """One warning when other users may read the signing key (``ssh`` refuses such keys;
    Straits only warns, since Kubernetes mounts secrets 0644 unless told otherwise)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and str(path) not in _warned:
        _warned.add(str(path))
        log.warning(
            "the ledger signing key %s can be read by other users (mode %04o): whoever reads "
            "it can sign checkpoints; `chmod 600` it",
            path,
            stat.S_IMODE(st.st_mode),
        )


def load_signer(path: str | Path, option: str = "--key") -> Signer:
    from straits.fileio import hold

    hold(path, "the log's signing key", key=True)
    hold(Path(f"{path}.pub"), "the log's public key", key=True)
    text = _read(Path(path), "ledger signing key", option)
    _warn_if_shared(Path(path))
    try:
        signer = Signer.parse(text)
    except NoteError as exc:
        raise InputError(
            str(exc),
            source=str(path),
            path=option,
            # the key's form once: the note's own "(expected ...)" and this one read twice
            expected="a key file written by `straits ledger keygen` "
            "(PRIVATE+KEY+NAME+KEYID+BASE64)",
        ) from None
    _warn_if_pub_differs(Path(path), signer)
    return signer


def _warn_if_pub_differs(path: Path, signer: Signer) -> None:
    """One warning when the ``.pub`` beside the key is another key's (a ``keygen --force``
    killed between its two renames, or a file copied over): auditors given that ``.pub``
    would find every new checkpoint's signature wrong. Nothing is refused: the key signs."""
    pub = path.with_name(path.name + ".pub")
    try:
        if not pub.is_file() or pub.stat().st_size > MAX_KEY_FILE:
            return
        text = pub.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return
    if text != signer.verifier.vkey and str(pub) not in _warned:
        _warned.add(str(pub))
        log.warning(
            "%s is not the public key of %s (an interrupted `keygen --force`?); the key's "
            "public key is %s: write it to %s and give it to auditors and witnesses",
            pub,
            path,
            signer.verifier.vkey,
            pub,
        )


def load_verifier(spec: str, option: str = "--pubkey") -> Verifier:
    """A verifier key given as text (``NAME+KEYID+BASE64``) or as a file holding one (a
    ``.pub`` file). A signer key is refused, naming the option: it was taken silently, its
    public half used, so the private key went where only public keys belong (an auditor's,
    a tenant's or a witness's configuration, a command line in shell history and ``ps``)
    and the one party meant to distrust the log could sign for it. The log's operator
    verifies with ``--key``; everyone else is given the ``.pub``."""
    from straits.fileio import hold, is_file

    text = spec.strip()
    source = None
    if text.count("+") < 2 or is_file(text):
        source = text
        hold(text, "a public key this command reads", key=True)
        text = _read(Path(text), "ledger public key", option)
    if text.startswith("PRIVATE+"):
        beside = f"{source}.pub" if source else "KEY.pub"
        raise InputError(
            "this is the log's PRIVATE signing key, where its public key is expected: whoever "
            "holds it can sign checkpoints for the log (keep it with the log's operator only)",
            source=source,
            path=option,
            expected=f"the public key written beside it by `straits ledger keygen` ({beside}), "
            "or --key for the log's operator",
        )
    try:
        return Verifier.parse(text)
    except NoteError as exc:
        raise InputError(
            str(exc),
            source=source,
            path=option,
            expected="a verifier key NAME+KEYID+BASE64 or a .pub file from `straits ledger keygen`",
        ) from None


@dataclass(frozen=True)
class Keys:
    """The keys in use: a signer (which also verifies), verifiers only, or none."""

    signer: Signer | None = None
    verifiers: tuple[Verifier, ...] = ()
    #: the signer's own record of the last checkpoint it signed (:mod:`.signed_record`)
    record: Path | None = None

    @property
    def trusted(self) -> list[Verifier]:
        vs = list(self.verifiers)
        if self.signer is not None and self.signer.verifier not in vs:
            vs.insert(0, self.signer.verifier)
        return vs

    @property
    def checks_signatures(self) -> bool:
        return bool(self.trusted)


def configured(key: str | Path | None = None, pubkeys: list[str] | None = None) -> Keys:
    """The keys named by the options, else by the environment (empty values are unset).
    ``STRAITS_LEDGER_PUBKEY`` and each ``--pubkey`` may name several verifier keys (the log's
    earlier keys, after rotations): separated by whitespace, commas or newlines, or a file
    holding one key a line."""
    from straits.store import signed_record

    # named after where the key came from: `straits serve` has no --key, and its errors
    # named one (the option's name was chosen after the variable had filled ``key``)
    key_option = "--key" if key else KEY_ENV
    key = key or os.environ.get(KEY_ENV) or None
    if not pubkeys:
        env = os.environ.get(PUBKEY_ENV, "").strip()
        pubkeys = [env] if env else []
        pub_option = PUBKEY_ENV
    else:
        pub_option = "--pubkey"
    signer = load_signer(key, key_option) if key else None
    verifiers: list[Verifier] = []
    for p in pubkeys:
        for v in load_verifiers(p, pub_option):
            if v not in verifiers:
                verifiers.append(v)
    record = signed_record.record_path(key) if key else None
    return Keys(signer, tuple(verifiers), record)


def load_verifiers(spec: str, option: str = "--pubkey") -> list[Verifier]:
    """One or more verifier keys: a ``.pub`` file (one key a line; blank lines and lines
    starting with ``#`` are skipped), or keys and files separated by whitespace, commas or
    newlines (a key's name may hold a comma: a word that is a key or a file is not split)."""
    from straits.fileio import hold, is_file

    text = spec.strip()
    if is_file(text):
        hold(text, "a public key this command reads", key=True)
        lines = [
            line.strip()
            for line in _read(Path(text), "ledger public key", option).splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        if len(lines) > 1:
            for line in lines:
                if is_file(line):  # a list of keys, not of files
                    raise InputError(
                        f"a line of the public key file names a file ({line})",
                        source=text,
                        path=option,
                        expected="one verifier key NAME+KEYID+BASE64 a line",
                    )
            return [_as_verifier(line, text, option) for line in lines]
        return [load_verifier(text, option)]
    words: list[str] = []
    for word in text.split():
        if is_file(word) or _parses(word) or "," not in word:
            words.append(word)
        else:
            words.extend(w for w in word.split(",") if w)
    if not words:
        return [load_verifier(text, option)]  # the error of an empty key
    out: list[Verifier] = []
    for word in words:
        out.extend(load_verifiers(word, option) if is_file(word) else [load_verifier(word, option)])
    return out


def _parses(word: str) -> bool:
    try:
        Verifier.parse(word)
    except NoteError:
        return False
    return True


def _as_verifier(line: str, source: str, option: str) -> Verifier:
    """One line of a public key file: a verifier key (a signer key refused as ever)."""
    if line.startswith("PRIVATE+"):
        return load_verifier(line, option)  # its refusal
    try:
        return Verifier.parse(line)
    except NoteError as exc:
        raise InputError(
            str(exc),
            source=source,
            path=option,
            expected="one verifier key NAME+KEYID+BASE64 a line",
        ) from None


def write_keys(path: Path, signer: Signer, *, force: bool = False) -> Path:
    """Write the signer key to ``path`` (0600) and its verifier key to ``path.pub``; refuses to
    replace an existing key unless ``force``, and refuses a directory, a symbolic link or any
    other non-file at either path (the rules of :mod:`straits.fileio`).

    Without ``force`` the key file is created exclusively (``O_EXCL``): of two ``keygen`` runs
    racing for the same path one wins and the other is refused, so a key never ends up beside
    the other run's ``.pub``."""
    from straits.fileio import output_path

    if str(path) == "-" or not path.name or path.is_dir():
        raise InputError(
            f"{str(path)!r} names no file" + (" (a directory)" if path.is_dir() else ""),
            path="-o",
            expected="the key file's name (its public key goes beside it, .pub)",
        )
    for p in (path, path.with_name(path.name + ".pub")):
        # a directory, link, FIFO or device: refused (a key loaded before may be replaced)
        output_path(p, option="-o", replaces_keys=True)
    pub = path.with_name(path.name + ".pub")
    if not force:
        for p in (path, pub):
            if p.exists():
                raise InputError(
                    f"{p} exists; a ledger key is not replaced unless you say "
                    "--force (checkpoints signed by the old key stay verifiable "
                    "only with its .pub)",
                    path="-o",
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory_lock(path):
        _write_pair(path, pub, signer, force)
    return pub


@contextlib.contextmanager
def _directory_lock(path: Path, wait: float | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the key's directory itself (nothing is left behind): two
    ``keygen --force`` runs for the same path write their key and ``.pub`` one after the other,
    so the pair left is always one run's key beside its own ``.pub``.

    The wait is bounded (:data:`LOCK_WAIT_S`): anyone may ``flock`` a directory they can read
    (``/tmp``: every user), and keygen waited for as long as they held it. A directory that can
    be written but not read (mode 0333 or 0730) cannot be opened to lock: then the lock is on
    ``.<name>.lock`` beside the key (created 0600, left there), as keygen wrote there before
    the lock came in."""

    directory = path.parent
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:
        flags = (
            os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        fd = os.open(directory / f".{path.name}.lock", flags, 0o600)
    try:
        wait = LOCK_WAIT_S if wait is None else wait
        if not lock_within(fd, wait):
            raise InputError(
                f"another process has held a lock on {directory} for {wait:g} s (another "
                "keygen, or anything that locks the directory); nothing was written",
                path="-o",
                expected="a directory no other process keeps locked",
            )
        yield
    finally:
        os.close(fd)  # closing releases the lock


#: what link() answers on a filesystem that has no hard links (FAT, some FUSE and SMB mounts)
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})


def _write_pair(path: Path, pub: Path, signer: Signer, force: bool) -> None:
    """The key, then its ``.pub``. With ``force`` both are written to temporary files beside
    them first (fsynced), then renamed one right after the other, the key first: a run killed
    in between (microseconds, not the time to write and sync a file as before) leaves the new
    key beside the old ``.pub``, which :func:`load_signer` reports; the key is the truth and
    its public half can always be read from it."""
    from straits.fileio import sync_dir, write_output
    from straits.holding import signals_held

    data = (signer.skey + "\n").encode("ascii")
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if not force:
        # written whole under a temporary name, then linked to its name (as exclusive as
        # O_EXCL, and never through a link): created at its name and then written, a keygen
        # killed in between left an empty key there, which every later run refused to replace
        # held back: SIGTERM or SIGHUP mid-write left the temporary file for good (and a key
        # without its .pub); one a keygen killed with SIGKILL left is removed first (left64)
        tempfiles.clear_stale(path)
        with signals_held():
            tmp, fd = _locked_temp(path, data, 0o600)
            try:
                try:
                    os.link(tmp, path)
                except OSError as exc:  # a filesystem without hard links: created, then written
                    if isinstance(exc, FileExistsError) or exc.errno not in _NO_LINKS:
                        raise
                    _write_new(path, data, nofollow)
            except FileExistsError:
                raise InputError(
                    f"{path} exists (another keygen wrote it just now); a ledger key "
                    "is not replaced unless you say --force",
                    path="-o",
                ) from None
            finally:
                tmp.unlink(missing_ok=True)
                os.close(fd)
            sync_dir(path.parent)
            try:
                write_output(pub, signer.verifier.vkey + "\n", option="-o")
            except BaseException:
                # a disk that took the key but not its .pub (mig31) left the key alone, and every
                # later keygen refused to replace it: the key is ours (linked just now), so undo it
                path.unlink(missing_ok=True)
                raise
        return
    tempfiles.clear_stale(path)
    tempfiles.clear_stale(pub)
    temps: list[Path] = []
    fds: list[int] = []
    with signals_held():  # SIGTERM or SIGHUP mid-write left the temporary files for good
        try:
            for target, body, mode in (
                (path, data, 0o600),
                (pub, (signer.verifier.vkey + "\n").encode("ascii"), 0o644),
            ):
                tmp, fd = _locked_temp(target, body, mode)
                temps.append(tmp)
                fds.append(fd)
            os.replace(temps[0], path)
            os.replace(temps[1], pub)
        except BaseException:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            for fd in fds:
                os.close(fd)
    sync_dir(path.parent)


def _locked_temp(target: Path, data: bytes, mode: int) -> tuple[Path, int]:
    """A locked temporary file beside ``target`` (``straits.tempfiles``) holding ``data``,
    fsynced: (its path, its descriptor, to close once it is renamed, linked or removed)."""
    from straits.fileio import write_all

    tmp, fd = tempfiles.create(target, mode)
    try:
        write_all(fd, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        os.close(fd)
        raise
    return tmp, fd


def _write_new(path: Path, data: bytes, flags: int, mode: int = 0o600) -> None:
    """Create ``path`` (``mode``, the umask applied; it must not exist) holding ``data``,
    fsynced; on failure nothing is left there."""
    from straits.fileio import write_all

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, mode)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
