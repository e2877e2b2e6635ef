"""cli65: `straits check` and `straits estimate` named the first problem of a bad request and
counted the rest ("(and 3 more problems)"), with no way to see them but fixing and running it
again; a list of checks named the first bad request's problems alone. They now list every
problem as `scenario validate` does (user64): a line each, `error: SOURCE:LINE: FIELD: ...`,
in the file's order, the first 100 and then the total; exit 2. And an unknown name (a chip not
in the catalog, a country, a scenario's id, a rule pack) had no "did you mean": the closest
known names are now in the message and, as data, the error's and problem+json's
``suggestions``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from straits.cli import app
from straits.errors import InputError

REQUEST: dict[str, Any] = {
    "date": "2025-06-01",
    "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
}
ESTIMATE: dict[str, Any] = {
    "model": {"params": 7.2e10, "layers": 80, "d_model": 8192, "heads": 64, "seq_len": 8192},
    "tokens": 1.5e13,
    "chip": "H100-SXM",
}


def _errors(argv: list[str]) -> tuple[int, list[list[str]], list[str]]:
    """Exit code, each `error:` line as [SOURCE:LINE, FIELD], and every line of the output."""
    r = CliRunner().invoke(app, argv)
    lines = r.output.splitlines()
    errors = [ln.split(": ")[1:3] for ln in lines if ln.startswith("error:")]
    return r.exit_code, errors, lines


def _file(tmp_path: Path, doc: Any) -> Path:
    """``doc`` as indented JSON, one field a line, so each field has its own line."""
    f = tmp_path / "req.json"
    f.write_text(json.dumps(doc, indent=1) + "\n")
    return f


def _line(f: Path, text: str, after: int = 0) -> int:
    """The 1-based line of ``f`` holding ``text``, past line ``after``."""
    lines = f.read_text().splitlines()
    return next(i + 1 for i in range(after, len(lines)) if text in lines[i])


def test_check_lists_every_problem_of_a_request_with_its_line(tmp_path: Path) -> None:
    bad = {
        **REQUEST,
        "date": "2025-13-01",
        "action": "fly",
        "site": {"country": "SG", "operater_hq": "SG"},
    }
    f = _file(tmp_path, bad)
    code, errors, _ = _errors(["check", str(f)])
    assert code == 2
    assert errors == [
        [f"{f}:{_line(f, '2025-13-01')}", "date"],
        [f"{f}:{_line(f, 'fly')}", "action"],
        [f"{f}:{_line(f, 'site')}", "site.operator_hq"],  # missing: its parent's line
        [f"{f}:{_line(f, 'operater_hq')}", "site.operater_hq"],
    ]


def test_check_lists_the_problems_of_every_bad_request_of_a_list(tmp_path: Path) -> None:
    """Not only the first bad request's: the second's too, each under its [i]."""
    f = _file(
        tmp_path,
        [
            {**REQUEST, "site": {"country": "SGX", "operator_hq": "SG"}},
            REQUEST,
            {**REQUEST, "action": "fly", "chip": "H1OO"},
        ],
    )
    code, errors, _ = _errors(["check", str(f)])
    assert code == 2
    second = _line(f, '"date"', _line(f, '"date"') + 15)  # the third request's first line
    assert [e[1] for e in errors] == ["[0].site.country", "[2].action", "[2].chip"]
    assert errors[0][0] == f"{f}:{_line(f, 'SGX')}"
    assert errors[1][0] == f"{f}:{_line(f, 'fly', second)}"
    assert errors[2][0] == f"{f}:{_line(f, 'H1OO', second)}"


def test_a_check_of_one_problem_prints_one_line(tmp_path: Path) -> None:
    f = _file(tmp_path, {**REQUEST, "action": "fly"})
    code, errors, _ = _errors(["check", str(f)])
    assert (code, errors) == (2, [[f"{f}:{_line(f, 'fly')}", "action"]])


def test_check_lists_the_first_100_problems_then_the_total(tmp_path: Path) -> None:
    f = _file(tmp_path, [{**REQUEST, "action": "fly", "chip": "nope"} for _ in range(75)])
    code, errors, lines = _errors(["check", str(f)])
    assert code == 2
    assert len(errors) == 100
    assert all(e[0].startswith(f"{f}:") and e[0] != f"{f}:" for e in errors)
    assert errors[:3] == [
        [f"{f}:{_line(f, 'fly')}", "[0].action"],
        [f"{f}:{_line(f, 'nope')}", "[0].chip"],
        [f"{f}:{_line(f, 'fly', _line(f, 'nope'))}", "[1].action"],
    ]
    assert lines[-1].startswith(f"{f}: 150 "), lines[-1]


def test_estimate_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    bad = {**ESTIMATE, "tokens": "many", "chip": "H1OO"}
    bad["model"] = {**ESTIMATE["model"], "params": -1}
    f = _file(tmp_path, bad)
    code, errors, _ = _errors(["estimate", str(f)])
    assert code == 2
    assert errors == [
        [f"{f}:{_line(f, 'params')}", "model.params"],
        [f"{f}:{_line(f, 'many')}", "tokens"],
        [f"{f}:{_line(f, 'H1OO')}", "chip"],
    ]
    # with --chips the text is not the request's: each problem still listed, without a line
    code, errors, _ = _errors(["estimate", str(f), "--chips", "8"])
    assert (code, [e[1] for e in errors]) == (2, ["model.params", "tokens", "chip"])
    assert [e[0] for e in errors] == [str(f)] * 3


def test_the_api_lists_every_bad_request_of_a_list(planner_api: tuple[Any, dict[str, str]]) -> None:
    """problem+json keeps its keys; ``errors`` now holds the later requests' problems too,
    and ``detail`` counts them."""
    client, auth = planner_api
    body = [{**REQUEST, "date": "2025-13-01"}, REQUEST, {**REQUEST, "action": "fly"}]
    r = client.post("/v1/check", json=body, headers=auth)
    assert r.status_code == 400
    p = r.json()
    assert {"type", "title", "status", "detail", "path", "expected", "errors", "error"} <= set(p)
    assert p["path"] == "[0].date"
    assert [e["path"] for e in p["errors"]] == ["[0].date", "[2].action"]


# --- did you mean ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("H1OO", "H100-SXM"),  # letter O for zero
        ("h100", "H100-SXM"),
        ("\u041d100-SXM", "H100-SXM"),  # a Cyrillic EN
        ("\uff28\uff11\uff10\uff10-SXM", "H100-SXM"),  # fullwidth
        ("mi300", "MI300X"),
        ("B2OO", "B200"),
    ],
)
def test_close_names_of_a_chip(name: str, first: str) -> None:
    from straits.catalog import catalog
    from straits.errors import close_names

    assert close_names(name, catalog().ids)[0] == first


@pytest.mark.parametrize("name", ["", "zzz", "x" * 100_000, "\x00\xff\ud800"])
def test_close_names_of_nothing_like_a_name(name: str) -> None:
    from straits.catalog import catalog
    from straits.errors import close_names

    assert close_names(name, catalog().ids) == []


def test_an_unknown_chip_suggests_the_closest(tmp_path: Path) -> None:
    from straits.catalog import catalog
    from straits.errors import UnknownChipError

    with pytest.raises(UnknownChipError) as raised:
        catalog().get("H1OO")
    assert raised.value.suggestions[0] == "H100-SXM"
    f = _file(tmp_path, {**REQUEST, "chip": "H1OO"})
    r = CliRunner().invoke(app, ["check", str(f)])
    assert r.exit_code == 2
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert line.split(": ")[2] == "chip" and "'H100-SXM'" in line


@pytest.mark.parametrize(
    ("path", "body", "suggested"),
    [
        ("/v1/check", {**REQUEST, "chip": "H1OO"}, "H100-SXM"),
        ("/v1/estimate", {**ESTIMATE, "chip": "b2oo"}, "B200"),
        ("/v1/check", {**REQUEST, "site": {"country": "SGP", "operator_hq": "SG"}}, "SG"),
    ],
)
def test_the_api_problem_names_the_suggestions(
    planner_api: tuple[Any, dict[str, str]], path: str, body: Any, suggested: str
) -> None:
    client, auth = planner_api
    r = client.post(path, json=body, headers=auth)
    assert r.status_code == 400
    p = r.json()
    assert p["suggestions"][0] == suggested
    assert p["errors"][0]["suggestions"][0] == suggested


def test_the_api_names_each_items_suggestions(planner_api: tuple[Any, dict[str, str]]) -> None:
    client, auth = planner_api
    body = [{**REQUEST, "action": "fly"}, {**REQUEST, "chip": "H1OO"}]
    p = client.post("/v1/check", json=body, headers=auth).json()
    assert p["suggestions"] == []  # the first problem (`action`) names no unknown name
    assert "suggestions" not in p["errors"][0]
    assert p["errors"][1]["path"] == "[1].chip"
    assert p["errors"][1]["suggestions"][0] == "H100-SXM"


@pytest.mark.parametrize(
    ("code", "suggested"),
    [("SGP", ["SG"]), ("Singapore", ["SG"]), ("UK", ["GB"]), ("XX", []), ("\uff33\uff27", ["SG"])],
)
def test_a_country_suggests_its_code(code: str, suggested: list[str]) -> None:
    from straits.api import parse_check_document

    with pytest.raises(InputError) as raised:
        parse_check_document({**REQUEST, "site": {"country": code, "operator_hq": "SG"}}, "r")
    assert raised.value.path == "site.country"
    assert raised.value.suggestions == suggested


def test_an_unknown_scenario_reference_suggests_the_closest(example_path: Path) -> None:
    import yaml

    from straits.loading import parse_scenario

    doc = yaml.safe_load(example_path.read_text())
    site = doc["sites"][0]["id"]
    doc["datasets"][0]["located_at"] = site.upper() if site.upper() != site else site + "x"
    with pytest.raises(InputError) as raised:
        parse_scenario(doc, source="s")
    assert raised.value.path == "datasets[0].located_at"
    assert raised.value.suggestions[0] == site


def test_an_unknown_pack_suggests_the_closest(
    rules: Any, planner_api: tuple[Any, dict[str, str]]
) -> None:
    from straits.api import select_rules

    with pytest.raises(InputError) as raised:
        select_rules(rules, None, "enacted", ["us-ear-difusion", "zzzzzz"])
    assert raised.value.suggestions[0] == "us-ear-diffusion"
    from straits.rules.cases import run_cases

    with pytest.raises(InputError) as raised:
        run_cases(rules, ["eu-gdrp"])
    assert raised.value.suggestions[0] == "eu-gdpr"
    r = CliRunner().invoke(app, ["rules", "list", "--pack", "eu-gdrp"])
    assert r.exit_code == 2
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert line.split(": ")[1] == "--pack" and "'eu-gdpr'" in line
    client, auth = planner_api
    p = client.get("/v1/rules", params={"pack": "eu-gdrp"}, headers=auth).json()
    assert p["suggestions"][0] == "eu-gdpr"


def test_check_with_a_server_lists_the_problems_it_answered() -> None:
    """`check --server`: the problem+json's ``errors``, one each, with its suggestions."""
    import httpx

    from straits.client_io import error_for

    errors: list[dict[str, Any]] = [
        {"path": "[0].action", "detail": "bad action"},
        {"path": "[1].chip", "detail": "unknown chip", "suggestions": ["H100-SXM"]},
    ]
    r = httpx.Response(
        400,
        json={"detail": "bad action", "path": "[0].action", "errors": errors, "suggestions": []},
        request=httpx.Request("POST", "http://s/v1/check"),
    )
    exc = error_for(r, "http://s")
    assert isinstance(exc, InputError)
    assert [(e.path, e.detail) for e in exc.every] == [(x["path"], x["detail"]) for x in errors]
    assert (exc.total, exc.suggestions) == (2, [])


