"""A stage that reads many datasets: its rule questions are made in time linear in them.

Each dataset's facts carry what the same placement exports alongside it and what the tenant
already exported from the same origin; both were read again for every dataset (a scan of the
others and a copy of the ledger each), so one stage of 2,000 datasets spent 5 s of rule checks
where 1,000 spent 1.3 s, past a `--time-limit` the greedy plan cannot cut inside a stage."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from straits.model.scenario import Dataset, Scenario
from straits.plan.checks import ExportLedger, Prior, placement_questions


def _scenario(n: int) -> Scenario:
    pool = {"count": 1000, "usd_per_chip_hour": 2.0, "source": "x", "confidence": "M"}
    datasets = [
        {
            "id": f"d{i}",
            "tokens": 1e8,
            "size_gb": 1,
            "located_at": ("us1", "sg1")[i % 2],
            "origin": ("CN", "DE", "US", "SG")[i % 4],
            "classes": (["personal"], ["public"], ["personal", "sensitive_personal"])[i % 3],
            **({} if i % 3 == 1 else {"subjects": 1000 + i}),
            **({"sensitive_subjects": 1 + i % 7} if i % 3 == 2 else {}),
        }
        for i in range(n)
    ]
    doc: dict[str, Any] = {
        "straits": 1,
        "name": "many-datasets",
        "date": "2025-06-01",
        "tenants": [{"id": "t0", "hq": "US"}],
        "sites": [
            {"id": "us1", "country": "US", "operator_hq": "US", "wan_gbps": 400,
             "egress_usd_per_gb": 0.05, "source": "x", "pools": [{"chip": "H100-SXM", **pool}]},
            {"id": "sg1", "country": "SG", "operator_hq": "SG", "wan_gbps": 100,
             "egress_usd_per_gb": 0.05, "source": "x", "pools": [{"chip": "H200-SXM", **pool}]},
        ],
        "datasets": datasets,
        "workloads": [
            {
                "id": "w0",
                "tenant": "t0",
                "model": {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16,
                          "seq_len": 2048},
                "stages": [{"id": "ft", "kind": "finetune",
                            "datasets": [d["id"] for d in datasets]}],
            }
        ],
    }  # fmt: skip
    return Scenario.model_validate(doc)


def _ledgers(sc: Scenario) -> list[ExportLedger]:
    """Earlier exports of some of the same datasets (one volume differing between ledgers,
    the later standing) and of others, this year and last."""
    a, b = ExportLedger(), ExportLedger()
    for i, d in enumerate(sc.datasets[:40]):
        a.add("t0", d.origin, 2025 - i % 2, d.id, 10 + i, i % 3)
        if i % 4 == 0:
            b.add("t0", d.origin, 2025, d.id, 500 + i, 1)
    a.add("t0", "CN", 2025, "users:w9/serve:CN", 7_000, 0)
    b.add("t0", "DE", 2024, "elsewhere", 3, 3)
    return [a, b]


def _reference(d: Dataset, abroad: list[Dataset], ledgers: list[ExportLedger]) -> tuple[int, ...]:
    """The facts' volumes as they were computed, dataset by dataset."""
    exclude = {d.id} | {o.id for o in abroad}
    prior: list[int] = []
    for years in ((2025,), (2024, 2025)):
        batch: dict[str, Any] = {}
        for led in ledgers:
            for y in years:
                batch.update(led.entries.get(("t0", d.origin, y), {}))
        kept = [v for k, v in batch.items() if k not in exclude]
        prior += [sum(v.subjects for v in kept), sum(v.sensitive for v in kept)]
    extra = [o for o in abroad if o.id != d.id and o.origin == d.origin and o.is_personal]
    subj, sens = sum(o.subjects for o in extra), sum(o.sensitive_subjects for o in extra)
    p = Prior(*prior)
    return (
        p.subjects_ytd + subj,
        p.sensitive_ytd + sens,
        p.subjects_since_last_year + subj,
        p.sensitive_since_last_year + sens,
    )


def _questions(sc: Scenario, site: str, ledgers: list[ExportLedger]) -> list[Any]:
    w = sc.workloads[0]
    return placement_questions(
        sc, w, w.stages[0], sc.site(site), sc.site(site).pools[0].chip,
        date=dt.date(2025, 6, 1), regime="enacted", training_ops=1e20, preds=[],
        exports=ledgers, year=2025,
    )  # fmt: skip


@pytest.mark.parametrize("site", ["us1", "sg1"])
def test_each_datasets_volumes_are_the_others_and_the_ledgers(site: str) -> None:
    sc = _scenario(60)
    ledgers = _ledgers(sc)
    country = sc.site(site).country
    abroad = [d for d in sc.datasets if d.origin != country]
    questions = _questions(sc, site, ledgers)
    data = [q.request.data for q in questions if q.request.action != "transfer-data"]
    assert len(data) == len(sc.datasets)
    for d, facts in zip(sc.datasets, data, strict=True):
        got = (
            facts.prior_subjects_ytd,
            facts.prior_sensitive_ytd,
            facts.prior_subjects_since_last_year,
            facts.prior_sensitive_since_last_year,
        )
        assert got == _reference(d, abroad, ledgers), d.id


def test_a_stage_of_many_datasets_reads_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each dataset's class and the ledgers are read a bounded number of times per dataset,
    not once per pair of datasets (before: 3 x 10^5 reads of ``is_personal`` at 600)."""
    sc = _scenario(600)
    ledgers = _ledgers(sc)
    reads = {"personal": 0, "entries": 0}
    personal = Dataset.__dict__["is_personal"].fget

    def counted(self: Dataset) -> bool:
        reads["personal"] += 1
        return bool(personal(self))

    monkeypatch.setattr(Dataset, "is_personal", property(counted))
    for led in ledgers:
        entries = led.entries

        class Counting(dict):  # type: ignore[type-arg]
            def get(self, *a: Any) -> Any:
                reads["entries"] += 1
                return super().get(*a)

        led.entries = Counting(entries)
    questions = _questions(sc, "sg1", ledgers)
    assert len(questions) > 600
    assert reads["personal"] <= 3 * 600
    assert reads["entries"] <= 3 * 2 * 3 * len(ledgers)  # per origin: 3 years' reads per ledger
