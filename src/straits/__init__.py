"""Straits: where AI training and serving may run across borders, within the rules, and the
proof. The Python API is :mod:`straits.api` (checks, estimates, catalog, rules) and
:func:`straits.plan.make_plan`; the CLI, the REST server and the demo are shells over them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("straits")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