# --- hostile input ---------------------------------------------------------------------------
def test_a_list_of_10000_problems_lists_100_and_counts_them(tmp_path: Path) -> None:
    """3,400 requests of three problems each, every chip another unknown name."""
    bad = {**REQUEST, "action": "fly", "site": {"country": "SGX", "operator_hq": "SG"}}
    f = _file(tmp_path, [{**bad, "chip": f"Q{i:05}X"} for i in range(3400)])
    code, errors, lines = _errors(["check", str(f)])
    assert code == 2
    assert len(errors) == 100
    assert errors[-1][1] == "[33].action"
    assert lines[-1].startswith(f"{f}: 10,200 "), lines[-1]


def test_a_name_of_100000_characters_is_shortened_and_suggests_nothing(tmp_path: Path) -> None:
    from straits.api import parse_check_document

    name = "H100" + "x" * 100_000
    f = _file(tmp_path, [{**REQUEST, "chip": name, "action": "fly"}] * 3)
    code, errors, lines = _errors(["check", str(f)])
    assert code == 2 and len(errors) == 6
    assert max(len(ln) for ln in lines) < 2_000
    with pytest.raises(InputError) as raised:
        parse_check_document({**REQUEST, "chip": name}, "r")
    assert raised.value.suggestions == []
    assert len(str(raised.value)) < 2_000


