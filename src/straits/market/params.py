"""The market file: every parameter of the simulation, each with its source and confidence.

A parameter is a :class:`Param`: a ``value``, or a ``low``/``high`` range. Ranges are used at
their midpoint by ``straits market`` (and the output says which ones were) and sampled over by
``straits market sweep``. ``unpublished: true`` marks a quantity no public source gives (how fast
demand moves offshore, how much of a country's capacity rents AI chips): the output lists those
separately. Dated series (:class:`Point`) are linear between their dates and flat outside them.

The shipped file is ``straits/catalog/market.yaml``. A user file may say ``extends: shipped`` and
give only what it changes (mappings merge key by key, lists replace).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from straits.limits import MAX_DATE, MIN_DATE
from straits.model.types import (
    Authorization,
    ChipId,
    Country,
    DataClass,
    Id,
    Regime,
    printable,
)

if TYPE_CHECKING:
    from straits.model.scenario import ModelSpec

Confidence = Literal["V", "V2", "D", "M"]
Kind = Literal["pretrain", "finetune", "serve_home", "serve_abroad"]
KINDS: tuple[Kind, ...] = ("pretrain", "finetune", "serve_home", "serve_abroad")
#: kinds sized by the estimator as training, the others as serving
TRAINING_KINDS: tuple[Kind, ...] = ("pretrain", "finetune")
#: the Straits action each kind asks the rules about
ACTION_OF: dict[str, str] = {
    "pretrain": "train",
    "finetune": "finetune",
    "serve_home": "serve",
    "serve_abroad": "serve",
}
#: ASCII digits only: the pattern's ``\d`` is any script's digit, and ``20\uff125-06`` (a fullwidth
#: digit) was read as 2025-06 (date51)
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MAX_LEAD_MONTHS = 60


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _a_number(v: Any) -> Any:
    """A number written as one: pydantic read "0.05" as 0.05 and `true` as 1.0, while the raw
    file that `--list-params`, `--set` and sweeps read kept the text (a traceback, a range
    left out of sweeps; atk75). As in scenarios, a boolean is not a number."""
    if isinstance(v, str) and re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][0-9]+", v):
        # YAML 1.1 reads an exponent without its sign as text: "got str '1.025e3'" said
        # nothing of why (a hostile-input review)
        full = format(float(v), "f").rstrip("0").rstrip(".")
        raise ValueError(
            f"got the text {v[:40]!r}: YAML reads an exponent without a sign as text; write "
            f"the number in full ({full[:40]}), or with a point and a signed exponent (1.5e+3)"
        )
    if isinstance(v, bool) or (v is not None and not isinstance(v, int | float)):
        raise ValueError(f"got {type(v).__name__} {str(v)[:40]!r}, not a number")
    return v


Number = Annotated[float, BeforeValidator(_a_number)]
Seed = Annotated[int, BeforeValidator(_a_number), Field(ge=0, le=2**63 - 1)]


def _chip_key(chip_id: str) -> str:
    from straits.catalog import catalog
    from straits.errors import UnknownChipError

    try:
        return catalog().canonical(chip_id)
    except UnknownChipError as exc:
        raise ValueError(exc.detail) from None


def _distinct(normal: Callable[[str], str], what: str) -> Callable[[Any], Any]:
    """A mapping's keys, refused when two name the same thing (``sg`` and ``SG``): the model
    kept the later, while `--list-params`, `--set` and sweeps addressed both (atk75)."""

    def check(v: Any) -> Any:
        if isinstance(v, dict):
            seen: dict[str, str] = {}
            for key in v:
                try:
                    n = normal(key) if isinstance(key, str) else None
                except ValueError:
                    continue  # the key's own error is named by its validation
                if n is None:
                    continue
                if n in seen:
                    raise ValueError(f"{seen[n]!r} and {key!r} are the same {what}: give it once")
                seen[n] = key
        return v

    return check


class Param(Strict):
    """One sourced number: ``value``, or a ``low``/``high`` range (midpoint used)."""

    value: Number | None = None
    low: Number | None = None
    high: Number | None = None
    source: Annotated[str, Field(min_length=3, max_length=2000), AfterValidator(printable)]
    confidence: Confidence
    unpublished: bool = False
    """No public figure exists: the range is the model's assumption, to be swept."""

    @model_validator(mode="after")
    def _one_form(self) -> Param:
        has_range = self.low is not None or self.high is not None
        if (self.value is None) == (not has_range):
            raise ValueError("a parameter needs either `value` or both `low` and `high`")
        if has_range and (self.low is None or self.high is None):
            raise ValueError("a range needs both `low` and `high`")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("`low` must not exceed `high`")
        for v in (self.value, self.low, self.high):
            if v is not None and (v != v or v in (float("inf"), float("-inf"))):
                raise ValueError("parameters must be finite numbers")
        return self

    @property
    def is_range(self) -> bool:
        return self.value is None

    @property
    def mid(self) -> float:
        if self.value is not None:
            return self.value
        assert self.low is not None and self.high is not None
        return (self.low + self.high) / 2.0


