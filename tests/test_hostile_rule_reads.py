"""A user pack's policy that reads the request other than as Straits evaluates and caches it
(pack51). The planner splits the policies by the context records they read
(``rules/partition.py``) and keys its cache by the attributes they read
(``rules/cache_key.py``), both found from ``context.<attr>`` and ``context has <attr>``: a
policy reaching the chip through ``(if true then context else context).chip`` was evaluated
without the chip, never applied, and a deny rule allowed without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from straits.errors import PackError
from straits.rules.pack_loader import load_pack
from test_hostile_rule_dates import H20_REQUEST, team_rule
from test_pack_versions import cli, copy_pack

START = 'context.date >= datetime("2025-04-10")'
WHOLE = "(if true then context else context)"

# (a condition reading `context` as a whole, words the error has)
WHOLE_CONTEXT = [
    (f"{WHOLE} has chip && {WHOLE}.chip.tpp > 1", "reads `context` other than"),
    ('{c: context}.c.tenant.hq == Straits::Country::"SG"', "reads `context` other than"),
    (f"{WHOLE} has chip", "reads `context` other than"),
]


@pytest.mark.parametrize(("condition", "words"), WHOLE_CONTEXT)
def test_a_policy_reading_context_whole_is_refused(
    tmp_path: Path, condition: str, words: str
) -> None:
    # before: loaded, and the H20 purchase it denies was allowed (the chip left out)
    _refused_at_load_and_by_check(tmp_path, condition, words)


# the context read through its attributes, in any expression, loads
THROUGH_ATTRIBUTES = [
    'context["chip"]["tpp"] > 1',
    "(if context.quantity > 1 then context.quantity else 0) > 5",
    'context.tenant.authorizations.contains("bis-license")',
    "context has data && context.data.subjects > 5",
    'action in Straits::Action::"use-compute" || action == Straits::Action::"procure"',
    "principal is Straits::Tenant && resource is Straits::Site",  # a type test: always holds
]


@pytest.mark.parametrize("condition", THROUGH_ATTRIBUTES)
def test_reads_through_attributes_load(tmp_path: Path, condition: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f"{START} && ({condition})")
    assert any(r.id == "team-h20" for r in load_pack(pack).rules)


# (a policy testing what never tells requests apart, words the error has): the principal and
# the resource are one fixed tenant and site; a request's action is a member of a group, never
# the group. Each loaded, never applied, and the H20 purchase it denies was allowed.
NEVER_APPLIES = [
    ('principal == Straits::Tenant::"acme"', "reads `principal`"),
    ('resource == Straits::Site::"sg-1"', "reads `resource`"),
    ('principal in Straits::Group::"ear-d5"', "reads `principal`"),
    ('resource is Straits::Site in Straits::Site::"sg-1"', "reads `resource`"),
    ('action == Straits::Action::"move"', 'action == Straits::Action::"move"'),
    ('Straits::Action::"use-compute" == action', 'action == Straits::Action::"use-compute"'),
]


@pytest.mark.parametrize(("condition", "words"), NEVER_APPLIES)
def test_a_test_that_never_applies_is_refused(tmp_path: Path, condition: str, words: str) -> None:
    _refused_at_load_and_by_check(tmp_path, condition, words)


@pytest.mark.parametrize(
    "scope", ['principal == Straits::Tenant::"acme"', 'principal in Straits::Group::"ear-d5"']
)
def test_a_principal_scope_is_refused(tmp_path: Path, scope: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, START)
    f = pack / "advisory.cedar"
    f.write_text(f.read_text().replace("permit (principal,", f"permit ({scope},"))
    with pytest.raises(PackError, match="scope constrains the principal"):
        load_pack(pack)


@pytest.mark.parametrize(
    "condition",
    [
        "context.nope > 1",  # an attribute the context never carries
        "context.chip.watts > 700",  # one a chip never carries
        "context.data.subjects > 5",  # optional, without `context has data`
    ],
)
def test_an_attribute_never_carried_names_the_rule_not_cedars_id(
    tmp_path: Path, condition: str
) -> None:
    """The schema's refusal named the rule and its line, then Cedar's positional id of it
    among every loaded policy (`for policy `policy55``), which no pack holds."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f"{START} && {condition}")
    req = tmp_path / "req.json"
    req.write_text(json.dumps({**H20_REQUEST, "date": "2025-06-01"}))
    code, out, err = cli("check", "--rules", str(pack), "--json", str(req))
    assert code == 2 and "does not fit the schema" in err and "advisory.cedar:" in err, out
    assert "`policy" not in err and "team-h20" in err, err


def _refused_at_load_and_by_check(tmp_path: Path, condition: str, words: str) -> None:
    """A team rule of sg-guidance with ``condition`` is refused at load, naming the file and
    line, and `check --rules` with the pack exits 2 saying why."""
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f"{START} && {condition}")
    with pytest.raises(PackError) as exc:
        load_pack(pack)
    assert words in str(exc.value) and "advisory.cedar:" in str(exc.value)
    req = tmp_path / "req.json"
    req.write_text(json.dumps({**H20_REQUEST, "date": "2025-06-01"}))
    code, out, err = cli("check", "--rules", str(pack), "--json", str(req))
    assert code == 2 and words in err and "advisory.cedar:" in err, out
