"""The choices of CLI options, as plain literals: the models they mirror import pydantic and
the catalog, which `straits --help` must not pay for. A test checks they stay equal."""

from __future__ import annotations

from typing import Literal

Regime = Literal["enacted", "ai-diffusion"]
#: seconds a plan may take by default (straits.plan.DEFAULT_TIME_LIMIT); the solvers and
#: objectives come from straits.plan.registry
DEFAULT_TIME_LIMIT = 20.0
