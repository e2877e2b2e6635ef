"""``straits.rules.ruleset(...)`` as a library user calls it (pack51): one directory given as
text was read letter by letter (``ruleset("my-packs")``: 'm: rules directory not found'; an
absolute path: '/: no rule packs here'), and as a ``Path`` it was a TypeError traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from straits.errors import PackError, RequestError
from straits.rules import ruleset
from straits.rules.pack_loader import builtin_packs_dir


def _dir(tmp_path: Path) -> Path:
    shutil.copytree(builtin_packs_dir() / "sg-guidance", tmp_path / "rules" / "sg-guidance")
    return tmp_path / "rules"


@pytest.mark.parametrize("form", [str, Path, lambda p: (p,), lambda p: [str(p)]])
def test_one_directory_in_any_form_is_read_as_one(tmp_path: Path, form: object) -> None:
    rules = _dir(tmp_path)
    rs = ruleset(form(rules))  # type: ignore[operator]
    assert {p.name for p in rs.packs} >= {"sg-guidance", "us-ear"}
    assert next(p for p in rs.packs if p.name == "sg-guidance").path == rules / "sg-guidance"


def test_a_directory_that_is_missing_is_named_whole(tmp_path: Path) -> None:
    with pytest.raises(PackError) as exc:
        ruleset(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(exc.value)


@pytest.mark.parametrize("bad", [3, [b"/tmp"], [None]])
def test_what_is_no_directory_is_refused_by_name(bad: object) -> None:
    with pytest.raises(RequestError, match="extra_dirs"):
        ruleset(bad)  # type: ignore[arg-type]


def test_none_is_the_shipped_rules_as_before() -> None:
    """rev51: ``ruleset(None)`` read the shipped rules before pack51 (no extra directories, as
    ``ruleset()``); pack51 made it a RequestError."""
    assert [p.name for p in ruleset(None).packs] == [p.name for p in ruleset().packs]
