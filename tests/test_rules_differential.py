"""Differential check: Cedar's decisions against a plain-Python reading of the same law.

The reading below is written from shared/reference/rules-timeline.md (and the conservative
readings the packs state in @reading), not from the policies: the 3A090 tiers computed from a
chip's TPP and performance density, the destinations and headquarters of each US rule by date,
the CAC volume tiers of 2022 and 2024 and the mechanisms before them, GDPR adequacy, the
EU-US Data Privacy Framework, the EEA's outermost regions and the Brexit transition. Hypothesis
draws requests, leaning on the edges (the day before, of and after each rule, each volume
threshold and the numbers next to it); a disagreement fails with the request.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from straits.catalog import catalog, get_chip
from straits.model.request import CheckRequest
from straits.rules import ruleset

D = dt.date.fromisoformat
RULES = ruleset()
#: requests drawn per property: more where the slow tests run (CI), fewer in `make test`
EXAMPLES = 1500 if os.environ.get("STRAITS_SLOW") == "1" else 300

# --- country groups, written out for the countries drawn (15 CFR Part 740 Supp. 1) -------------
D1 = {"CN", "HK", "MO", "RU", "VN", "BY", "KP"}
D4 = {"CN", "HK", "MO", "RU", "SA", "AE", "IR", "KP", "SY"}
D5 = {"CN", "HK", "RU", "IR", "BY", "KP", "CU", "SY"}
D5_MACAU = D5 | {"MO"}
TIER1 = {"US", "DE", "JP", "GB", "FR"}
EEA = {"DE", "FR", "NO", "RE", "AX"}  # with the outermost regions and Åland (TFEU Art. 355)
#: under EU law until the end of the Brexit transition (Withdrawal Agreement Arts. 126-127)
EU_UNTIL_2020 = {"GB", "GI"}
ADEQUATE = {"JP", "CH", "GB"}
#: adequate under UK law from 2021-01-01 (DPA 2018 Sch. 21 para. 5), of the countries drawn: the
#: EEA, Gibraltar and the EU's decisions of 2020-12-31; Korea from 2022-12-19 (SI 2022/1213)
UK_ADEQUATE = EEA | {"GI", "JP", "CH"}
EXPORT_COUNTRIES = [
    "CN",
    "HK",
    "MO",
    "RU",
    "VN",
    "SA",
    "AE",
    "SG",
    "MY",
    "US",
    "DE",
    "JP",
    "IR",
    "BY",
]
#: 15 CFR Part 746: every US-origin chip needs a licence, policy of denial, for a site in the
#: country or a buyer headquartered there, from the day given (Cuba, North Korea, Iran and Syria
#: from the EAR's publication in 1996, before any day Straits plans for)
EMBARGOES = {
    "CU": "1996-03-25",
    "KP": "1996-03-25",
    "IR": "1996-03-25",
    "SY": "1996-03-25",
    "RU": "2022-02-24",
    "BY": "2022-03-02",
}


# --- the 3A090 tiers from the specs ---------------------------------------------------------
def tier_2022(chip_id: str) -> bool:
    c = get_chip(chip_id)
    io = c.io_gbps if c.io_gbps is not None else math.inf  # unknown I/O read as high
    return c.tpp_upper >= 4800 and io >= 600


def tier_2023(chip_id: str) -> str | None:
    c = get_chip(chip_id)
    tpp = c.tpp_upper
    if tpp >= 4800:
        return "a"
    if not c.datacenter or tpp < 1600:
        return None
    pd = tpp / c.die_mm2.mid if c.die_mm2 is not None else math.inf  # unknown: read as high
    if pd >= 5.92:
        return "a"
    if (2400 <= tpp < 4800 and 1.6 <= pd < 5.92) or (tpp >= 1600 and 3.2 <= pd < 5.92):
        return "b"
    return None


def family(chip_id: str, names: Iterable[str]) -> bool:
    return any(chip_id.startswith(n) for n in names)


# --- US export controls on a purchase (procure) ----------------------------------------------
Need = tuple[str, str]  # (authorization, presumption)


def export_needs(r: CheckRequest) -> list[Need]:
    assert r.chip is not None
    c = get_chip(r.chip)
    d, s, hq, ships = r.date, r.site.country, r.tenant.hq, r.ships_from
    out: list[Need] = []
    if c.origin != "US":
        return out
    bis = "bis-license"
    if r.tenant.entity_listed:
        out.append((bis, "denial"))
    for country, start in EMBARGOES.items():
        if country in (s, hq) and d >= D(start):
            out.append((bis, "denial"))
    if family(c.id, ("A100", "H100")) and D("2022-08-26") <= d:
        if s in {"CN", "HK"} and d < D("2022-10-07"):
            out.append((bis, "denial"))
        if s == "RU" and d < D("2023-11-17"):
            out.append((bis, "denial"))
    if D("2022-10-07") <= d < D("2023-11-17") and tier_2022(c.id) and s in {"CN", "MO", "HK"}:
        out.append((bis, "denial"))
    named = family(c.id, ("A100", "A800", "H100", "H800", "L40S"))
    tier = tier_2023(c.id)
    if (named and D("2023-10-23") <= d < D("2023-11-17")) or (tier and d >= D("2023-11-17")):
        if s in D5_MACAU:
            band = (
                d >= D("2026-01-15")
                and s in {"CN", "MO", "HK"}  # Hong Kong is China for the EAR (EO 13936)
                and c.tpp_upper < 21000
                and c.hbm_tbps.upper * 1000 < 6500
            )
            out.append((bis, "case-by-case" if band and ships == "US" else "denial"))
        elif s in D1 | D4:
            out.append((bis, "approval"))
        if hq in D5_MACAU and s not in D5_MACAU:
            out.append((bis, "denial"))
    h20_like = (
        c.id in ("H20", "MI308X")
        or c.hbm_tbps.upper * 1000 >= 4000
        or (c.io_gbps if c.io_gbps is not None else math.inf) >= 900
    )
    reach = D5_MACAU | {"CN", "HK", "MO"}
    if (
        c.datacenter
        and tier is None
        and h20_like
        and (s in reach or hq in reach)
        and d >= D("2025-04-09")
    ):
        out.append((bis, "denial" if d < D("2025-08-11") else "approval"))
    if c.datacenter and ships == "MY" and s != "MY" and d >= D("2025-07-14"):
        out.append(("my-strategic-trade-permit", "approval"))
    if r.regime == "ai-diffusion" and tier and d >= D("2025-05-15"):
        if s in D5_MACAU:
            out.append((bis, "denial"))
        elif s not in TIER1 and r.quantity * math.ceil(c.tpp_upper) > 26_900_000:
            out.append((bis, "approval"))
    return out


# --- cross-border data --------------------------------------------------------------------------
SATISFIES = {
    "cac-security-assessment": {"cac-security-assessment"},
    "cac-standard-contract": {
        "cac-standard-contract",
        "cac-certification",
        "cac-security-assessment",
    },
    "pipl-art38-basis": {
        "pipl-art38-basis",
        "cac-standard-contract",
        "cac-certification",
        "cac-security-assessment",
    },
}


def data_needs(r: CheckRequest) -> list[Need]:
    assert r.data is not None
    x, d, s = r.data, r.date, r.site.country
    personal = bool({"personal", "sensitive_personal"} & set(x.classes))
    important = "important" in x.classes
    out: list[Need] = []
    if x.origin == "CN" and s != "CN":
        assess, contract = "cac-security-assessment", "cac-standard-contract"
        basis = "pipl-art38-basis"
        if important and D("2021-09-01") <= d < D("2022-09-01"):
            out.append((assess, "approval"))
        if personal and D("2021-11-01") <= d < D("2022-09-01"):
            out.append((basis, "approval"))
        if personal and r.tenant.ciio and d >= D("2021-11-01"):
            out.append((assess, "approval"))
        if D("2022-09-01") <= d < D("2024-03-22"):  # since 1 January of the previous year
            if important:
                out.append((assess, "approval"))
            if personal:
                if (
                    x.subjects >= 1_000_000
                    or x.subjects + x.prior_subjects_since_last_year >= 100_000
                    or x.sensitive_subjects + x.prior_sensitive_since_last_year >= 10_000
                ):
                    out.append((assess, "approval"))
                else:  # no standard contract before 2023-06-01: a legal basis under Art. 38
                    out.append((basis if d < D("2023-06-01") else contract, "approval"))
        if d >= D("2024-03-22"):  # since 1 January of this year; "or more" includes the number
            total = x.subjects + x.prior_subjects_ytd
            sensitive = x.sensitive_subjects + x.prior_sensitive_ytd
            if important:
                out.append((assess, "approval"))
            if personal:
                if total >= 1_000_000 or sensitive >= 10_000:
                    out.append((assess, "approval"))
                elif total >= 100_000 or sensitive >= 1 or "sensitive_personal" in x.classes:
                    out.append((contract, "approval"))
    adequate = ADEQUATE - ({"JP"} if d < D("2019-01-23") else set())  # its decision's date
    adequate |= {"KR"} if d >= D("2021-12-17") else set()  # the EU's decision on Korea
    in_eu = EEA | (EU_UNTIL_2020 if d < D("2021-01-01") else set())
    if x.origin in in_eu and personal and d >= D("2018-05-25") and s not in in_eu | adequate:
        covered = s == "US" and r.site.dpf_certified and d >= D("2023-07-10")
        if not covered:
            out.append(("gdpr-transfer-safeguard", "approval"))
    if x.origin == "GB" and personal and d >= D("2021-01-01"):  # the UK GDPR's
        uk_adequate = UK_ADEQUATE | ({"KR"} if d >= D("2022-12-19") else set())
        if s != "GB" and s not in uk_adequate:  # no US recipient: the UK Extension is unseen
            out.append(("uk-transfer-safeguard", "approval"))
    return out


def decide(needs: list[Need], held: Iterable[str]) -> tuple[str, set[str]]:
    held = set(held)
    unmet, deny = set(), False
    for auth, presumption in needs:
        if held & SATISFIES.get(auth, {auth}):
            continue
        unmet.add(auth)
        deny |= presumption == "denial"
    return ("deny" if deny else "conditional" if unmet else "allow"), unmet


def check(req: CheckRequest, needs: list[Need]) -> None:
    want = decide(needs, req.tenant.authorizations)
    d = RULES.check(req)
    got = (d.decision, set(d.requires))
    assert got == want, (
        f"Cedar says {got}, the plain reading {want} for\n"
        f"{json.dumps(req.model_dump(mode='json', exclude_none=True))}\n"
        f"rules applied: {[r.rule for r in d.reasons]}"
    )


# --- requests, leaning on the edges -------------------------------------------------------------
def near(days: list[str], lo: str, hi: str) -> st.SearchStrategy[dt.date]:
    """Mostly the day before, of or after a rule's date; sometimes any day."""
    edges = [D(x) + dt.timedelta(days=k) for x in days for k in (-1, 0, 1)]
    return st.one_of(st.sampled_from(edges), st.sampled_from(edges), st.dates(D(lo), D(hi)))