def _in_window(month: str) -> str:
    """A month within the dates Straits plans for (``straits.limits``): the simulation turns
    months into rule-check dates, which must lie there too."""
    first, last = MIN_DATE.strftime("%Y-%m"), MAX_DATE.strftime("%Y-%m")
    if not first <= month <= last:
        raise ValueError(f"{month} is outside the months Straits simulates ({first} to {last})")
    return month


Month = Annotated[str, Field(pattern=MONTH), AfterValidator(_in_window)]


class Point(Param):
    """A dated value of a series (month ``YYYY-MM``)."""

    date: Month


def _one_point_per_month(points: list[Point]) -> list[Point]:
    """A series has one value per month: a second point of the same month made the series
    ambiguous (which one interpolation used depended on sort order) and its parameter path
    (``...mw[2024-01]``) named only the first for ``--set`` and sweeps."""
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        if p.date in seen:
            raise ValueError(
                f"two points for {p.date} (items {seen[p.date]} and {i}): a "
                "series has one value per month"
            )
        seen[p.date] = i
    return points


Series = Annotated[
    list[Point], Field(min_length=1, max_length=240), AfterValidator(_one_point_per_month)
]


def _low(p: Param) -> float:
    return p.low if p.low is not None else p.mid


def _high(p: Param) -> float:
    return p.high if p.high is not None else p.mid


class Country_(Strict):
    mw: Series
    """Operating data-centre capacity (MW of IT load)."""
    ai_rental_share: Param
    """Share of that capacity holding AI accelerators rented to others."""


class Pool(Strict):
    """Rental capacity in one country, of one operator (by headquarters), of one chip."""

    id: Id
    country: Country
    operator_hq: Country
    chip: ChipId
    share: Param
    """Share of the country's AI rental MW in this pool."""
    authorizations: tuple[Authorization, ...] = ()
    """What the operator holds (declared facts, as in a scenario)."""


class ReferenceServer(Strict):
    chip: ChipId
    gpus: Annotated[int, Field(ge=1, le=64)]
    kw: Param


class Supply(Strict):
    countries: Annotated[
        dict[Country, Country_], BeforeValidator(_distinct(str.upper, "country"))
    ] = Field(min_length=1, max_length=50)
    pools: list[Pool] = Field(min_length=1, max_length=200)
    reference_server: ReferenceServer
    pue: Param
    lead_months: Param
    """Months from an operator's order to chips in service."""
    availability: Param
    """Share of installed chip-hours that can be sold (maintenance, fragmentation)."""

    @model_validator(mode="after")
    def _pools_in_countries(self) -> Supply:
        ids = [p.id for p in self.pools]
        if len(set(ids)) != len(ids):
            raise ValueError("pool ids must be unique")
        for p in self.pools:
            if p.country not in self.countries:
                raise ValueError(
                    f"pool {p.id!r} is in {p.country}, which has no entry under supply.countries"
                )
        return self


class HomeChip(Strict):
    """A chip firms may buy for their home sites, if the rules allow it on the order date."""

    chip: ChipId
    usd_per_chip: Param
    lead_months: Param
    supply_per_month: Series
    """Units per month on offer to the home market (all buyers together)."""
    ships_from: Country | None = None
    """Where the chips ship from to the home market, as the rules read it (the 2026
    case-by-case band covers exports from the United States only). Absent: not declared,
    which the rules read as a re-export (conservative)."""


class Prices(Strict):
    base: Series
    """Reference rental price of ``base_chip`` (USD per chip-hour) over time."""
    base_chip: ChipId
    elasticity: Param
    """How far the price moves with utilisation: price = base x exp(elasticity x (u - u_ref))."""
    reference_utilisation: Param
    floor: Param
    cap: Param
    """Bounds of the utilisation markup (multiples of the base price)."""

    @model_validator(mode="after")
    def _floor_below_cap(self) -> Prices:
        # over whole ranges, so every point a sweep samples has floor <= cap (a floor above
        # the cap was silently used as both)
        if _high(self.floor) > _low(self.cap):
            raise ValueError(
                f"the markup floor ({_high(self.floor):g} at most) exceeds its cap "
                f"({_low(self.cap):g} at least): floor must not exceed cap"
            )
        return self


