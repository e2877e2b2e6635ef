"""The bounded YAML loader (``straits.safe_yaml``) reads with libyaml's C parser where PyYAML
has it and with PyYAML's pure-Python one otherwise: both must give the same documents, and on
any text raise only the parser's own errors (a ValueError from inside PyYAML was a traceback:
``x: !!int zz``)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from straits import safe_yaml

needs_libyaml = pytest.mark.skipif(
    safe_yaml._FastLoader is None, reason="PyYAML built without libyaml"
)

# text without the characters YAML 1.1 reads as line breaks inside a scalar (NEL, LS, PS: the
# pure-Python parser folds them, libyaml keeps them) and without lone surrogates (libyaml
# refuses them even escaped, "\\uD800"; the pure-Python parser reads them)
text = st.text(
    alphabet=st.characters(blacklist_characters="\x85\u2028\u2029", blacklist_categories=["Cs"]),
    max_size=20,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    text,
    st.dates().map(dt.date.isoformat),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=30,
)


def read(cls: Any, text: str) -> tuple[str, Any]:
    """What one parser makes of ``text``: ("ok", value) or ("error", None)."""
    loader = cls(text)
    try:
        root = safe_yaml._root(loader)
        if root is None:
            return "ok", None
        safe_yaml.check_expansion(root)
        return "ok", loader.construct_document(root)
    except (yaml.YAMLError, safe_yaml.YamlLimitError):
        return "error", None
    finally:
        loader.dispose()


@needs_libyaml
@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from(["block", "flow"]))
def test_both_parsers_read_a_document_alike(doc: Any, style: str) -> None:
    text = yaml.safe_dump(doc, default_flow_style=style == "flow", allow_unicode=True)
    assert read(safe_yaml._Loader, text) == read(safe_yaml._FastLoader, text) == ("ok", doc)


PIECES = [*"ab1: -[]{},'\"\n #&*!|>?%@`.0x~", "\n  ", "\n- ", "key: ", "&a ", "*a", "<<: ",
          "!!int ", "!!float ", "!!bool ", "!!str ", "!!timestamp ", "2025-01-01", "1e3", "0x",
          "0o17", "yes", "null", ".inf", "\u00e9", "\u2028", "\x85", "\ufeff", "---\n"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_any_text_gives_a_document_or_the_parsers_error(text: str) -> None:
    """Through the loader callers use (libyaml's where there is one), and the pure-Python one."""
    with contextlib.suppress(yaml.YAMLError, safe_yaml.YamlLimitError):
        safe_yaml.load(text)
    read(safe_yaml._Loader, text)  # raises anything else


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\nb: !!int zz\n", 2), ("a:\n  - !!float x\n", 2), ("a: !!bool maybe\n", 1)],
)
def test_a_tag_its_text_cannot_hold_names_its_line(text: str, line: int) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as err:
        safe_yaml.load(text)
    assert err.value.problem_mark is not None and err.value.problem_mark.line + 1 == line


def test_text_libyaml_cannot_take_is_read_by_the_pure_parser() -> None:
    """A lone surrogate does not encode to UTF-8, which libyaml reads: the pure-Python parser
    reads it instead, as before, and refuses it with its own error."""
    with pytest.raises(yaml.YAMLError):
        safe_yaml.load("a: '\ud800'\n")


def test_libyaml_nesting_limit_is_reported_as_ours() -> None:
    with pytest.raises(safe_yaml.YamlLimitError) as err:
        safe_yaml.load("a: " + "[" * 5000 + "]" * 5000)
    assert err.value.line == 1


def test_reading_stops_once_the_time_is_up() -> None:
    """``plan --time-limit`` reads within its budget: a document is read until ``time_up()``
    says so (checked every CHECK_EVERY nodes), then ReadingTimeUp names the line reached."""
    text = "".join(f"k{i}: [1, 2, 3]\n" for i in range(3 * safe_yaml.CHECK_EVERY))
    calls = []

    def up() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with safe_yaml.within(up), pytest.raises(safe_yaml.ReadingTimeUp) as err:
        safe_yaml.load(text)
    assert len(calls) == 2 and err.value.line is not None and 1 < err.value.line < 3 * 4096
    with safe_yaml.within(lambda: False):
        assert len(safe_yaml.load(text)) == 3 * safe_yaml.CHECK_EVERY
    assert len(safe_yaml.load(text)) == 3 * safe_yaml.CHECK_EVERY  # no limit outside


def test_the_alias_check_stops_once_the_time_is_up() -> None:
    """A document with an anchor is walked again for its aliases' expansion: that walk also
    stops when the time is up (it ran to its end however long it took)."""
    text = "a: &x [1]\nb: *x\n" + "".join(
        f"k{i}: [1, 2, 3]\n" for i in range(3 * safe_yaml.CHECK_EVERY)
    )
    root = safe_yaml.compose(text)
    assert root is not None
    calls: list[int] = []

    def up() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with safe_yaml.within(up), pytest.raises(safe_yaml.ReadingTimeUp):
        safe_yaml.check_expansion(root)
    assert len(calls) == 2
    with safe_yaml.within(lambda: False):
        safe_yaml.check_expansion(root)  # no error when there is time
