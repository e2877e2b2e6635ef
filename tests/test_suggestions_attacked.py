"""rev65c: cli65's "did you mean" and every-problem listing, attacked.

A catalog name without a suffix (``H20``, ``B200``) was not suggested for itself written with
one (``H20-SXM``, ``B200-SXM``): only the known names' part before the first ``-`` was
compared, never the given name's, so the whole name's closest was another chip the rules
treat otherwise (``H200-SXM`` for ``H20-SXM``, ``H200-SXM`` for ``B200-SXM``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.errors import InputError
from test_cli_every_problem import REQUEST


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("H20-SXM", "H20"),  # the China-market H20, not the export-controlled H200
        ("H20-PCIe", "H20"),
        ("h20-96gb", "H20"),
        ("B200-SXM", "B200"),  # Blackwell, not the Hopper H200
        ("MI300X-OAM", "MI300X"),
        ("H100-PCIe", "H100-SXM"),
        ("H200-NVL", "H200-SXM"),  # not H20: its head is H200-SXM's
        ("A100-80GB", "A100-SXM-80GB"),  # of two equal heads, the closer whole
        ("H1OO", "H100-SXM"),
    ],
)
def test_a_suffixed_name_suggests_the_name_it_extends(name: str, first: str) -> None:
    from straits.catalog import catalog
    from straits.errors import UnknownChipError

    with pytest.raises(UnknownChipError) as raised:
        catalog().get(name)
    assert raised.value.suggestions[0] == first


def test_the_api_suggests_h20_for_h20_sxm(planner_api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = planner_api
    r = client.post("/v1/check", json={**REQUEST, "chip": "H20-SXM"}, headers=auth)
    assert r.status_code == 400
    body = r.json()
    assert body["suggestions"][0] == "H20"
    assert body["errors"][0]["suggestions"][0] == "H20"


# --- suggestions compared for the listed problems alone ----------------------------------------
def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names compared with the known ones (each call of errors._closest)."""
    import straits.errors as errors

    real, seen = errors._closest, []

    def counted(name: str, forms: Any, n: int) -> tuple[str, ...]:
        seen.append(name)
        return real(name, forms, n)

    monkeypatch.setattr(errors, "_closest", counted)
    return seen


def test_a_list_of_checks_compares_the_listed_names_alone(
    monkeypatch: pytest.MonkeyPatch, planner_api: tuple[TestClient, dict[str, str]]
) -> None:
    """1,000 requests, each naming another unknown chip: the 100 listed were compared; the
    other 900 too (the catalog compared 1,000 times, the listing's time 7 times over)."""
    from straits.errors import MAX_PROBLEMS

    seen = _counting(monkeypatch)
    body = [{**REQUEST, "chip": f"H{i:04d}-SXM"} for i in range(1000)]
    client, auth = planner_api
    r = client.post("/v1/check", json=body, headers=auth)
    assert r.status_code == 400
    p = r.json()
    assert len(p["errors"]) == MAX_PROBLEMS
    assert all(e.get("suggestions") for e in p["errors"])  # every listed one still has them
    assert len(seen) <= MAX_PROBLEMS


def test_a_scenario_compares_the_listed_names_alone(
    monkeypatch: pytest.MonkeyPatch, example_path: Any
) -> None:
    import yaml

    from straits.errors import MAX_PROBLEMS, InputError
    from straits.loading import parse_scenario

    doc = yaml.safe_load(example_path.read_text())
    pool = doc["sites"][0]["pools"][0]
    doc["sites"][0]["pools"] = [{**pool, "chip": f"H{i:04d}-SXM"} for i in range(1000)]
    seen = _counting(monkeypatch)
    with pytest.raises(InputError) as raised:
        parse_scenario(doc, source="s")
    assert raised.value.suggestions  # the first problem's
    assert raised.value.total == 1000
    assert len(seen) <= MAX_PROBLEMS


