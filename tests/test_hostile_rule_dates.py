"""Rule packs whose dates and regimes said one thing and decided another, found by the hostile
pass atk40: a boundary inside a day, annotations that disagree with the condition's dates, regime
tests the listings misread, coverage rounded to 100%, and dates written as numbers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from straits.errors import PackError
from straits.rules.pack_loader import load_pack
from test_pack_versions import cli, copy_pack

H20_REQUEST = {
    "action": "procure",
    "quantity": 1,
    "chip": "H20",
    "tenant": {"hq": "SG"},
    "site": {"country": "SG", "operator_hq": "SG"},
}


def team_rule(pack: Path, condition: str, window: str = '@effective_from("2025-04-10")') -> None:
    f = pack / "advisory.cedar"
    f.write_text(
        f.read_text()
        + '\n@id("team-h20")\n@title("Team: no H20")\n@citation("Team policy 9")\n'
        + f'@confidence("V")\n@effect("deny")\n{window}\n@reason("no H20")\n'
        + "permit (principal, action, resource)\n"
        + f'when {{ context has chip && context.chip.id == "H20" && {condition} }};\n'
    )


@pytest.mark.parametrize(
    "literal", ["2025-04-09T23:00:00-0800", "2025-04-09T12:00:00Z", "2025-04-10T00:00:00Z"]
)
def test_a_datetime_that_is_not_a_day_is_refused(tmp_path: Path, literal: str) -> None:
    """`context.date >= datetime("2025-04-09T23:00:00-0800")` (2025-04-10 07:00 UTC) loaded;
    the cache keys read the literal as 2025-04-09, so 2025-04-10 (not yet: allow) and
    2025-04-11 (deny) shared a key, and each got the answer of whichever was asked first."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f'context.date >= datetime("{literal}")')
    with pytest.raises(PackError, match="is not a day"):
        load_pack(pack)
    days = [{**H20_REQUEST, "date": d} for d in ("2025-04-10", "2025-04-11")]
    stdin = tmp_path / "req.json"
    stdin.write_text(json.dumps(days))
    code, _, err = cli("check", "--rules", str(pack), "--json", str(stdin))
    assert code == 2 and "advisory.cedar:" in err, err


# (the rule's window annotations, its date comparisons, words the error has)
WINDOWS = [
    # an off-by-one: listed as in force on 2025-04-09, `check` allowed on that day
    ('@effective_from("2025-04-09")', 'context.date >= datetime("2025-04-10")', "2025-04-10"),
    ('@effective_from("2025-04-10")', 'context.date > datetime("2025-04-10")', "2025-04-11"),
    # `<` is exclusive, the annotation inclusive: the rule's last day is the 12th
    (
        '@effective_from("2025-04-10")\n@effective_until("2025-05-13")',
        'context.date >= datetime("2025-04-10") && context.date < datetime("2025-05-13")',
        "2025-05-12",
    ),
    # a condition that ends, annotations that never do (listed in force for ever)
    (
        '@effective_from("2025-04-10")',
        'context.date >= datetime("2025-04-10") && datetime("2025-05-13") > context.date',
        "no @effective_until",
    ),
    # an end the condition does not have (the rule applies after its listed end)
    (
        '@effective_from("2025-04-10")\n@effective_until("2025-05-12")',
        'context.date >= datetime("2025-04-10")',
        "ends it",
    ),
    # no start in the condition: `check` applied the rule before its listed start
    ('@effective_from("2025-04-10")', "context.quantity > 5", "no top-level"),
    # an end read in no form the window check reads: listed in force after it (atk68)
    (
        '@effective_from("2025-04-10")',
        'context.date >= datetime("2025-04-10") && context.date.toDate() < datetime("2025-05-13")',
        "top-level `&&` operand",
    ),
    (
        '@effective_from("2025-04-10")',
        'context.date >= datetime("2025-04-10") && !(context.date < datetime("2025-05-13"))',
        "top-level `&&` operand",
    ),
    # a start only under `||` starts nothing: with quantity > 5 it applied on 2025-04-09
    (
        '@effective_from("2025-04-10")',
        '(context.date >= datetime("2025-04-10") || context.quantity > 5)',
        "no top-level",
    ),
]


