"""Counts of people in a check request that say one thing and were read as another (atk68):
a this-year count the 2022 measures never read, and sensitive people in data classed as not
sensitive. Table-driven through the real `check`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from straits.model.request import CheckRequest
from test_ledger_cli import straits

BASE: dict[str, Any] = {
    "date": "2023-08-01",
    "action": "finetune",
    "tenant": {"hq": "CN"},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
}


def ask(data: dict[str, Any], date: str = "2023-08-01") -> tuple[int, Any, str]:
    r = straits("check", "--json", "-", stdin=json.dumps({**BASE, "date": date, "data": data}))
    return r.returncode, json.loads(r.stdout) if r.returncode == 0 else None, r.stderr


PERSONAL = {"origin": "CN", "classes": ["personal"], "subjects": 5000}

# (prior counts given, the authorization the 2022 measures require)
WINDOWS = [
    # 150,000 exported this year are 150,000 exported since 1 January of last year
    ({"prior_subjects_ytd": 150_000}, "cac-security-assessment"),
    ({"prior_subjects_since_last_year": 150_000}, "cac-security-assessment"),
    (
        {"prior_subjects_ytd": 150_000, "prior_subjects_since_last_year": 150_000},
        "cac-security-assessment",
    ),
    ({"prior_subjects_ytd": 90_000}, "cac-standard-contract"),
    ({"prior_subjects_ytd": 94_999}, "cac-standard-contract"),  # 99,999 with this transfer
    ({"prior_subjects_ytd": 95_000}, "cac-security-assessment"),  # 100,000: the line
]


@pytest.mark.parametrize(("prior", "needs"), WINDOWS)
def test_this_years_exports_count_since_last_year(prior: dict[str, int], needs: str) -> None:
    code, answer, err = ask({**PERSONAL, **prior})
    assert code == 0, err
    assert needs in answer["requires"], answer


def test_sensitive_exports_this_year_count_since_last_year() -> None:
    sensitive = {
        "origin": "CN",
        "classes": ["sensitive_personal"],
        "subjects": 100,
        "sensitive_subjects": 100,
    }
    code, answer, err = ask({**sensitive, "prior_sensitive_ytd": 20_000})
    assert code == 0 and "cac-security-assessment" in answer["requires"], (answer, err)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # fewer exported since last year than this year: a count that contradicts the other
        (
            {**PERSONAL, "prior_subjects_ytd": 150_000, "prior_subjects_since_last_year": 1_000},
            "prior_subjects_since_last_year",
        ),
        (
            {**PERSONAL, "prior_sensitive_ytd": 20_000, "prior_sensitive_since_last_year": 0},
            "prior_sensitive_since_last_year",
        ),
        # sensitive people in data not classed sensitive: no threshold for them was read
        (
            {"origin": "CN", "classes": ["public"], "subjects": 5000, "sensitive_subjects": 20_000},
            "sensitive_subjects",
        ),
        ({**PERSONAL, "sensitive_subjects": 1}, "sensitive_subjects"),
    ],
)
def test_counts_that_contradict_are_refused(data: dict[str, Any], field: str) -> None:
    code, _, err = ask(data, date="2025-08-01")
    assert code == 2 and "data" in err and field in err, err
    with pytest.raises(ValueError, match=field):
        CheckRequest.model_validate({**BASE, "data": data})


# (data's counts as written, the authorization a transfer to Singapore in 2025 needs) (atk81):
# a count written as a float or a string is the same count, and personal data of no stated
# size is read at the rules' highest count (1,000,000), never as an exemption
COUNTS_AS_WRITTEN = [
    ({"classes": ["sensitive_personal"], "subjects": 50_000}, "cac-security-assessment"),
    ({"classes": ["sensitive_personal"], "subjects": 50_000.0}, "cac-security-assessment"),
    ({"classes": ["sensitive_personal"], "subjects": "50000"}, "cac-security-assessment"),
    ({"classes": ["sensitive_personal"]}, "cac-security-assessment"),
    ({"classes": ["personal"]}, "cac-security-assessment"),
    ({"classes": ["personal"], "subjects": None}, "cac-security-assessment"),
    ({"classes": ["personal"], "subjects": 0}, "cac-security-assessment"),
    ({"classes": ["personal"], "subjects": 0.0}, "cac-security-assessment"),
    ({"classes": ["personal"], "subjects": 150_000}, "cac-standard-contract"),
    ({"classes": ["personal"], "subjects": 150_000.0}, "cac-standard-contract"),
    ({"classes": ["public"]}, None),
]


@pytest.mark.parametrize(("data", "needs"), COUNTS_AS_WRITTEN)
def test_counts_are_read_as_numbers_and_unknown_as_the_most(
    data: dict[str, Any], needs: str | None
) -> None:
    req = {
        "date": "2025-06-01",
        "action": "transfer-data",
        "tenant": {"hq": "CN"},
        "site": {"country": "SG", "operator_hq": "SG"},
        "data": {"origin": "CN", **data},
    }
    r = straits("check", "--json", "-", stdin=json.dumps(req))
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    if needs is None:
        assert answer["requires"] == [], answer
    else:
        assert needs in answer["requires"], answer


def test_a_dataset_of_unknown_size_is_flagged_and_read_as_the_most() -> None:
    from straits.model.people import UNKNOWN_SUBJECTS
    from straits.model.scenario import Dataset

    base = {"id": "d", "tokens": 1e9, "size_gb": 1, "located_at": "s", "origin": "CN"}
    unknown = Dataset.model_validate({**base, "classes": ["sensitive_personal"]})
    assert unknown.subjects_assumed
    assert unknown.subjects == unknown.sensitive_subjects == UNKNOWN_SUBJECTS
    given = Dataset.model_validate({**base, "classes": ["personal"], "subjects": "70000"})
    assert not given.subjects_assumed and given.subjects == 70_000
    public = Dataset.model_validate({**base, "classes": ["public"]})
    assert not public.subjects_assumed and public.subjects == 0


def _unsized(subjects: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "d",
        "tokens": 1e9,
        "size_gb": 10,
        "located_at": "sg",
        "origin": "CN",
        "classes": ["personal"],
    }
    if subjects is not None:
        data["subjects"] = subjects
    return {
        "straits": 1,
        "name": "unsized",
        "date": "2025-06-01",
        "tenants": [{"id": "t1", "hq": "CN", "authorizations": ["cac-standard-contract"]}],
        "sites": [
            {
                "id": "sg",
                "country": "SG",
                "operator_hq": "SG",
                "pools": [{"chip": "H100-SXM", "count": 512, "usd_per_chip_hour": 2.0}],
            }
        ],
        "datasets": [data],
        "workloads": [
            {
                "id": "w",
                "tenant": "t1",
                "model": {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16},
                "stages": [{"id": "ft", "kind": "finetune", "datasets": ["d"]}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("subjects", "placed", "noted"), [(None, False, True), (150_000, True, False)]
)
def test_a_plan_does_not_send_personal_data_of_unknown_size_offshore(
    subjects: int | None, placed: bool, noted: bool
) -> None:
    """The tenant holds the standard contract: enough for 150,000 people, not for a dataset
    of no stated size (read as 1,000,000, a security assessment)."""
    from straits.loading import parse_scenario
    from straits.plan import make_plan

    plan = make_plan(parse_scenario(_unsized(subjects)), time_limit=5)
    assert bool(plan.assignments) is placed
    assert any("`subjects`" in n for n in plan.notes) is noted