#: where a figure outside a parameter comes from (a dataset's count of people, a model's
#: shape): the shipped file gives both for each such entry (tests/test_market.py)
FigureSource = Annotated[str, Field(min_length=3, max_length=2000), AfterValidator(printable)]
#: the fields of an entry that say where its figures come from, not what the rules or the
#: estimator read
SOURCE_FIELDS: set[str] = {"source", "confidence"}


class DataFacts(Strict):
    origin: Country
    classes: tuple[DataClass, ...] = Field(min_length=1)
    subjects: Annotated[int, Field(ge=0)] = 0
    sensitive_subjects: Annotated[int, Field(ge=0)] = 0
    source: FigureSource | None = None
    """Where the counts come from (they decide the CAC mechanism a transfer needs)."""
    confidence: Confidence | None = None


class FirmType(Strict):
    id: Id
    hq: Country
    count: Annotated[int, Field(ge=1, le=100_000)]
    """Firms of this type at the default scale (``--firms`` rescales the counts)."""
    share: Param
    """Share of its market's demand (home market for home firms, offshore for the others)."""
    authorizations: tuple[Authorization, ...] = ()
    ciio: bool = False
    datasets: dict[Kind, DataFacts] = Field(default_factory=dict)
    """The data each kind of work reads; absent: no data the rules look at."""


class ModelTemplate(Strict):
    """The model the estimator sizes each kind of work with."""

    params: Annotated[float, Field(gt=0, le=1e14)]
    active_params: Annotated[float, Field(gt=0, le=1e14)] | None = None
    layers: Annotated[int, Field(ge=1, le=1000)]
    d_model: Annotated[int, Field(ge=1, le=1_000_000)]
    heads: Annotated[int, Field(ge=1, le=10_000)]
    seq_len: Annotated[int, Field(ge=1, le=10_000_000)]
    serve_tokens_per_s: Annotated[float, Field(gt=0, le=1e12)] = 100_000.0
    source: FigureSource | None = None
    """Where the shape and the serving rate come from."""
    confidence: Confidence | None = None

    def spec(self) -> ModelSpec:
        """The model as the estimator takes it (``active_params`` default: all of them)."""
        from straits.model.scenario import ModelSpec

        return ModelSpec(
            params=self.params,
            active_params=self.active_params or self.params,
            layers=self.layers,
            d_model=self.d_model,
            heads=self.heads,
            seq_len=self.seq_len,
        )

    @model_validator(mode="after")
    def _a_shape_the_estimator_takes(self) -> ModelTemplate:
        """The shape checks a scenario's model is held to (``ModelSpec``): 8B active of 7B
        total, more heads than d_model, or params far from layers x d_model^2 came out of the
        estimator as a traceback, exit 1 (a fresh-eye attack)."""
        from pydantic import ValidationError

        try:
            self.spec()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{where}: {msg}" if where else msg) from None
        return self


class Demand(Strict):
    initial_utilisation: Param
    """Home demand in the first month as a share of the home installed capacity."""
    growth_per_year: Param
    mix_start: dict[Kind, Param]
    mix_end: dict[Kind, Param]
    """Shares of home demand by kind in the first and last month (linear between)."""
    offshore_initial_utilisation: Param
    """Demand of non-home firms in the first month, as a share of offshore rental capacity."""
    offshore_growth_per_year: Param
    shift_speed: Param
    """Share of the gap to full offshore readiness a firm closes per month."""
    initial_readiness: Param
    wtp_usd_per_h100e_hour: Param
    """The most a firm pays for an H100-equivalent hour before leaving the work undone."""
    domestic_premium: Param
    """Cost multiple of domestic accelerators (software porting, tooling) when buying."""
    buy_sharpness: Param
    """How sharply firms prefer buying over renting as buying gets cheaper (logit scale)."""
    amortize_years: Param
    firm_size_sigma: Param
    """Log-normal spread of firm sizes within a type."""

    @model_validator(mode="after")
    def _kinds(self) -> Demand:
        for name in ("mix_start", "mix_end"):
            mix = getattr(self, name)
            if set(mix) != set(KINDS):
                raise ValueError(f"{name} needs a share for each of {', '.join(KINDS)}")
            # shares are normalised; all zero (anywhere in their ranges) was silently read as
            # an even split
            if sum(_low(p) for p in mix.values()) <= 0:
                raise ValueError(
                    f"{name}: the shares add up to 0 (at their low ends); at "
                    "least one kind needs a share above 0"
                )
        return self


