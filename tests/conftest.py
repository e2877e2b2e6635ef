from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from straits.rules import RuleSet, ruleset

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"

settings.register_profile(
    "default", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("default")


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return ruleset()


@pytest.fixture(scope="session")
def example_path() -> Path:
    return EXAMPLE