def around(edges: list[int], top: int) -> st.SearchStrategy[int]:
    """A count at a threshold or next to it, none, or any count up to ``top``."""
    at = st.sampled_from(sorted({max(0, e + k) for e in edges for k in (-1, 0, 1)}))
    return st.one_of(at, at, st.just(0), st.integers(0, top))


SUBJECTS = around([100_000, 1_000_000], 2_000_000)
SENSITIVE = around([1, 10_000], 20_000)
EXTRA = st.one_of(st.just(0), around([100_000, 1_000_000], 1_000_000))
EXTRA_SENSITIVE = st.one_of(st.just(0), around([10_000], 20_000))


@st.composite
def volumes(draw: st.DrawFn) -> dict[str, int]:
    """Totals near the CAC thresholds, split between this transfer and earlier exports (this
    year, and since 1 January of last year, which includes this year)."""

    def split(total: int) -> tuple[int, int]:
        now = draw(st.one_of(st.just(total), st.integers(0, total)))
        return now, total - now

    subjects, prior = split(draw(SUBJECTS))
    sensitive, prior_sensitive = split(draw(SENSITIVE))
    extra = draw(EXTRA)
    extra_sensitive = draw(EXTRA_SENSITIVE)
    return {
        "subjects": subjects,
        "sensitive_subjects": sensitive,
        "prior_subjects_ytd": prior,
        "prior_sensitive_ytd": prior_sensitive,
        "prior_subjects_since_last_year": prior + extra,
        "prior_sensitive_since_last_year": prior_sensitive + extra_sensitive,
    }