def test_a_chip_in_look_alike_or_unprintable_characters(tmp_path: Path) -> None:
    f = _file(tmp_path, {**REQUEST, "chip": "\u202eH100\x00\x1b[31m", "action": "fly"})
    r = CliRunner().invoke(app, ["check", str(f)])
    assert r.exit_code == 2
    assert not any(c in r.output for c in "\u202e\x00\x1b")
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("error:") and ": chip: " in ln]
    assert "'H100-SXM'" in line


def test_a_binary_request_is_one_error(tmp_path: Path) -> None:
    f = tmp_path / "bin.json"
    f.write_bytes(bytes(range(256)) * 10)
    for command in ("check", "estimate"):
        code, errors, _ = _errors([command, str(f)])
        assert code == 2 and len(errors) == 1


def test_a_plan_of_an_unknown_site_suggests_the_closest(
    planner_api: tuple[Any, dict[str, str]], example_path: Path
) -> None:
    import yaml

    client, auth = planner_api
    doc = yaml.safe_load(example_path.read_text())
    site = doc["sites"][0]["id"]
    doc["datasets"][0]["located_at"] = site + "x"
    r = client.post("/v1/plans", content=json.dumps(doc, default=str), headers=auth)
    assert r.status_code == 400
    p = r.json()
    assert p["path"] == "datasets[0].located_at"
    assert p["suggestions"][0] == site
    assert p["errors"][0]["suggestions"][0] == site


