"""Every way a scenario or a change file reaches the CLI names the line of a bad field:
`error: SOURCE:LINE: FIELD: ...` and exit 2, whether the file is read by path, from stdin, or
through a command that takes a plan or a scenario (`plan`, `report`, `export`: their PLAN
argument). `straits plan FILE` used to name the field without its line (the text was dropped on
the way to validation) while `straits scenario validate FILE` named both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli_conventions import run

BAD_PRICE = "usd_per_chip_hour: not-a-price"
FIELD = "sites[0].pools[0].usd_per_chip_hour"


def _bad_scenario(example_path: Path) -> tuple[str, int]:
    """The example scenario with its first pool's price made text, and that line."""
    lines = example_path.read_text().splitlines()
    i = next(i for i, ln in enumerate(lines) if "usd_per_chip_hour:" in ln)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = indent + BAD_PRICE
    return "\n".join(lines) + "\n", i + 1


# (argv with {f} for the file, read from stdin instead)
CASES = [
    pytest.param(["plan", "{f}"], False, id="plan-file"),
    pytest.param(["plan", "-"], True, id="plan-stdin"),
    pytest.param(["scenario", "validate", "{f}"], False, id="validate-file"),
    pytest.param(["scenario", "validate", "-"], True, id="validate-stdin"),
    pytest.param(["report", "{f}", "-o", "{out}"], False, id="report-file"),
]


@pytest.mark.parametrize(("argv", "stdin"), CASES)
def test_a_bad_scenario_field_is_named_with_its_line(
    argv: list[str], stdin: bool, example_path: Path, tmp_path: Path
) -> None:
    text, line = _bad_scenario(example_path)
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    out = tmp_path / "out.html"
    args = [a.format(f=f, out=out) for a in argv]
    p = run(*args, stdin=text if stdin else None)
    assert p.returncode == 2, p.stderr
    source = "<stdin>" if stdin else str(f)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    assert errors[0].startswith(f"error: {source}:{line}: {FIELD}: "), errors[0]
    assert not out.exists()


@pytest.mark.parametrize("bare", [False, True], ids=["mapping", "bare-list"])
def test_a_bad_price_change_is_named_with_its_line(
    bare: bool, example_path: Path, tmp_path: Path
) -> None:
    """`impact --prices FILE`: a mapping `prices: [...]` or a bare list (read as that
    mapping: its paths are the file's without the key) names the line; the bare list named the
    field only (atk67)."""
    body = "- site: x\n  chip: H100-SXM\n  usd_per_chip_hour: -3\n  source: test\n"
    text = body if bare else "prices:\n" + "".join("  " + ln + "\n" for ln in body.splitlines())
    f = tmp_path / "prices.yaml"
    f.write_text(text)
    p = run("impact", "--date", "2025-06-01", "--plan", str(example_path), "--prices", str(f))
    assert p.returncode == 2, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    where = f"{f}:3" if bare else f"{f}:4"
    assert errors[0].startswith(f"error: {where}: prices[0].usd_per_chip_hour: "), errors[0]


@pytest.mark.parametrize("bare", [False, True], ids=["mapping", "bare-list"])
@pytest.mark.parametrize("kind", ["prices", "capacity"])
def test_a_change_to_a_pool_the_scenario_lacks_is_named_with_its_line(
    kind: str, bare: bool, example_path: Path, tmp_path: Path
) -> None:
    """A well-formed change naming a site the scenario does not have is found only when it is
    applied to the plan's scenario: the error still names the change's line (it named the
    field only)."""
    from straits.loading import load_scenario

    site = load_scenario(example_path).sites[0]
    good = (site.id, site.pools[0].chip)  # a real pool first (prices), then one there is not
    field = "usd_per_chip_hour: 3" if kind == "prices" else "count: 8"
    bad = ("no-such-site", "H100-SXM")
    pools = [good, bad] if kind == "prices" else [bad]
    items = "".join(f"- site: {s}\n  chip: {c}\n  {field}\n  source: test\n" for s, c in pools)
    text = items if bare else f"{kind}:\n" + "".join("  " + ln + "\n" for ln in items.splitlines())

    f = tmp_path / f"{kind}.yaml"
    f.write_text(text)
    p = run("impact", "--date", "2025-06-01", "--plan", str(example_path), f"--{kind}", str(f))
    assert p.returncode == 2, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    i = len(pools) - 1
    line = _line_of(text, "no-such-site")
    assert errors[0].startswith(f"error: {f}:{line}: {kind}[{i}]"), errors[0]


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _written(doc: object) -> str:
    return json.dumps(doc, indent=1) + "\n"


def _bad(name: str, field: str, value: object) -> dict[str, object]:
    doc: dict[str, object] = json.loads((EXAMPLES / name).read_text())
    doc[field] = value
    return doc


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# (command, the request as written, the bad field's path, the text on its line)
REQUESTS = [
    pytest.param(
        "check", _written(_bad("request.json", "chip", 7)), "chip", '"chip": 7', id="check-one"
    ),
    pytest.param(
        "check",
        _written([_bad("request.json", "chip", "H100-SXM"), _bad("request.json", "date", "x")]),
        "[1].date",
        '"date": "x"',
        id="check-list",
    ),
    pytest.param(
        "estimate",
        _written(_bad("estimate.json", "tokens", "lots")),
        "tokens",
        '"tokens": "lots"',
        id="estimate",
    ),
]


