"""A user's value of 100,000 characters echoed in an error (left64; ray62's left-out): the
error line names the option and what it expected, exit 2, with the value shortened
(`controls.shorten_words`, the helper that shortens a problem's long keys), whether the line
is Straits' own `error:` or Click's usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app
from straits.controls import LINE_SHOWN, WORD_SHOWN, shorten, shorten_words
from test_cli_conventions import ROOT, run

BIG = "x" * 100_000
SPACED = "x " * 50_000
H20 = str(ROOT / "examples" / "h20-2025.yaml")
SWEEP = ("market", "sweep", "--runs", "2", "--backend", "inline")

#: (argv, the option the line names, a word of what it expected)
CASES = [
    ((*SWEEP, "--param", BIG), "--param", "(expected"),
    ((*SWEEP, "--metric", BIG), "--metric", "(expected"),
    ((*SWEEP, "--method", BIG), "--method", "(expected"),
    ((*SWEEP, "--param", SPACED), "--param", "(expected"),
    (("market", "run", "--regime", BIG), "--regime", "(expected"),
    (("plan", H20, "--risk", BIG), "--risk", "(expected"),
    (("plan", H20, "--objective", BIG), "--objective", None),  # Click's usage error
    (("market", "sweep", "--runs", BIG), "--runs", None),  # Click's usage error
    (("rules", "list", "-o", BIG), "-o", None),
    (("estimate", "--sweep", BIG), "--sweep", None),
    (("check", BIG), None, None),  # a file that is not there
    (("ledger", "verify", "--head", BIG), "--head", None),
]


@pytest.mark.parametrize(
    ("argv", "option", "expected"), CASES, ids=[f"{c[0][1]} {c[1]}"[:30] for c in CASES]
)
def test_a_huge_value_is_shortened_in_its_error(
    argv: tuple[str, ...], option: str | None, expected: str | None
) -> None:
    res = CliRunner().invoke(app, list(argv))
    assert res.exit_code == 2, res.output[:500]
    assert len(res.output) < LINE_SHOWN + 1000, res.output[:500]
    assert "x" * (WORD_SHOWN + 1) not in res.output
    if option is not None:
        assert option in res.output
    if expected is not None:
        assert expected in res.output


def test_through_the_real_process() -> None:
    p = run(*SWEEP, "--param", BIG)
    assert p.returncode == 2
    assert p.stderr.startswith("error: --param") and "(expected" in p.stderr
    assert len(p.stderr) < LINE_SHOWN and "x" * (WORD_SHOWN + 1) not in p.stderr


def test_shorten_words() -> None:
    short = "a value of 200 characters or fewer stays whole " + "y" * WORD_SHOWN
    assert shorten_words(short) == short
    long_word = f"error: --param: not 'a{'b' * 300}' (expected ...)"
    got = shorten_words(long_word)
    assert got.startswith("error: --param: not 'ab") and got.endswith(" (expected ...)")
    assert len(got) < 250
    line = shorten_words("error: --x: " + "ab " * 5000 + "(expected y)")
    assert len(line) <= LINE_SHOWN and line.startswith("error: --x:")
    assert line.endswith("(expected y)")
    assert shorten("k" * 61) == "k" * 57 + "..." and shorten("k" * 60) == "k" * 60


def test_a_long_path_keeps_its_file_name(tmp_path: Path) -> None:
    """A legit path of 300 characters: the error names its file (its end), as well as where
    it starts; the first 197 characters alone left out which file was missing or bad."""
    deep = tmp_path.joinpath(*[f"directory_level_{i:02d}" for i in range(16)])
    deep.mkdir(parents=True)
    bad = deep / "request-that-matters.json"
    bad.write_text("{\n", encoding="utf-8")
    for name, code in (("request-that-matters.json", 2), ("not-there.json", 2)):
        res = CliRunner().invoke(app, ["check", str(deep / name)])
        assert res.exit_code == code, res.output[:500]
        assert f"/{name}:" in res.output and str(tmp_path)[:40] in res.output
        assert max(len(w) for w in res.output.split()) <= WORD_SHOWN
