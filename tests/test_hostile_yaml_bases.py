"""Numbers YAML 1.1 reads in another base than ten are refused (atk65). A body that is not
valid JSON goes to the YAML parser (to name the line of the problem; a request sent by curl's
``--data-binary`` is labelled a form), and YAML 1.1 read ``"subjects": 01000001`` as octal:
the check was decided for 262,145 people, under the CAC's 1,000,000 line it was meant to
cross. ``1:0:0`` was 3,600 (base 60), ``0x0F4241`` hexadecimal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits import safe_yaml
from test_api import Api, running_api
from test_ledger_cli import straits

ROOT = Path(__file__).resolve().parents[1]
REQUEST = (ROOT / "examples" / "request.json").read_text()

# (the number as written, what YAML 1.1 read it as)
OTHER_BASES = [
    ("01000001", 262_145),
    ("-010", -8),
    ("00", 0),
    ("0_5", 5),
    ("0x0F4241", 1_000_001),
    ("0b101", 5),
    ("1:0:0", 3_600),
    ("12:30", 750),
    ("1:30.5", 90.5),
]

# what is still read as it is written
DECIMAL = [("0", 0), ("-0", 0), ("10", 10), ("1_000", 1000), ("0.5", 0.5), ("10.25", 10.25)]


@pytest.mark.parametrize(("written", "read_as"), OTHER_BASES)
def test_a_number_in_another_base_is_refused_naming_the_reading(
    written: str, read_as: float
) -> None:
    with pytest.raises(safe_yaml.YamlLimitError) as exc:
        safe_yaml.load(f"a: 1\nb: {written}\n")
    assert exc.value.line == 2
    assert f"{read_as:,}" in str(exc.value)
    # quoted, it is text, as written
    assert safe_yaml.load(f"b: '{written}'") == {"b": written}


@pytest.mark.parametrize(("written", "value"), DECIMAL)
def test_decimal_numbers_are_read(written: str, value: float) -> None:
    assert safe_yaml.load(f"b: {written}") == {"b": value}


def octal_request() -> str:
    body = REQUEST.replace("3000000", "01000001")
    assert body != REQUEST
    return body


def test_check_refuses_an_octal_count_of_people(tmp_path: Path) -> None:
    f = tmp_path / "oct.json"
    f.write_text(octal_request())
    r = straits("check", str(f), "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "oct.json" in r.stderr and "262,145" in r.stderr


@pytest.mark.parametrize("written", ["0999999", "08", "09.5"])
def test_check_refuses_a_count_with_a_leading_zero_that_is_no_octal(
    tmp_path: Path, written: str
) -> None:
    """``0999999`` is no octal: YAML 1.1 read it as text, which the count's validator then read
    as 999,999 people (YAML 1.2 would too, where ``0755`` is 755): refused like the octal."""
    f = tmp_path / "zero.yaml"
    f.write_text(REQUEST.replace("3000000", written))
    r = straits("check", str(f), "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "zero.yaml" in r.stderr and "data.subjects" in r.stderr, r.stderr


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/yaml", None]
)
def test_the_api_refuses_an_octal_count_of_people(api: Api, content_type: str | None) -> None:
    headers = api.auth("t1", "planner")
    if content_type:
        headers["Content-Type"] = content_type
    r = api.client.post("/v1/check", content=octal_request(), headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "262,145" in json.dumps(r.json())


@pytest.mark.parametrize("digits", [41, 5000])
def test_a_json_integer_of_too_many_digits_is_named_with_its_line(digits: int) -> None:
    """JSON's own reader took any length: past 4,300 digits the answer was Python's message
    ("Exceeds the limit (4300 digits) ..."), with no line (a hostile-input review); YAML's
    reader already refused more than 40 digits."""
    from straits.errors import InputError
    from straits.loading import parse_document, parse_json

    text = REQUEST.replace("3000000", "9" * digits)
    assert text != REQUEST
    line = text[: text.index("9" * digits)].count("\n") + 1
    for parse in (parse_json, parse_document):
        with pytest.raises(InputError) as exc:
            parse(text, source="body")
        assert exc.value.line == line and f"{digits:,} digits".replace(",", "") in str(
            exc.value
        ).replace(",", ""), str(exc.value)
    assert parse_json('{"a": -' + "9" * 40 + "}", source="b") == {"a": -int("9" * 40)}
