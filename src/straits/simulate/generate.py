"""Synthetic portfolios: many tenants, sites and workloads, reproducible from a seed.

The mix follows the world Straits models: tenants headquartered in China, the US, Singapore,
Europe and elsewhere; sites where the chips on offer depend on the country (H800/H20/Ascend in
China, H100/H200/B200 elsewhere); public corpora and personal datasets collected in the tenant's
home country; pre-train -> fine-tune -> serve workloads of 1B to 400B parameters. Prices are
drawn around the catalog's reference rental prices. Some pools have maintenance windows or
capacity that arrives later, some may be bought (a synthetic purchase price of about 10,000 hours
of rent), and some deadlines are soft with a daily penalty. Every figure is synthetic and says so.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from straits.loading import parse_scenario
from straits.model.scenario import Scenario

HQ_WEIGHTS = {
    "CN": 0.35,
    "US": 0.2,
    "SG": 0.1,
    "DE": 0.08,
    "FR": 0.05,
    "JP": 0.06,
    "IN": 0.06,
    "AE": 0.04,
    "VN": 0.03,
    "KR": 0.03,
}
SITE_WEIGHTS = {
    "CN": 0.3,
    "SG": 0.12,
    "MY": 0.12,
    "US": 0.14,
    "DE": 0.06,
    "JP": 0.06,
    "IN": 0.05,
    "AE": 0.05,
    "VN": 0.04,
    "KR": 0.03,
    "ID": 0.03,
}
CHIPS_BY_COUNTRY = {
    "CN": ["H800-SXM", "H20", "A800-SXM", "Ascend-910B", "Ascend-910C"],
    "US": ["H100-SXM", "H200-SXM", "B200", "MI300X", "TPU-v4", "A100-SXM-80GB"],
}
CHIPS_ELSEWHERE = ["H100-SXM", "H200-SXM", "A100-SXM-80GB", "B200", "MI300X"]
BASE_PRICE = {
    "H100-SXM": 2.3,
    "H200-SXM": 3.6,
    "B200": 5.5,
    "MI300X": 2.5,
    "TPU-v4": 1.6,
    "A100-SXM-80GB": 1.3,
    "A100-SXM-40GB": 1.1,
    "H800-SXM": 2.0,
    "H20": 1.1,
    "A800-SXM": 1.2,
    "Ascend-910B": 1.2,
    "Ascend-910C": 2.0,
}
# (params, active params, layers, d_model, heads)
MODELS = [
    (1.3e9, None, 24, 2048, 16),
    (7e9, None, 32, 4096, 32),
    (1.4e10, None, 40, 5120, 40),
    (3.2e10, None, 64, 5120, 40),
    (7.2e10, None, 80, 8192, 64),
    (1.4e11, 2.2e10, 60, 6144, 48),
    (4.05e11, None, 126, 16384, 128),
    (2.36e11, 2.1e10, 60, 5120, 128),
]
SOURCE = "synthetic (straits scenario generate)"


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def generate_dict(
    workloads: int = 10,
    sites: int = 20,
    seed: int = 0,
    date: dt.date = dt.date(2025, 6, 1),
    regime: str = "enacted",
    objective: str = "cost",
) -> dict[str, Any]:
    """A scenario document (the YAML shape) for ``workloads`` workloads over ``sites`` sites."""
    if workloads < 0 or sites < 1:
        raise ValueError("need workloads >= 0 and sites >= 1")
    rng = random.Random(seed)
    n_tenants = max(1, min(workloads, 2 + workloads // 15))
    tenants = []
    for i in range(n_tenants):
        auths = [
            a
            for a, p in (
                ("cac-standard-contract", 0.3),
                ("cac-security-assessment", 0.1),
                ("gdpr-transfer-safeguard", 0.3),
                ("bis-license", 0.05),
            )
            if rng.random() < p
        ]
        tenants.append({"id": f"t{i:03d}", "hq": _pick(rng, HQ_WEIGHTS), "authorizations": auths})
    site_docs = []
    for i in range(sites):
        country = _pick(rng, SITE_WEIGHTS) if i >= 2 else ("CN", "SG")[i]
        menu = CHIPS_BY_COUNTRY.get(country, CHIPS_ELSEWHERE)
        chips = rng.sample(menu, k=min(len(menu), rng.choice((1, 1, 2, 3))))
        operator = country if rng.random() < 0.8 else rng.choice(["US", "SG", country])
        pools = []
        for chip in chips:
            count = rng.choice((64, 128, 256, 512, 1024, 2048, 4096, 8192))
            price = round(BASE_PRICE[chip] * rng.uniform(0.8, 1.3), 2)
            pool: dict[str, Any] = {
                "chip": chip,
                "count": count,
                "usd_per_chip_hour": price,
                "source": SOURCE,
                "confidence": "M",
            }
            roll = rng.random()
            if roll < 0.1:  # maintenance: a share of the pool is out for two to eight weeks
                begin = date + dt.timedelta(days=rng.randint(0, 300))
                pool["availability"] = [
                    {
                        "start": begin,
                        "end": begin + dt.timedelta(weeks=rng.randint(2, 8)),
                        "count": count // rng.choice((2, 4, 8)),
                    }
                ]
            elif roll < 0.18:  # expansion: half the chips now, all of them later
                pool["availability"] = [
                    {
                        "start": date,
                        "end": date + dt.timedelta(days=rng.randint(30, 240)),
                        "count": count // 2,
                    }
                ]
            if rng.random() < 0.08:
                pool["procurable"] = {
                    "max": max(8, count // 2),
                    "usd_per_chip": round(BASE_PRICE[chip] * 10_000, -2),
                    "lead_days": rng.choice((30, 60, 120)),
                }
            pools.append(pool)
        site_docs.append(
            {
                "id": f"s{i:03d}-{country.lower()}",
                "country": country,
                "operator_hq": operator,
                "wan_gbps": rng.choice((10, 40, 100, 400)),
                "egress_usd_per_gb": round(rng.uniform(0.0, 0.09), 3),
                "source": SOURCE,
                "pools": pools,
            }
        )
    by_country: dict[str, list[str]] = {}
    for s in site_docs:
        by_country.setdefault(str(s["country"]), []).append(str(s["id"]))
    datasets = []
    for t in tenants:
        home = by_country.get(str(t["hq"])) or [str(site_docs[0]["id"])]
        datasets.append(
            {
                "id": f"{t['id']}-web",
                "tokens": 2e13,
                "size_gb": 80000,
                "located_at": rng.choice([s["id"] for s in site_docs]),
                "origin": t["hq"],
                "classes": ["public"],
            }
        )
        for k in range(rng.choice((1, 2, 3))):
            subjects = int(10 ** rng.uniform(3, 6.5))
            sensitive = int(subjects * 0.01) if rng.random() < 0.2 else 0
            classes = ["personal"] + (["sensitive_personal"] if sensitive else [])
            datasets.append(
                {
                    "id": f"{t['id']}-users{k}",
                    "tokens": 5e10,
                    "size_gb": 300,
                    "located_at": rng.choice(home),
                    "origin": t["hq"],
                    "classes": classes,
                    "subjects": subjects,
                    "sensitive_subjects": sensitive,
                }
            )
    work = []
    for i in range(workloads):
        t = rng.choice(tenants)
        params, active, layers, d_model, heads = rng.choice(MODELS)
        model = {
            "params": params,
            "layers": layers,
            "d_model": d_model,
            "heads": heads,
            "seq_len": rng.choice((4096, 8192)),
        }
        if active:
            model["active_params"] = active
        tokens = min(20 * (active or params) * rng.uniform(0.5, 2.0), 1.5e13)
        stages: list[dict[str, Any]] = [
            {"id": "pretrain", "kind": "pretrain", "datasets": [f"{t['id']}-web"], "tokens": tokens}
        ]
        if rng.random() < 0.7:
            personal = [d["id"] for d in datasets if str(d["id"]).startswith(f"{t['id']}-users")]
            stages.append(
                {
                    "id": "sft",
                    "kind": "finetune",
                    "after": ["pretrain"],
                    "datasets": [rng.choice(personal)],
                }
            )
        if rng.random() < 0.6:
            stage: dict[str, Any] = {
                "id": "serve",
                "kind": "serve",
                "after": [stages[-1]["id"]],
                "chips": rng.choice((8, 16, 64, 128)),
                "days": rng.choice((7, 30, 60)),
            }
            if rng.random() < 0.5:
                stage["users"] = [t["hq"]]
                stage["user_subjects"] = int(10 ** rng.uniform(4, 7))
            stages.append(stage)
        w: dict[str, Any] = {"id": f"w{i:04d}", "tenant": t["id"], "model": model, "stages": stages}
        if rng.random() < 0.6:
            w["deadline"] = date + dt.timedelta(days=rng.randint(60, 540))
            if rng.random() < 0.3:
                w["deadline_policy"] = "soft"
                w["late_penalty_usd_per_day"] = float(rng.choice((1e3, 1e4, 1e5)))
        if rng.random() < 0.4:
            w["budget_usd"] = float(rng.choice((1e6, 1e7, 5e7, 2e8)))
        work.append(w)
    return {
        "straits": 1,
        "name": f"generated-{workloads}w-{sites}s-seed{seed}",
        "date": date,
        "regime": regime,
        "objective": objective,
        "tenants": tenants,
        "sites": site_docs,
        "datasets": datasets,
        "workloads": work,
    }


def generate(workloads: int = 10, sites: int = 20, seed: int = 0, **kw: Any) -> Scenario:
    return parse_scenario(
        generate_dict(workloads, sites, seed, **kw), source=f"<generated seed={seed}>"
    )
