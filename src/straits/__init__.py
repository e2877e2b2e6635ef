"""Straits: where AI training and serving may run across borders, within the rules, and the
proof. The Python API is :mod:`straits.api` (checks, estimates, catalog, rules, plan documents)
and :func:`straits.plan.make_plan`; :mod:`straits.client` talks to a Straits server. The CLI, the
REST server and the demo are shells over them."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("straits")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def __getattr__(name: str) -> str:
    # read on first use: importlib.metadata costs more than the rest of `straits --help`
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'straits' has no attribute {name!r}")
