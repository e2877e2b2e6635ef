"""A hostile pass on the estimator and what consumes its interval: extreme but valid requests,
clusters the batch cannot feed, models no cluster holds, and the figures' consistency."""

from __future__ import annotations

import pytest

from straits.catalog import get_chip
from straits.estimate import estimate_training, typical_chips
from straits.model.scenario import ModelSpec

H100 = get_chip("H100-SXM")
SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}


# --- the typical cluster fits -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "tokens"),
    [
        # 122 sequences a step feed at most 122 replicas: 2,264 = 8 x 283 has no layout they feed
        ({**SMALL, "seq_len": 8192, "global_batch_tokens": 1e6}, 2e13),
        # one sequence a step: one replica, at most TP8 x PP32 chips
        ({**SMALL, "global_batch_tokens": 4096}, 1e12),
    ],
)
def test_the_typical_cluster_is_one_the_batch_can_feed(shape: dict, tokens: float) -> None:
    model = ModelSpec(**shape)
    n = typical_chips(model, tokens, H100)
    assert estimate_training(model, tokens, H100, n).fits