#: each row of the reference with the chips and places it is about: most purchases are drawn
#: around one of them, the rest anywhere
EXPORT_ROWS: list[tuple[str, list[str], list[str]]] = [
    ("2022-02-24", ["A100-SXM-80GB", "H100-SXM", "Ascend-910B"], ["RU", "BY", "SG"]),
    ("2022-03-02", ["A100-SXM-80GB", "H20", "Ascend-910B"], ["BY", "RU", "SG"]),
    (
        "2022-08-26",
        ["A100-SXM-80GB", "A100-SXM-40GB", "H100-SXM", "A800-SXM"],
        ["CN", "HK", "MO", "RU", "SG"],
    ),
    (
        "2022-10-07",
        ["A100-SXM-80GB", "H100-SXM", "A800-SXM", "H800-SXM", "TPU-v4"],
        ["CN", "HK", "MO", "RU"],
    ),
    (
        "2023-10-23",
        ["A100-SXM-80GB", "A800-SXM", "H100-SXM", "H800-SXM", "H200-SXM", "TPU-v4", "MI300X"],
        ["CN", "MO", "RU", "VN", "SA", "SG"],
    ),
    (
        "2023-11-17",
        ["A100-SXM-80GB", "A800-SXM", "H800-SXM", "H200-SXM", "TPU-v4", "H20"],
        ["CN", "MO", "RU", "VN", "SA", "SG"],
    ),
    ("2025-04-09", ["H20", "A800-SXM", "H100-SXM", "Ascend-910B"], ["CN", "HK", "MO", "SG"]),
    ("2025-05-15", ["H100-SXM", "H20", "B200", "Ascend-910B"], ["CN", "SG", "MY", "DE"]),
    ("2025-07-14", ["H100-SXM", "H20", "Ascend-910B"], ["SG", "MY", "CN"]),
    ("2025-08-11", ["H20", "H100-SXM"], ["CN", "HK", "SG"]),
    ("2026-01-15", ["H200-SXM", "MI300X", "B200", "H20"], ["CN", "HK", "MO", "RU", "SG"]),
]
ALL_CHIPS = [c.id for c in catalog()]


