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