@pytest.mark.parametrize(("window", "condition", "words"), WINDOWS)
def test_annotations_that_disagree_with_the_condition_are_refused(
    tmp_path: Path, window: str, condition: str, words: str
) -> None:
    """`rules list`, `rules diff DATE DATE` and the boundary tables read @effective_from and
    @effective_until; `check`, replay and the market read the condition. A pack whose two
    disagreed loaded, and `rules list --date 2025-04-09` listed a rule `check` did not apply."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, condition, window)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and "advisory.cedar:" in err and words in err, err


@pytest.mark.parametrize(
    ("window", "condition"),
    [
        ('@effective_from("2025-04-10")', 'context.date >= datetime("2025-04-10")'),
        ('@effective_from("2025-04-10")', 'datetime("2025-04-09") < context.date'),
        (
            '@effective_from("2025-04-10")\n@effective_until("2025-05-12")',
            'context.date >= datetime("2025-04-10") && context.date <= datetime("2025-05-12")',
        ),
        (
            '@effective_from("2025-04-10")',
            'context.date >= datetime("2025-04-10") } unless { '
            'context.date >= datetime("2025-05-13") && context.quantity > 5',
        ),
        (
            '@effective_from("2025-04-10")',
            'context.date >= datetime("2025-04-10") && '
            '(context.date < datetime("2025-05-13") || context.quantity > 5)',
        ),
    ],
)
def test_annotations_that_agree_load(tmp_path: Path, window: str, condition: str) -> None:
    """(An ``unless`` beyond one comparison, or a date under ``||``, narrows whom the rule
    applies to on some days: the rule is still in force on them, as listed.)"""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, condition, window)
    (rule,) = [r for r in load_pack(pack).rules if r.id == "team-h20"]
    assert rule.effective_from.isoformat() == "2025-04-10"


def test_an_unless_that_ends_the_rule_is_read(tmp_path: Path) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(
        pack,
        'context.date >= datetime("2025-04-10") } unless { context.date >= datetime("2025-05-13")',
        '@effective_from("2025-04-10")\n@effective_until("2025-05-12")',
    )
    (rule,) = [r for r in load_pack(pack).rules if r.id == "team-h20"]
    assert rule.effective_until is not None and rule.effective_until.isoformat() == "2025-05-12"


def test_coverage_is_not_100_percent_while_one_is_uncovered() -> None:
    """1,999 of 2,000 policies (or conditions) covered read '100%' (round()), and met
    --min-condition-coverage 100; 1 of 2,001 read '0%'."""
    from straits.rules import ruleset
    from straits.rules.coverage import Condition, CoverageReport, PackCoverage, PolicyCoverage

    rule = ruleset().packs[0].rules[0]

    def policy(covered: bool) -> PolicyCoverage:
        cond = Condition(0, "when", "c", False, passed=1, stopped=1 if covered else 0)
        return PolicyCoverage(rule, 3, 1 if covered else 0, (cond,))

    almost = CoverageReport(
        (PackCoverage("p", "1", (*(policy(True) for _ in range(1999)), policy(False))),)
    )
    assert almost.policy_pct == 99.9 and almost.condition_pct == 99.9
    assert almost.conditions_below(100.0) and not almost.conditions_below(99.95)
    assert almost.to_json()["packs"][0]["policy_coverage"] == 99.9
    hardly = CoverageReport((PackCoverage("p", "1", (policy(True), *(policy(False),) * 2000)),))
    assert hardly.policy_pct == 0.1 and hardly.condition_pct == 0.1
    full = CoverageReport((PackCoverage("p", "1", (policy(True),) * 5),))
    assert full.policy_pct == 100.0 and not full.conditions_below(100.0)


ZONED = [
    # 8 April in UTC: decided as 9 April, the day of the H20 letter (atk71)
    "2025-04-09T00:00:00+14:00",
    "2025-04-09T00:00-05:00",
    dt.datetime(2025, 4, 9, tzinfo=dt.timezone(dt.timedelta(hours=14))),  # a YAML timestamp
    "2025-04-09T01:00:00",  # not a day
]


@pytest.mark.parametrize("value", [1744156800, 1744156800.0, "1744156800", "2025-4-9", *ZONED])
def test_a_date_that_is_a_number_is_refused(value: object) -> None:
    """`"date": 1744156800` (seconds since 1970) was decided as 2025-04-09 without a word; a
    zero time in another zone was read as its local day."""
    from pydantic import ValidationError

    from straits.model.request import CheckRequest

    with pytest.raises(ValidationError, match="not a date written YYYY-MM-DD"):
        CheckRequest.model_validate({**H20_REQUEST, "date": value})
    for day in (
        "2025-04-09",
        "2025-04-09T00:00:00Z",
        "2025-04-09T00:00:00+00:00",
        "2025-04-09t00:00z",
    ):
        assert CheckRequest.model_validate({**H20_REQUEST, "date": day}).date.isoformat() == (
            "2025-04-09"
        )


def test_a_rule_that_excludes_a_regime_is_not_listed_under_it(tmp_path: Path) -> None:
    """`context.regime != "ai-diffusion"`: `rules list --regime ai-diffusion` listed the rule
    in force (and the market an event adding it) while `check` under that regime never
    applied it; only `==` was read."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, 'context.date >= datetime("2025-04-10") && context.regime != "ai-diffusion"')
    (rule,) = [r for r in load_pack(pack).rules if r.id == "team-h20"]
    from straits.rules.listing import rule_regimes

    assert rule_regimes(rule) == ("enacted",)
    code, out, err = cli(
        "rules",
        "list",
        "--rules",
        str(pack),
        "--date",
        "2025-06-01",
        "--regime",
        "ai-diffusion",
        "--json",
    )
    assert code == 0, err
    assert "team-h20" not in out


@pytest.mark.parametrize(
    "condition",
    [
        '(context.regime == "ai-diffusion" || context.quantity > 5)',
        '!(context.regime == "enacted")',
        'context.regime like "ai-*"',
    ],
)
def test_a_regime_test_the_listings_cannot_read_is_refused(tmp_path: Path, condition: str) -> None:
    """A test of context.regime under `||` was read as restricting the rule to that regime
    (listed only under ai-diffusion, applied under enacted too); `!` and `like` not at all."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f'context.date >= datetime("2025-04-10") && {condition}')
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and "context.regime" in err and "advisory.cedar:" in err, err
