"""What `straits estimate` advises when its answer alone would leave a user stuck: too few
chips to hold the model (and how many would), no layout of the chips asked for, more chips
than the batch uses well (fewer would finish sooner), a run that would take years (and the
cluster that would finish within a quarter), a serving cluster below its throughput target.
Each hint has a ``code``, its figures and a sentence (``docs/contracts.md``, ``guidance``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from straits.catalog import get_chip
from straits.estimate.serving import largest_slice_short

if TYPE_CHECKING:
    from straits.estimate import Estimate
    from straits.model.request import EstimateRequest


#: a training run longer than this many days gets a hint with the cluster that would finish
#: within GUIDE_TARGET_DAYS (frontier pre-training runs take weeks to a few months)
LONG_RUN_DAYS = 365.0
GUIDE_TARGET_DAYS = 90.0
SWEEP_MAX_CHIPS = 65536


def sweep_sizes(est: Estimate) -> list[int]:
    """The fewest chips that fit, then every power of two above it (and the size asked for),
    up to 65,536 chips."""
    start = max(est.min_chips, 1)
    sizes = {start, est.chips} | {1 << k for k in range(31) if start < 1 << k <= SWEEP_MAX_CHIPS}
    return sorted(sizes)


def estimate_guidance(
    req: EstimateRequest, est: Estimate, estimate_at: Callable[[int], Estimate]
) -> list[dict[str, Any]]:
    """Hints for an estimate a user cannot act on as it is: too few chips to hold the model,
    or a run that would take years. Each has a ``code``, the figures, and a sentence.
    ``estimate_at(n)`` estimates the same request on ``n`` chips."""
    out: list[dict[str, Any]] = []
    if req.kind != "train":
        short = largest_slice_short(get_chip(est.chip), est.min_chips)
        if short is not None:  # no slice of the chip holds one replica: more chips do not help
            out.append(
                {
                    "code": "fits-nowhere",
                    "chips": est.chips,
                    "largest_tried": short,
                    "text": f"no {est.chip} slice holds one replica of this model "
                    f"({est.min_chips:,} chips; the largest slice is {short:,}): a smaller "
                    "model or a chip with more memory",
                }
            )
        elif not est.fits:
            out.append(
                {
                    "code": "needs-more-chips",
                    "chips": est.chips,
                    "min_chips": est.min_chips,
                    "text": f"{est.chips:,} x {est.chip} cannot serve this model: it needs "
                    f"at least {est.min_chips:,} (--chips {est.min_chips})",
                }
            )
        elif est.serving and est.chips < (
            need := est.serving["replicas"] * est.serving["replica_chips"]
        ):
            out.append(
                {
                    "code": "below-target",
                    "chips": est.chips,
                    "chips_for_target": need,
                    "text": f"{est.chips:,} x {est.chip} serve less than the "
                    f"{req.tokens_per_s or 0:,.0f} output tokens/s asked for, which need "
                    f"{need:,} (without `chips` the estimate is sized to it)",
                }
            )
        return out
    at = est
    if not est.fits:
        at = estimate_at(est.min_chips)
        if not at.fits:  # min_chips is then only the largest cluster tried
            out.append(_fits_nowhere(req, est))
            return out
        if est.chips < est.min_chips:
            out.append(
                {
                    "code": "needs-more-chips",
                    "chips": est.chips,
                    "min_chips": est.min_chips,
                    "days_at_min_chips": round(at.days, 1),
                    "text": f"{est.chips:,} x {est.chip} cannot hold this model and its "
                    f"training state: it needs at least {est.min_chips:,} chips "
                    f"(--chips {est.min_chips}), which would take {at.days:,.0f} days; "
                    "the figures above are for a cluster that does not fit",
                }
            )
        else:
            hint, at = _fewer_chips(est, at, estimate_at)
            out.append(hint)
    elif est.chips > est.min_chips and (sooner := _sooner(est, estimate_at)) is not None:
        out.append(
            {
                "code": "fewer-chips-faster",
                "chips": est.chips,
                "days": round(est.days, 1),
                "chips_that_finish_sooner": sooner.chips,
                "days_at_those_chips": round(sooner.days, 1),
                "text": f"{sooner.chips:,} x {est.chip} would finish sooner than {est.chips:,}"
                f" ({sooner.days:,.1f} days against {est.days:,.1f}; --chips {sooner.chips}): "
                f"a global batch of {est.batch_tokens:,.0f} tokens gives the replicas of "
                f"{est.chips:,} too few sequences each to hide the pipeline bubble and the "
                "communication; or give a larger `global_batch_tokens`",
            }
        )
    if at.days > LONG_RUN_DAYS:
        best = None
        for n in sweep_sizes(at):
            if n <= at.chips:
                continue
            e = estimate_at(n)
            if e.fits and e.days <= GUIDE_TARGET_DAYS:
                best = e
                break
        hint = {
            "code": "long-run",
            "chips": at.chips,
            "days": round(at.days, 1),
            "target_days": GUIDE_TARGET_DAYS,
            "chips_for_target": best.chips if best is not None else None,
            "days_at_those_chips": round(best.days, 1) if best is not None else None,
        }
        if best is not None:
            hint["text"] = (
                f"at {at.chips:,} chips the run takes {at.days:,.0f} days; "
                f"{best.chips:,} x {est.chip} would finish in about "
                f"{best.days:,.0f} days (--chips {best.chips}; --sweep chips "
                "shows every size)"
            )
        else:
            hint["text"] = (
                f"at {at.chips:,} chips the run takes {at.days:,.0f} days, and "
                f"even {SWEEP_MAX_CHIPS:,} x {est.chip} would not finish within "
                f"{GUIDE_TARGET_DAYS:,.0f} days: fewer tokens, a smaller model or "
                "a faster chip"
            )
        out.append(hint)
    return out


#: a smaller cluster is worth a hint when it finishes at least this much sooner
SOONER = 0.99


def _sooner(est: Estimate, estimate_at: Callable[[int], Estimate]) -> Estimate | None:
    """The fastest of the fewest chips and the powers of two below the cluster asked for, when
    it finishes sooner than that cluster: with the global batch held, more chips give each
    replica fewer sequences a step, and past a point the pipeline bubble and exposed
    communication grow faster than the work per chip falls."""
    best = None
    for n in sweep_sizes(est):
        if n >= est.chips:
            break
        e = estimate_at(n)
        if e.fits and e.hours < est.hours * SOONER and (best is None or e.hours < best.hours):
            best = e
    return best


def _fits_nowhere(req: EstimateRequest, est: Estimate) -> dict[str, Any]:
    return {
        "code": "fits-nowhere",
        "chips": est.chips,
        "largest_tried": est.min_chips,
        "text": f"no cluster of up to {est.min_chips:,} x {est.chip} holds this model with "
        f"{req.model.seq_len:,}-token sequences (the figures above are for a cluster that "
        "does not fit): a shorter `seq_len`, a smaller model or a chip with more memory",
    }


def _fewer_chips(
    est: Estimate, fewest: Estimate, estimate_at: Callable[[int], Estimate]
) -> tuple[dict[str, Any], Estimate]:
    """No layout of the chips asked for (more than the batch feeds, or a count no layout that
    fits divides): the fastest size that fits, of the fewest chips and the powers of two up
    to those asked for (with its estimate)."""
    best = fewest
    for n in sweep_sizes(fewest):
        if n > est.chips:
            break
        e = estimate_at(n)
        if e.fits and e.hours < best.hours:
            best = e
    hint = {
        "code": "no-layout",
        "chips": est.chips,
        "chips_that_fit": best.chips,
        "days_at_those_chips": round(best.days, 1),
        "text": f"no layout of {est.chips:,} x {est.chip} holds this run (see the note: more "
        "replicas than the global batch feeds, or no split of that many chips that fits); "
        f"{best.chips:,} chips would take {best.days:,.1f} days (--chips {best.chips}), "
        "or give a larger `global_batch_tokens`",
    }
    return hint, best