Uptake = dict[Authorization, dict[Literal["approval", "case-by-case", "none"], Param]]
"""Keyed by the authorizations the rules know (a misspelt `bis-licence` was read as no uptake
at all, without a word)."""


class Market(Strict):
    """A whole market file."""

    straits_market: Literal[1] = Field(alias="straits-market")
    name: Id
    start: Month
    end: Month
    home: Country
    regime: Regime = "enacted"
    seed: Seed = 0
    supply: Supply
    home_chips: list[HomeChip] = Field(min_length=1, max_length=50)
    installed: Annotated[dict[ChipId, Param], BeforeValidator(_distinct(_chip_key, "chip"))]
    """Home firms' installed chips in the first month (units)."""
    prices: Prices
    demand: Demand
    firm_types: list[FirmType] = Field(min_length=1, max_length=50)
    models: dict[Literal["train", "serve"], ModelTemplate]
    uptake: Uptake = Field(default_factory=dict)
    """Share of demand that obtains a requirement it does not hold, by the licence's review
    presumption ('none' for requirements without one). Absent: 0 (conservative)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> Market:
        if self.end < self.start:
            raise ValueError("`end` is before `start`")
        if month_index(self.end) - month_index(self.start) >= 600:
            raise ValueError("at most 600 months (50 years) per simulation")
        if set(self.models) != {"train", "serve"}:
            raise ValueError("`models` needs `train` and `serve`")
        ids = [t.id for t in self.firm_types]
        if len(set(ids)) != len(ids):
            raise ValueError("firm type ids must be unique")
        if not any(t.hq == self.home for t in self.firm_types):
            raise ValueError(f"no firm type is headquartered in the home country {self.home}")
        if self.home in self.supply.countries:
            # home SG over the shipped pools reported SG firms renting in SG as 'offshore SG'
            raise ValueError(
                f"`home` {self.home} is also a rental country (supply.countries.{self.home}): "
                "the home firms' rentals there would be reported as offshore; the rental "
                "countries are those abroad"
            )
        chips = [c.chip for c in self.home_chips]
        if len(set(chips)) != len(chips):
            raise ValueError("each home chip may be listed once")
        if sum(t.count for t in self.firm_types) > 100_000:
            raise ValueError("at most 100,000 firms")
        # shares are weights normalised over a group: all 0 (anywhere in their ranges) made
        # the group's demand or capacity vanish without a word (0/0 read as 0)
        home_types = [t for t in self.firm_types if t.hq == self.home]
        other_types = [t for t in self.firm_types if t.hq != self.home]
        for group, types in (("home", home_types), ("other", other_types)):
            if types and sum(_low(t.share) for t in types) <= 0:
                raise ValueError(
                    f"firm_types: the {group} firm types' shares add up to 0 (at their low "
                    "ends); at least one needs a share above 0"
                )
        for country in self.supply.countries:
            pools = [p for p in self.supply.pools if p.country == country]
            if pools and sum(_low(p.share) for p in pools) <= 0:
                raise ValueError(
                    f"supply.pools: the shares of the pools in {country} add up to 0 (at their "
                    f"low ends); for no rental capacity there set "
                    f"supply.countries.{country}.ai_rental_share to 0"
                )
        leads = [self.supply.lead_months, *(c.lead_months for c in self.home_chips)]
        if any(
            (p.high if p.high is not None else p.mid) > MAX_LEAD_MONTHS
            or (p.low if p.low is not None else p.mid) < 0
            for p in leads
        ):
            raise ValueError(f"lead times must be between 0 and {MAX_LEAD_MONTHS} months")
        return self

    @property
    def months(self) -> list[str]:
        return month_range(self.start, self.end)


def month_index(month: str) -> int:
    y, m = month.split("-")
    return int(y) * 12 + int(m) - 1


def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(start: str, end: str) -> list[str]:
    return [month_name(i) for i in range(month_index(start), month_index(end) + 1)]


def month_start(month: str) -> dt.date:
    y, m = month.split("-")
    return dt.date(int(y), int(m), 1)
