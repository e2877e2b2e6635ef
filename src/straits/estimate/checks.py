"""What the estimator's Python entry points refuse before estimating: figures no request could
carry (the CLI and the API validate requests first; a caller of ``estimate_training`` or
``estimate_serving`` gets the same refusal, naming the argument, rather than negative,
infinite or NaN chip-hours and costs)."""

from __future__ import annotations

import math

from straits.errors import EstimateError
from straits.model.scenario import ModelSpec


def finite(model: ModelSpec, **figures: float | None) -> None:
    """Infinite or NaN figures (JSON's ``Infinity`` parses) are input errors, not estimates."""
    named = {f"model.{k}": getattr(model, k) for k in ("params", "active_params")}
    named.update(figures)
    for path, value in named.items():
        if value is not None and not math.isfinite(value):
            raise EstimateError(
                f"{path.split('.')[-1]} must be a finite number",
                path=path,
                expected="a finite number",
            )


def price(usd_per_chip_hour: float | None) -> None:
    """A price per chip-hour is a finite number >= 0 (None: the catalog's)."""
    if usd_per_chip_hour is not None and not (
        math.isfinite(usd_per_chip_hour) and usd_per_chip_hour >= 0
    ):
        raise EstimateError(
            f"usd_per_chip_hour {usd_per_chip_hour!r} is not a price",
            path="usd_per_chip_hour",
            expected="a finite number >= 0 (US$ per chip-hour)",
        )


def positive(path: str, value: float | None, what: str) -> None:
    """``value`` (when given) is a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise EstimateError(f"{path} must be positive", path=path, expected=f"{what} > 0")
