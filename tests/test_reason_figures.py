"""A reason quotes the request's figures exactly enough to agree with the threshold it cites
(atk71: weights of 1.00000001e26 operations were said to be trained with `1e+26 operations
(> 1e26)`)."""

from __future__ import annotations

import pytest

from straits.model.request import CheckRequest
from straits.rules import RuleSet
from straits.rules.decision import _shortest


@pytest.mark.parametrize(
    ("x", "text"),
    [(2e26, "2e+26"), (1.00000001e26, "1.00000001e+26"), (2.5e18, "2.5e+18"), (1e26, "1e+26")],
)
def test_a_figure_is_quoted_in_the_fewest_digits_that_read_back(x: float, text: str) -> None:
    assert _shortest(x) == text
    assert float(_shortest(x)) == x


def test_weights_just_above_the_threshold_are_quoted_above_it(rules: RuleSet) -> None:
    req = CheckRequest.model_validate(
        {
            "date": "2025-06-01",
            "regime": "ai-diffusion",
            "action": "transfer-weights",
            "tenant": {"hq": "US"},
            "site": {"country": "SG", "operator_hq": "SG"},
            "weights": {"training_ops": 1.00000001e26, "open": False, "from_country": "US"},
        }
    )
    got = rules.check(req)
    (reason,) = [r for r in got.reasons if r.rule == "us-diffusion-4e091-tier2"]
    quoted = [float(w) for w in reason.text.split() if w[0].isdigit() and "e+" in w]
    assert quoted and quoted[0] > 1e26
