"""Moving datasets and model weights between sites: hours at the WAN speed, egress cost."""

from __future__ import annotations

from straits.model.scenario import ModelSpec, Site

WEIGHT_BYTES_PER_PARAM = 2.0  # BF16 checkpoint


def transfer_hours(size_gb: float, src: Site, dst: Site) -> float:
    if src.id == dst.id or size_gb <= 0:
        return 0.0
    gbps = min(src.wan_gbps, dst.wan_gbps)
    return size_gb * 8.0 / gbps / 3600.0


def egress_usd(size_gb: float, src: Site, dst: Site) -> float:
    return 0.0 if src.id == dst.id else size_gb * src.egress_usd_per_gb


def weights_gb(model: ModelSpec) -> float:
    return model.params * WEIGHT_BYTES_PER_PARAM / 1e9
