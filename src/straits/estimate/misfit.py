"""Why no layout of a cluster holds a training run: the note an estimate that does not fit
carries."""

from __future__ import annotations

from straits.catalog import Chip
from straits.estimate.calibration import Calibration
from straits.estimate.efficiency import Efficiency, predict
from straits.estimate.layout import layouts
from straits.estimate.steptime import max_data_parallel
from straits.model.scenario import ModelSpec


def misfit(
    model: ModelSpec,
    chip: Chip,
    n: int,
    need: int,
    eff: Efficiency,
    batch: float,
    cal: Calibration,
    year: int,
) -> str:
    """Why no layout of ``n`` chips fits: too few chips for the training state, none at all
    (``need`` is then only the largest size tried), or more replicas than the batch feeds."""
    state = f"{model.params * 16 / 1e9:,.0f} GB of weights, gradients and Adam states"
    leanest = (
        f"the leanest layout ({eff.layout.describe()}) needs {eff.memory.total_gb:,.1f} GB "
        f"per chip of {chip.memory_gb:g} GB"
    )
    if not predict(model, chip, need, batch, cal, year).fits:
        return (
            f"does not fit on any cluster: {state} plus activations of {model.seq_len:,}-token "
            f"sequences fit on none of up to {need:,} x {chip.id}; on {n:,} {leanest}"
        )
    if n < need:
        return (
            f"does not fit: {state} plus activations need at least {need:,} x {chip.id}; "
            f"on {n:,} {leanest}"
        )
    feeds = max_data_parallel(batch, model.seq_len)
    if any(lay.dp <= feeds for lay in layouts(model, n)):
        return (
            f"does not fit: no layout of {n:,} x {chip.id} holds it ({need:,} chips do, with a "
            f"split {n:,} does not divide into); on {n:,} {leanest}"
        )
    return (
        f"does not fit: a global batch of {batch:,.0f} tokens feeds at most {feeds:,} "
        f"data-parallel replicas of {model.seq_len:,}-token sequences, and no layout of {n:,} "
        f"x {chip.id} (tensor x pipeline parallel within the model's heads and layers) has so "
        f"few; fewer chips, or a larger `global_batch_tokens`"
    )