def test_an_unknown_name_holding_braces_is_shown_as_written() -> None:
    """pydantic fills in its context's keys one after another: a chip named `{suggestions}`
    was shown as the list of suggestions, `[]`."""
    from straits.api import parse_check_document

    for name in ("{suggestions}", "{message}"):
        with pytest.raises(InputError) as raised:
            parse_check_document({**REQUEST, "chip": name}, "r")
        assert repr(name) in raised.value.detail


def test_10000_unknown_packs_are_named_10(rules: Any) -> None:
    from straits.api import select_rules

    with pytest.raises(InputError) as raised:
        select_rules(rules, None, "enacted", [f"p{i}" * 50 for i in range(10_000)])
    assert len(str(raised.value)) < 2_000


def test_the_total_names_a_file_of_markup_as_written(tmp_path: Path) -> None:
    """`SOURCE: N problems` was Rich markup: a file named `[red]x.json` was said as `x.json`
    (`scenario validate` said it so too, user64)."""
    f = tmp_path / "[red]x.json"
    f.write_text(json.dumps([{**REQUEST, "action": "fly", "chip": "nope"}] * 60, indent=1))
    code, errors, lines = _errors(["check", str(f)])
    assert code == 2 and len(errors) == 100
    assert lines[-1].startswith(f"{f}: 120 "), lines[-1]