@st.composite
def purchases(draw: st.DrawFn) -> CheckRequest:
    if draw(st.integers(0, 3)):
        day, chips, places = draw(st.sampled_from(EXPORT_ROWS))
        date = D(day) + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1])))
    else:
        date, chips, places = (
            draw(st.dates(D("2022-06-01"), D("2026-12-31"))),
            ALL_CHIPS,
            EXPORT_COUNTRIES,
        )
    site = draw(st.sampled_from(places))
    hq = draw(st.sampled_from([site, "SG", "CN", "MO", *EXPORT_COUNTRIES, *EMBARGOES]))
    auths = draw(
        st.one_of(
            st.just([]),
            st.lists(st.sampled_from(["bis-license", "my-strategic-trade-permit"]), unique=True),
        )
    )
    return CheckRequest(
        date=date,
        regime=draw(st.sampled_from(["enacted", "ai-diffusion"])),
        action="procure",
        chip=draw(st.sampled_from(chips)),
        quantity=draw(st.sampled_from([1, 8, 1698, 1700, 20000])),
        tenant={"hq": hq, "entity_listed": draw(st.booleans()), "authorizations": auths},
        site={"country": site, "operator_hq": site},
        ships_from=draw(st.none() | st.sampled_from(["US", "MY", "SG", "CN"])),
    )


DATA_DATES = near(
    [
        "2018-05-25",
        "2021-01-01",
        "2021-09-01",
        "2021-11-01",
        "2022-09-01",
        "2023-06-01",
        "2023-07-10",
        "2024-03-22",
    ],
    "2018-01-01",
    "2026-12-31",
)
NO_AUTHORIZATIONS: st.SearchStrategy[list[str]] = st.just([])


def _edge(day: str) -> st.SearchStrategy[dt.date]:
    return st.sampled_from([D(day) + dt.timedelta(days=k) for k in (-1, 0, 1)])