@pytest.mark.parametrize(("command", "text", "field", "needle"), REQUESTS)
@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_bad_request_field_is_named_with_its_line(
    command: str, text: str, field: str, needle: str, stdin: bool, tmp_path: Path
) -> None:
    """`check` (one request or a list) and `estimate`, from a file or stdin."""
    f = tmp_path / "req.json"
    f.write_text(text)
    line = _line_of(text, needle)
    p = run(command, "-" if stdin else str(f), stdin=text if stdin else None)
    assert p.returncode == 2, p.stderr
    source = "<stdin>" if stdin else str(f)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    assert errors[0].startswith(f"error: {source}:{line}: {field}: "), errors[0]


#: names a terminal would act on: a screen clear, a window title, a right-to-left override
HOSTILE_NAMES = ["x\x1b[2J.yaml", "x\x1b]0;pwned\x07.yaml", "x\u202elmay.json"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["csi", "osc", "bidi"])
def test_file_names_reach_the_terminal_as_escapes(
    tmp_path: Path, example_path: Path, name: str
) -> None:
    """A file name holding an ESC sequence or a bidi override is shown escaped (`\\x1b`,
    `\\u202e`) in the error of a missing file and in the notes of a run that reads it."""
    from straits.controls import TERMINAL_CONTROL

    missing = run("plan", str(tmp_path / name))
    assert missing.returncode == 2
    assert not TERMINAL_CONTROL.search(missing.stderr), repr(missing.stderr)
    assert ascii(name[1])[1:-1] in missing.stderr
    f = tmp_path / name
    f.write_text(example_path.read_text())
    out = tmp_path / ("r" + name + ".html")
    done = run("report", str(f), "-o", str(out), "--time-limit", "3")
    assert done.returncode in (0, 3), done.stderr
    assert out.is_file()
    assert not TERMINAL_CONTROL.search(done.stderr), repr(done.stderr)


@pytest.mark.parametrize(
    "written", ["China", "C", "CHN", "x" * 5000, "\u0131d", "\u017fg", "\u0131l"]
)
def test_a_country_that_is_no_code_says_what_a_code_is(written: str) -> None:
    """user32: `hq: China` (a name where scenario-reference.md asks for an ISO 3166-1 alpha-2
    code) was `Value should have at most 2 items after validation, not 5`, pydantic's words for
    a list, naming no code; the length is now the country check's, which says what is
    expected, and shows a long value cut short. brk32: ``hq: \u0131d`` (a dotless i) and
    ``\u017fg`` (a long s) were accepted as ID and SG: the check upper-cased the value and
    found a country, where the length and the code asked for two ASCII letters."""
    from straits.errors import InputError
    from straits.loading import parse_document, parse_scenario

    doc = parse_document(
        "straits: 1\nname: s\ndate: 2025-06-01\n"
        f"tenants: [{{id: t, hq: {written}}}]\n"
        "sites: [{id: s, country: SG, operator_hq: SG}]\n",
        source="s.yaml",
    )
    with pytest.raises(InputError) as err:
        parse_scenario(doc, source="s.yaml")
    assert err.value.path == "tenants[0].hq"
    assert "ISO 3166-1 alpha-2" in err.value.detail and "items" not in err.value.detail
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_scenario_validate_lists_every_problem_with_its_line(
    stdin: bool, example_path: Path, tmp_path: Path
) -> None:
    """`scenario validate`, the command that checks a scenario, printed the first problem
    and "(and 2 more problems)", with no way to see them but fixing and running it again
    (user64). It lists each, `error: SOURCE:LINE: FIELD: ...`, in the file's order; exit 2.
    The commands that use a scenario still name the first and count the rest."""
    text, line = _bad_scenario(example_path)
    lines = text.splitlines()
    op = next(i for i, ln in enumerate(lines) if "operator_hq:" in ln)
    lines[op] = lines[op].replace("operator_hq:", "operater_hq:")
    text = "\n".join(lines) + "\n"
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    p = run("scenario", "validate", "-" if stdin else str(f), stdin=text if stdin else None)
    assert p.returncode == 2, p.stderr
    source = "<stdin>" if stdin else str(f)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    site = max(i for i in range(op) if lines[i].lstrip().startswith("- id:")) + 1
    assert [e.split(": ")[1:3] for e in errors] == [
        [f"{source}:{site}", "sites[0].operator_hq"],  # missing: its site's line
        [f"{source}:{op + 1}", "sites[0].operater_hq"],
        [f"{source}:{line}", FIELD],
    ], p.stderr
    p = run("plan", str(f))
    assert p.returncode == 2
    assert len([ln for ln in p.stderr.splitlines() if ln.startswith("error:")]) == 1


def test_scenario_validate_reads_the_text_once_to_list_its_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """left64b: to list the problems, `scenario validate` parsed, validated and composed the
    scenario twice more than the check itself did (a 12 MB scenario with 90,000 problems took
    52 s where 25 s had done), and past 100 it said "there may be more" of a count it had. The
    text is now parsed once and composed once for every line; past 100 the total is given."""
    import yaml
    from typer.testing import CliRunner

    from straits import safe_yaml
    from straits.cli import app
    from straits.simulate.generate import generate_dict

    doc = generate_dict(workloads=2, sites=60, seed=1)
    for site in doc["sites"]:
        site["operater_hq"] = site.pop("operator_hq")  # two problems a site: 120
    f = tmp_path / "many.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    calls = {"load": 0, "compose": 0}

    def counted(name: str) -> object:
        real = getattr(safe_yaml, name)

        def call(text: str) -> object:
            calls[name] += 1
            return real(text)

        return call

    for name in calls:
        monkeypatch.setattr(safe_yaml, name, counted(name))
    r = CliRunner().invoke(app, ["scenario", "validate", str(f)])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 100
    assert all(e.split(": ")[1].startswith(f"{f}:") for e in errors)  # each with its line
    assert calls == {"load": 1, "compose": 1}
    last = r.output.splitlines()[-1]
    assert last.startswith(f"{f}: 120 "), r.output
