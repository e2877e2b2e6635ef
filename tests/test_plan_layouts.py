"""A plan document's ``layout`` is held to its chips (``plan_fields.layout_fits``): the exports
pass its degrees to the job as ``STRAITS_TP`` and the rest, so an edited plan's layout must be
one the estimator could have written (a fresh-eye attack, then a review of the fix)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.estimate.layout import Layout
from straits.plan_fields import layout_fits

CASES = [  # (layout, chips, accepted)
    ("TP4 PP1 DP512 ZeRO-3", 2048, True),
    ("TP2 PP1 DP32 ZeRO-3 recompute=selective", 64, True),
    ("TP8 PP4 DP16 EP8 ZeRO-1 recompute=full", 512, True),
    ("TP4 PP8", 32, True),  # degrees not all given: a divisor is enough
    ("TPUv5 TP4 PP1 DP2", 8, True),  # a part of another name is kept as it is
    ("", 8, True),
    ("TP3 PP7 DP5 EP0 ZeRO-9", 2048, False),
    ("TP8 PP1 DP1 ZeRO-1", 2048, False),  # TP x PP x DP is not the chips
    ("TP8 PP3", 2048, False),  # no divisor of the chips
    ("TP04 PP1 DP512", 2048, False),  # bash reads 04 as octal, 08 as an error
    ("TP4 TP4 PP1 DP512", 2048, False),
    ("TP4 PP1 DP512 EP3", 2048, False),  # EP runs inside the DP replicas
    ("TP4 PP1 DP512 ZeRO-9", 2048, False),
    ("TP4 PP1 DP512 recompute=yes", 2048, False),
    ("TP" + "9" * 25 + " PP1 DP1", 2048, False),
    ("TP4096 PP1 DP1", 2048, False),
]


@pytest.mark.parametrize(("layout", "chips", "accepted"), CASES)
def test_layouts_are_held_to_their_chips(layout: str, chips: int, accepted: bool) -> None:
    if accepted:
        assert layout_fits(layout, chips) == layout
    else:
        with pytest.raises(ValueError):
            layout_fits(layout, chips)


@given(
    st.sampled_from((1, 2, 4, 8)),
    st.sampled_from((1, 2, 4, 8, 16)),
    st.integers(1, 512),
    st.sampled_from((1, 2, 4, 8)),
    st.sampled_from((1, 3)),
    st.sampled_from(("none", "selective", "full")),
)
def test_every_layout_the_estimator_writes_is_accepted(
    tp: int, pp: int, dp: int, ep: int, zero: int, recompute: str
) -> None:
    if dp % ep:
        ep = 1
    lay = Layout(tp * pp * dp, tp=tp, pp=pp, ep=ep, zero=zero, recompute=recompute)  # type: ignore[arg-type]
    assert layout_fits(lay.describe(), lay.chips) == lay.describe()
