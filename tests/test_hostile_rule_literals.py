"""A user pack's policy that compares request facts with values no request carries is refused
at load (atk68): ``Straits::Country::"sg"``, ``context.chip.id == "h100-sxm"``,
``classes.contains("personel")``, ``authorizations.contains("bis-licence")`` and
``context.regime == "Enacted"`` loaded, never matched, and turned a deny rule off without a
word (``rules list`` listed it in force, ``check`` allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.errors import PackError
from straits.rules.pack_loader import load_pack
from test_hostile_rule_dates import team_rule
from test_pack_versions import cli, copy_pack

START = 'context.date >= datetime("2025-04-10")'

# (a condition with a value no request carries, words the error has)
NEVER = [
    ('context.site.country == Straits::Country::"sg"', "country 'sg'"),
    ('context.site.country == Straits::Country::"XX"', "country 'XX'"),
    ('context.site.country in [Straits::Country::"SG", Straits::Country::"my"]', "country 'my'"),
    ('context.chip.id == "h100-sxm"', "chip id 'h100-sxm'"),
    ('"H20" != context.chip.id && context.chip.id == "h800-sxm"', "chip id 'h800-sxm'"),
    ('["H20", "h100-sxm"].contains(context.chip.id)', "chip id 'h100-sxm'"),
    ('context has data && context.data.classes.contains("personel")', "data class 'personel'"),
    (
        'context.data.classes.containsAny(["personal"]) && '
        'context.tenant.authorizations.contains("bis-licence")',
        "authorization 'bis-licence'",
    ),
    ('context.regime == "Enacted"', "regime 'Enacted'"),
    (
        'context has data && context.data.classes.containsAny(["personal", "sensitive"])',
        "data class 'sensitive'",
    ),
    ('context.tenant.authorizations.containsAll(["bis-license", "visa"])', "authorization 'visa'"),
]


@pytest.mark.parametrize(("condition", "words"), NEVER)
def test_a_value_no_request_carries_is_refused(tmp_path: Path, condition: str, words: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f"{START} && {condition}")
    with pytest.raises(PackError) as exc:
        load_pack(pack)
    assert words in str(exc.value) and "advisory.cedar:" in str(exc.value)
    code, _, err = cli("rules", "list", "--rules", str(pack))
    assert code == 2 and words in err, err


# the same values as requests carry them load
CARRIED = [
    'context.site.country == Straits::Country::"SG"',
    'context.chip.id == "H100-SXM"',
    '["H20", "H100-SXM"].contains(context.chip.id)',
    'context.chip.id == "MI308X"',  # a chip the catalog does not carry: no request names it
    'context has data && context.data.classes.contains("sensitive_personal")',
    'context.tenant.authorizations.contains("bis-license")',
    'context.regime == "ai-diffusion"',
]


@pytest.mark.parametrize("condition", CARRIED)
def test_values_requests_carry_load(tmp_path: Path, condition: str) -> None:
    pack = copy_pack("sg-guidance", tmp_path)
    team_rule(pack, f"{START} && {condition}")
    assert any(r.id == "team-h20" for r in load_pack(pack).rules)
