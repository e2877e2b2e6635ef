"""Rows grouped by their rule questions when a stage has more columns than a float can count.

``Candidates.groups`` decides between one mixed-radix key and unique rows by the product of the
columns' sizes; taken as a numpy float, that product overflows past 1,024 columns (a stage
reading 1,500 datasets, or joining 1,500 predecessors) and numpy printed ``RuntimeWarning:
overflow encountered in reduce`` on stderr, under ``straits plan -q`` too."""

from __future__ import annotations

import warnings

from straits.loading import parse_scenario
from straits.plan.candidates import Candidates
from straits.rules import RuleSet

MODEL = {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16, "seq_len": 2048}


def test_groups_of_a_stage_with_1100_datasets_warn_nothing(rules: RuleSet) -> None:
    n = 1100
    sites = [
        {
            "id": f"s{i}",
            "country": "SG",
            "operator_hq": "SG",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0 + i}],
        }
        for i in range(3)
    ]
    datasets = [
        {
            "id": f"d{i}",
            "tokens": 1e6,
            "size_gb": 1,
            "located_at": f"s{i % 2}",
            "origin": "SG",
            "classes": ["public"],
        }
        for i in range(n)
    ]
    sc = parse_scenario(
        {
            "straits": 1,
            "name": "wide",
            "date": "2025-06-01",
            "tenants": [{"id": "t", "hq": "SG"}],
            "sites": sites,
            "datasets": datasets,
            "workloads": [
                {
                    "id": "w",
                    "tenant": "t",
                    "model": MODEL,
                    "stages": [
                        {"id": "ft", "kind": "finetune", "datasets": [d["id"] for d in datasets]}
                    ],
                }
            ],
        }
    )
    cand = Candidates(sc, rules, regime="enacted", date=sc.date)
    w = sc.workloads[0]
    t = cand.table(w, w.stages[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gid = cand.groups(w, w.stages[0], t, [])
    by_site: dict[str, set[int]] = {}
    for i in range(len(t)):
        by_site.setdefault(t.rows[i].resource.site.id, set()).add(int(gid[i]))
    # one group per site: the three sites differ in which datasets they hold
    assert all(len(g) == 1 for g in by_site.values())
    assert len(set().union(*by_site.values())) == 3
