"""The CLI's defaults: ``straits.toml`` and the XDG base directories.

Where a value comes from, first match wins: the command's flag, its environment variable
(``STRAITS_DATABASE_URL``, ``STRAITS_ACTOR``, ``STRAITS_SERVER``, ``STRAITS_TOKEN``), the config
file, the built-in default. The config file is ``$XDG_CONFIG_HOME/straits/straits.toml``
(``~/.config/straits/straits.toml``), or the file named by ``--config`` / ``STRAITS_CONFIG``;
the default database is ``$XDG_DATA_HOME/straits/straits.db`` (``~/.local/share/...``). The
same XDG paths are used on every operating system, as ``gh`` and ``git`` do, so a dotfiles
repository works everywhere.

Imports only the standard library (it runs on every command, before anything heavy).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from straits.errors import InputError

CONFIG_ENV = "STRAITS_CONFIG"
#: key -> (type, what it is); the only keys straits.toml may hold
KEYS: dict[str, tuple[type, str]] = {
    "database": (
        str,
        "database URL, e.g. sqlite:////srv/straits.db or postgresql+psycopg://USER@HOST/DB",
    ),
    "rules": (list, "directories of extra rule packs (relative to the config file)"),
    "actor": (str, "who records ledger entries (default cli:USER)"),
    "server": (str, "a Straits server URL: commands run against it (--server)"),
    "token": (str, "the API token sent to the server (better: STRAITS_TOKEN)"),
}


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "")
    # the XDG spec: a relative path in the variable is invalid and must be ignored
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_home() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share")


def default_config_path() -> Path:
    return config_home() / "straits" / "straits.toml"


def default_database_path() -> Path:
    return data_home() / "straits" / "straits.db"


def default_database_url() -> str:
    return f"sqlite:///{default_database_path()}"


@dataclass(frozen=True)
class Config:
    """What straits.toml says (every field None or empty when there is no file)."""

    path: Path | None = None
    """the file read, if any"""
    database: str | None = None
    rules: tuple[Path, ...] = ()
    actor: str | None = None
    server: str | None = None
    token: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "rules": [str(p) for p in self.rules],
            "actor": self.actor,
            "server": self.server,
            "token": "(set)" if self.token else None,
        }


def load_config(path: Path | None = None) -> Config:
    """Read ``path`` (it must exist), else ``$STRAITS_CONFIG`` (it must exist), else the
    default file when there is one."""
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    if path is None:
        path = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else default_config_path()
    path = path.expanduser()
    if not explicit and not path.is_file():
        return Config()
    label = str(path)
    try:
        raw = _read_bounded(path, label)
    except FileNotFoundError:
        raise InputError(
            "config file not found",
            source=label,
            expected="a straits.toml file (see `straits config path`)",
        ) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a config file", source=label) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=label) from None
    import tomllib  # only when there is a file to read

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=label, expected="a TOML file") from None
    except tomllib.TOMLDecodeError as exc:  # its message names the line and column
        raise InputError(f"not valid TOML: {exc}", source=label) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise InputError(
            "nested too deeply to be a config file",
            source=label,
            expected="a TOML file of top-level keys",
        ) from None
    return _validate(data, path)


#: the largest config file read: a real one is a few hundred bytes
MAX_CONFIG_BYTES = 1 << 20


def _read_bounded(path: Path, label: str) -> bytes:
    """The file's bytes, refusing what is not a regular file before opening it (a FIFO
    blocked the command forever in ``open``; ``/dev/zero`` was read until memory ran out) and
    anything over :data:`MAX_CONFIG_BYTES`."""
    mode = path.stat().st_mode  # follows a link: the file it names is what is read
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(str(path))
    if not stat.S_ISREG(mode):
        raise InputError("is not a regular file", source=label, expected="a straits.toml file")
    with path.open("rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise InputError(
            f"more than {MAX_CONFIG_BYTES:,} bytes",
            source=label,
            expected="a straits.toml file of a few keys",
        )
    return raw


def _validate(data: dict[str, Any], path: Path) -> Config:
    label = str(path)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in KEYS:
            raise InputError(
                "unknown key", source=label, path=key, expected="one of " + ", ".join(KEYS)
            )
        kind, what = KEYS[key]
        if kind is list:
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                raise InputError("must be a list of paths", source=label, path=key, expected=what)
            values[key] = tuple(_relative_to(path, v) for v in value)
        elif not isinstance(value, str) or not value.strip():
            raise InputError(
                f"must be a non-empty string, got {type(value).__name__}",
                source=label,
                path=key,
                expected=what,
            )
        else:
            values[key] = value.strip()
            _check_value(key, values[key], label, what)
    warnings = []
    if values.get("token") and _readable_by_others(path):
        warnings.append(f"{label} holds an API token and others can read it: chmod 600 {label}")
    return Config(path=path, warnings=tuple(warnings), **values)


#: what a ledger entry may name as its actor (``store.ledger.check_who``): no control
#: character, no lone surrogate, at most 200 characters
_ACTOR = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,200}")


def _check_value(key: str, value: str, label: str, what: str) -> None:
    """Refuse here, naming the file, a value every command would refuse later as if it had
    come from a flag the user never passed (``--actor``, ``--server``, ``--token``)."""
    if key == "actor":
        ok = bool(_ACTOR.fullmatch(value))
    elif key == "server":
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
    elif key == "token":
        ok = value.isascii() and value.isprintable() and " " not in value and len(value) <= 512
    else:
        return
    if not ok:
        text = (
            "is not a token `straits tokens create` makes"
            if key == "token"
            else f"{value[:80]!r} is not a valid {key}"
        )
        raise InputError(text, source=label, path=key, expected=what)


def _relative_to(config: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (config.parent / p)


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False
