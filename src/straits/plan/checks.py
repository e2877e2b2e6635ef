"""The rule questions one placement asks: compute with each dataset, moves, weights, users.

A stage placed at a site is lawful only if every question is answered ``allow``:

* the stage's compute (train / finetune / serve) at the site, once per dataset it reads (with the
  dataset's facts and the volumes the tenant already exports: the CAC thresholds are cumulative
  per handler, so every dataset a tenant sends abroad adds up);
* ``transfer-data`` for each dataset stored at another site;
* ``transfer-weights`` for each predecessor's weights produced at another site;
* for serving, the personal information of the users it answers (origin: their country).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from straits.model.people import UNKNOWN_SUBJECTS
from straits.model.request import CheckRequest, DataFacts, SiteFacts, TenantFacts, WeightsFacts
from straits.model.scenario import (
    Dataset,
    Frozen,
    Scenario,
    Site,
    Stage,
    Tenant,
    Workload,
)
from straits.model.types import Authorization

ACTION_OF_KIND = {"pretrain": "train", "finetune": "finetune", "serve": "serve"}
#: individuals assumed when a serving stage does not say how many users' data it processes:
#: the top CAC tier (conservative)
UNKNOWN_USER_SUBJECTS = UNKNOWN_SUBJECTS


class Volume(NamedTuple):
    """Individuals whose personal information one export sends abroad."""

    subjects: int
    sensitive: int


Batch = dict[str, Volume]
"""export id (a dataset id, or 'users:<workload>/<stage>') -> its volume"""


class Prior(NamedTuple):
    """What a handler already exported from one origin: this year, and since 1 January of
    last year (the 2022 measures' window)."""

    subjects_ytd: int
    sensitive_ytd: int
    subjects_since_last_year: int
    sensitive_since_last_year: int


@dataclass
class ExportLedger:
    """Personal information each tenant exports, per origin country and calendar year.

    The CAC thresholds count every export of a handler since 1 January (2024 provisions) or
    since 1 January of the previous year (2022 measures), so a check adds up everything else the
    tenant exports from the same origin in the counting window.
    """

    entries: dict[tuple[str, str, int], Batch] = field(default_factory=dict)

    def add(
        self, tenant: str, origin: str, year: int, export_id: str, subjects: int, sensitive: int
    ) -> None:
        batch = self.entries.setdefault((tenant, origin, year), {})
        batch[export_id] = Volume(subjects, sensitive)

    def record(self, tenant: str, datasets: list[Dataset], site: Site, year: int) -> None:
        for d in datasets:
            if d.is_personal and d.origin != site.country:
                self.add(tenant, d.origin, year, d.id, d.subjects, d.sensitive_subjects)

    def covers(self, other: ExportLedger) -> bool:
        """Whether every export of ``other`` is already in this ledger."""
        return all(
            set(batch) <= set(self.entries.get(key, {})) for key, batch in other.entries.items()
        )

    def merged(self, other: ExportLedger) -> ExportLedger:
        out = ExportLedger({k: dict(v) for k, v in self.entries.items()})
        for key, batch in other.entries.items():
            out.entries.setdefault(key, {}).update(batch)
        return out


def _batches(
    ledgers: list[ExportLedger], tenant: str, origin: str, year: int
) -> tuple[Batch, Batch]:
    """The tenant's exports from ``origin``: this calendar year, and since 1 January of last
    year (the union of ``ledgers``, a later one's volume of an export standing)."""
    out: list[Batch] = []
    for years in ((year,), (year - 1, year)):
        batch: Batch = {}
        for led in ledgers:
            for y in years:
                batch.update(led.entries.get((tenant, origin, y), {}))
        out.append(batch)
    return out[0], out[1]


def _prior(batches: tuple[Batch, Batch], exclude: Container[str]) -> Prior:
    out: list[int] = []
    for batch in batches:
        kept = [v for k, v in batch.items() if k not in exclude]
        out += [sum(v.subjects for v in kept), sum(v.sensitive for v in kept)]
    return Prior(*out)


def prior_volumes(
    ledgers: list[ExportLedger], tenant: str, origin: str, year: int, exclude: set[str]
) -> Prior:
    """What the tenant already exported from ``origin``, from the union of ``ledgers``,
    without the exports in ``exclude``."""
    return _prior(_batches(ledgers, tenant, origin, year), exclude)


class PlacementPriors:
    """:func:`prior_volumes` for each dataset of one placement, without the exports the
    placement itself sends (``sent``) nor the dataset's own: each origin's ledgers are read
    and summed once, and a dataset's own volume taken off (one read per dataset made a stage
    of 2,000 datasets quadratic)."""

    def __init__(self, ledgers: list[ExportLedger], tenant: str, year: int, sent: set[str]):
        self.ledgers, self.tenant, self.year, self.sent = ledgers, tenant, year, sent
        self._of: dict[str, tuple[tuple[Batch, Batch], Prior]] = {}

    def __call__(self, origin: str, own: str) -> Prior:
        hit = self._of.get(origin)
        if hit is None:
            batches = _batches(self.ledgers, self.tenant, origin, self.year)
            hit = self._of[origin] = (batches, _prior(batches, self.sent))
        batches, base = hit
        if own in self.sent:
            return base
        out = list(base)
        for n, batch in enumerate(batches):
            v = batch.get(own)
            if v is not None:
                out[2 * n] -= v.subjects
                out[2 * n + 1] -= v.sensitive
        return Prior(*out)


# Requests below are built with ``model_construct``: every value comes from an already
# validated scenario, and the planner asks many questions.


class Predecessor(NamedTuple):
    """A predecessor of a stage as the rules see it: the stage, where it ran, and the model's
    training operations through it."""

    stage: Stage
    site: Site
    ops: float


@dataclass(frozen=True)
class Question:
    label: str
    request: CheckRequest


def _tenant(t: Tenant) -> TenantFacts:
    return _tenant_facts(t.hq, t.authorizations, t.ciio)


@lru_cache(maxsize=4096)
def _tenant_facts(hq: str, authorizations: tuple[Authorization, ...], ciio: bool) -> TenantFacts:
    return TenantFacts.model_construct(hq=hq, authorizations=authorizations, ciio=ciio)


def _site(s: Site) -> SiteFacts:
    return _site_facts(s.country, s.operator_hq, s.dpf_certified)


@lru_cache(maxsize=4096)
def _site_facts(country: str, operator_hq: str, dpf_certified: bool) -> SiteFacts:
    """Every site fact the rules read (a new one must be added here: it reaches the verdict
    memo through the request itself)."""
    return SiteFacts.model_construct(
        country=country, operator_hq=operator_hq, dpf_certified=dpf_certified
    )


def exported_people(sent: list[Dataset]) -> dict[str, tuple[int, int]]:
    """Per origin, the subjects and sensitive subjects of the personal datasets in ``sent``
    (a placement's exports), summed once: :func:`data_facts` reads each dataset's share of
    the others from it (a scan of the others per dataset was quadratic: one stage of 2,000
    datasets took 5 s of rule checks)."""
    out: dict[str, tuple[int, int]] = {}
    for o in sent:
        if o.is_personal:
            subj, sens = out.get(o.origin, (0, 0))
            out[o.origin] = (subj + o.subjects, sens + o.sensitive_subjects)
    return out


def data_facts(
    d: Dataset, prior: Prior, together: dict[str, tuple[int, int]], sent: set[str]
) -> DataFacts:
    """Facts of ``d`` with the volumes already exported (``prior``) plus the other datasets of
    the same origin that the same placement exports alongside it: ``together`` is
    :func:`exported_people` of the datasets it exports, whose ids are ``sent``."""
    subj, sens = together.get(d.origin, (0, 0))
    if d.id in sent and d.is_personal:  # its own share is not another's
        subj -= d.subjects
        sens -= d.sensitive_subjects
    return _data_facts(
        origin=d.origin,
        classes=d.classes,
        subjects=d.subjects,
        sensitive_subjects=d.sensitive_subjects,
        prior_subjects_ytd=prior.subjects_ytd + subj,
        prior_sensitive_ytd=prior.sensitive_ytd + sens,
        prior_subjects_since_last_year=prior.subjects_since_last_year + subj,
        prior_sensitive_since_last_year=prior.sensitive_since_last_year + sens,
    )


# The facts and requests below are made once per distinct value and shared: a portfolio asks
# the same questions many times, and a shared request's memo key is computed once
# (:mod:`straits.plan.candidates`). Each is keyed by every argument it is made from.


@lru_cache(maxsize=32768)
def _facts(cls: type[Frozen], items: tuple[tuple[str, type, Any], ...]) -> Frozen:
    return cls.model_construct(**{k: v for k, _, v in items})


def _typed(kw: dict[str, Any]) -> tuple[tuple[str, type, Any], ...]:
    """Every field with its value's type (1, 1.0 and True are equal keys, not equal facts)."""
    return tuple((k, type(v), v) for k, v in kw.items())


def _data_facts(**kw: Any) -> DataFacts:
    return _facts(DataFacts, _typed(kw))  # type: ignore[return-value]


def _weights_facts(**kw: Any) -> WeightsFacts:
    return _facts(WeightsFacts, _typed(kw))  # type: ignore[return-value]


_REQUESTS: dict[tuple[Any, ...], CheckRequest] = {}
#: requests kept at most, across plans (the memo is emptied when full; 1,000 workloads over
#: 200 sites ask about 19k distinct ones)
REQUEST_MEMO = 32_768


def _request(**kw: Any) -> CheckRequest:
    """The request of these fields; its parts (facts) are themselves shared, so they enter
    the key by object (each entry keeps them alive, so an object's id stays its own)."""
    key = tuple((k, type(v), id(v) if isinstance(v, Frozen) else v) for k, v in kw.items())
    hit = _REQUESTS.get(key)
    if hit is None:
        if len(_REQUESTS) >= REQUEST_MEMO:
            _REQUESTS.clear()
        hit = _REQUESTS[key] = CheckRequest.model_construct(**kw)
    return hit


def users_export_id(w: Workload, stage: Stage, country: str) -> str:
    return f"users:{w.id}/{stage.id}:{country}"


def user_subjects(stage: Stage) -> int:
    return stage.user_subjects if stage.user_subjects is not None else UNKNOWN_USER_SUBJECTS


def placement_questions(
    sc: Scenario,
    w: Workload,
    stage: Stage,
    site: Site,
    chip: str,
    *,
    date: dt.date,
    regime: str,
    training_ops: float,
    preds: list[Predecessor],
    exports: list[ExportLedger],
    year: int,
) -> list[Question]:
    """Every rule question of placing ``stage`` at ``site`` on ``chip``.

    ``preds`` are (predecessor, its site, training ops through it); ``training_ops`` is the
    cumulative training compute of the model through this stage; ``exports`` are the ledgers of
    what the tenant already exports (volumes add up over the calendar ``year``).
    """
    tenant = sc.tenant(w.tenant)
    action = ACTION_OF_KIND[stage.kind]
    common: dict[str, Any] = dict(
        date=date, regime=regime, tenant=_tenant(tenant), site=_site(site)
    )

    def ask(label: str, **kw: Any) -> Question:
        return Question(label, _request(**common, **kw))

    weights = None
    if action != "serve":
        weights = _weights_facts(
            training_ops=training_ops, open=w.model.open_weights, from_country=site.country
        )
    out: list[Question] = []
    datasets = [sc.dataset(d) for d in stage.datasets]
    abroad = [d for d in datasets if d.origin != site.country]
    # the datasets this placement sends are counted once, as its own: an earlier stage that
    # sent one of them too does not count it again (atk71: 2 x 40,000 people read as 120,000)
    sent = {d.id for d in abroad}
    together = exported_people(abroad)
    priors = PlacementPriors(exports, w.tenant, year, sent)
    for d in datasets:
        prior = priors(d.origin, d.id)
        facts = data_facts(d, prior, together, sent)
        out.append(
            ask(f"{stage.kind} on {d.id}", action=action, chip=chip, data=facts, weights=weights)
        )
        if d.located_at != site.id:
            out.append(ask(f"move {d.id} from {d.located_at}", action="transfer-data", data=facts))
    for country in stage.users:
        prior = prior_volumes(
            exports, w.tenant, country, year, {users_export_id(w, stage, country)}
        )
        facts = _data_facts(
            origin=country,
            classes=("personal",),
            subjects=user_subjects(stage),
            prior_subjects_ytd=prior.subjects_ytd,
            prior_sensitive_ytd=prior.sensitive_ytd,
            prior_subjects_since_last_year=prior.subjects_since_last_year,
            prior_sensitive_since_last_year=prior.sensitive_since_last_year,
        )
        out.append(ask(f"serve users in {country}", action=action, chip=chip, data=facts))
    if not datasets and not stage.users:
        out.append(ask(stage.kind, action=action, chip=chip, weights=weights))
    for pred, pred_site, pred_ops in preds:
        if pred_site.id == site.id:
            continue
        moved = _weights_facts(
            training_ops=pred_ops, open=w.model.open_weights, from_country=pred_site.country
        )
        out.append(
            ask(
                f"weights of {pred.id} from {pred_site.id}",
                action="transfer-weights",
                weights=moved,
            )
        )
    return out
