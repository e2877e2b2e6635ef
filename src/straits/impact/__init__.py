"""Drift: what rule, price and capacity changes do to recorded plans (`straits impact`)."""

from straits.impact.drift import Change, PlanImpact, impact
from straits.impact.overrides import Overrides, load_overrides

__all__ = ["Change", "Overrides", "PlanImpact", "impact", "load_overrides"]