# --- a scenario's own ids are not kept ---------------------------------------------------------
def test_a_large_set_of_known_names_is_not_kept() -> None:
    """close_names cached each known set's forms (64 sets) and each comparison (1,024, each
    holding its set): a server answering scenarios of 10,000 sites, each with an unknown
    reference, kept every one of them (200 such scenarios: 756 MB, never freed)."""
    import sys

    from straits.errors import close_names

    site = "".join(["sg-", "jurong-", "unique-0042"])  # a string of its own, not interned
    before = sys.getrefcount(site)
    known = [site] + [f"site-{j:05d}" for j in range(2000)]
    assert close_names("sg-jurong-unique-004", known) == [site]
    del known
    assert sys.getrefcount(site) == before


def test_the_catalog_is_still_compared_once() -> None:
    """A small known set (the catalog) keeps its cache: a repeated name is compared once."""
    from straits.catalog import catalog
    from straits.errors import _closest, close_names

    _closest.cache_clear()
    for _ in range(50):
        close_names("H1OO", catalog().ids)
    assert _closest.cache_info().misses == 1


# --- a country's name of two words ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("United States", "US"),
        ("united kingdom", "GB"),
        ("Hong Kong", "HK"),
        ("Korea, Republic of", "KR"),  # the docstring's own example
        ("Saudi Arabia", "SA"),
        ("Singapore", "SG"),  # one word: found before too
        ("Russia", "RU"),  # names pycountry lacks (its own: Russian Federation, Türkiye)
        ("turkey", "TR"),
        ("Great Britain", "GB"),
    ],
)
def test_a_country_named_in_words_suggests_its_code(
    name: str, code: str, planner_api: tuple[TestClient, dict[str, str]]
) -> None:
    """The names were keyed case-folded, looked up case-folded without spaces: a name of two
    words or more (United States, Hong Kong) never matched."""
    from straits.catalog.countries import close_codes

    assert close_codes(name) == [code]
    client, auth = planner_api
    site = {**REQUEST["site"], "country": name}
    r = client.post("/v1/check", json={**REQUEST, "site": site}, headers=auth)
    assert r.status_code == 400
    assert r.json()["suggestions"] == [code]


# --- check --server counts the problems past the 100 listed -----------------------------------
def test_a_server_s_problems_past_100_are_counted(
    planner_api: tuple[TestClient, dict[str, str]],
) -> None:
    """`check FILE` ends with `FILE: 150 problems; the first 100 are listed`; `check --server`
    listed the 100 of problem+json's `errors` and said nothing of the 50 others (its total was
    the count of `errors`): problem+json now says `total`."""
    import httpx

    from straits.client_io import error_for
    from straits.errors import MAX_PROBLEMS

    client, auth = planner_api
    body = [{**REQUEST, "chip": f"Q{i:04d}X"} for i in range(150)]
    r = client.post("/v1/check", json=body, headers=auth)
    assert r.status_code == 400
    assert r.json()["total"] == 150
    assert len(r.json()["errors"]) == MAX_PROBLEMS
    one = client.post("/v1/check", json={**REQUEST, "chip": "Q"}, headers=auth).json()
    assert one["total"] == 1
    answered = httpx.Response(
        400, json=r.json(), request=httpx.Request("POST", "http://s/v1/check")
    )
    exc = error_for(answered, "http://s")
    assert isinstance(exc, InputError)
    assert (len(exc.every), exc.total) == (MAX_PROBLEMS, 150)


@pytest.mark.parametrize("total", [None, "150", True, 3, -1])
def test_a_server_s_odd_total_is_the_count_of_its_errors(total: object) -> None:
    import httpx

    from straits.client_io import error_for

    errors = [{"path": f"[{i}].chip", "detail": "unknown chip"} for i in range(5)]
    answered = httpx.Response(
        400,
        json={"detail": "unknown chip", "errors": errors, "total": total},
        request=httpx.Request("POST", "http://s/v1/check"),
    )
    exc = error_for(answered, "http://s")
    assert isinstance(exc, InputError)
    assert exc.total == 5