#: the data rows of the reference: when, and whose data
DATA_ROWS: list[tuple[st.SearchStrategy[dt.date], list[str]]] = [
    (_edge("2021-09-01"), ["CN"]),
    (_edge("2021-11-01"), ["CN"]),
    (_edge("2022-09-01"), ["CN"]),
    (_edge("2023-06-01"), ["CN"]),
    (_edge("2024-03-22"), ["CN"]),
    (st.dates(D("2022-09-01"), D("2024-03-21")), ["CN"]),
    (st.dates(D("2024-03-22"), D("2026-12-31")), ["CN"]),
    (_edge("2018-05-25"), ["DE", "FR", "NO"]),
    (_edge("2023-07-10"), ["DE", "FR", "NO"]),
    (_edge("2019-01-23"), ["DE", "FR", "NO", "GB"]),  # Japan's adequacy decision
    (_edge("2021-01-01"), ["DE", "GB", "GI", "RE"]),  # the end of the Brexit transition
    (_edge("2021-12-17"), ["DE", "GB"]),  # the EU's adequacy decision for Korea
    (_edge("2022-12-19"), ["GB", "DE"]),  # the UK's adequacy regulations for Korea
    (DATA_DATES, ["CN", "DE", "FR", "NO", "RE", "AX", "GB", "GI", "CH", "US", "SG"]),
]


@st.composite
def transfers(draw: st.DrawFn) -> CheckRequest:
    dates, origins = draw(st.sampled_from(DATA_ROWS))
    origin = draw(st.sampled_from(origins))
    action = draw(st.sampled_from(["transfer-data", "finetune"]))
    classes = draw(
        st.one_of(
            st.just(["personal"]),
            st.just(["sensitive_personal"]),
            st.lists(
                st.sampled_from(["public", "personal", "sensitive_personal", "important"]),
                min_size=1,
                max_size=3,
                unique=True,
            ),
        )
    )
    site = draw(
        st.sampled_from(
            ["SG", "HK", "US", "US", "BR", "CN", "DE", "JP", "KR", "CH", "GB", "GI", "RE"]
        )
    )
    auths = draw(
        NO_AUTHORIZATIONS
        | st.lists(
            st.sampled_from(
                [
                    "cac-standard-contract",
                    "cac-certification",
                    "cac-security-assessment",
                    "pipl-art38-basis",
                    "gdpr-transfer-safeguard",
                    "uk-transfer-safeguard",
                ]
            ),
            max_size=2,
            unique=True,
        )
    )
    counts = draw(volumes())
    if "sensitive_personal" not in classes:  # a request counts sensitive people only then
        counts["sensitive_subjects"] = 0
    return CheckRequest(
        date=draw(dates),
        action=action,
        chip="Ascend-910B" if action == "finetune" else None,
        tenant={"hq": "SG", "ciio": draw(st.booleans()), "authorizations": auths},
        site={"country": site, "operator_hq": site, "dpf_certified": draw(st.booleans())},
        data={"origin": origin, "classes": classes, **counts},
    )


@settings(max_examples=EXAMPLES)
@given(purchases())
def test_export_controls_agree_with_the_plain_reading(req: CheckRequest) -> None:
    check(req, export_needs(req))


@settings(max_examples=EXAMPLES)
@given(transfers())
def test_data_rules_agree_with_the_plain_reading(req: CheckRequest) -> None:
    check(req, data_needs(req))


def test_the_reading_disagrees_when_a_threshold_moves() -> None:
    """The comparison can fail: a reading off by one at '10,000 or more' is caught."""
    req = CheckRequest.model_validate(
        {
            "date": "2025-06-01",
            "action": "transfer-data",
            "tenant": {"hq": "SG"},
            "site": {"country": "SG", "operator_hq": "SG"},
            "data": {
                "origin": "CN",
                "classes": ["sensitive_personal"],
                "subjects": 10_000,
                "sensitive_subjects": 10_000,
            },
        }
    )
    wrong = [("cac-standard-contract", "approval")]  # as if 10,000 were still below the tier
    try:
        check(req, wrong)
    except AssertionError as exc:
        assert "cac-security-assessment" in str(exc) and '"subjects":10000' in str(exc).replace(
            " ", ""
        )
    else:
        raise AssertionError("a wrong reading was not caught")
