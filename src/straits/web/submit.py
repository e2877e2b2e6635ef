"""A scenario submitted from the console: parsed and checked like ``POST /v1/plans``, then
queued in the same durable job queue (``store/queue.py``) for the same workers."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from straits.errors import InputError, RequestError
from straits.estimate.interval import RISKS
from straits.loading import parse_document, parse_scenario
from straits.model.types import Regime
from straits.scenario_listing import scenario_listing
from straits.server.query import decimal_text
from straits.store import queue
from straits.store.tokens import Principal

#: the largest scenario the console accepts (the API's body limit applies to the whole form)
MAX_SCENARIO_BYTES = 2 * 1024 * 1024
#: the submit form's text fields and their longest values
FIELDS = {
    "csrf": 200,
    "text": MAX_SCENARIO_BYTES,
    "regime": 40,
    "objective": 40,
    "time_limit": 20,
    "record": 5,
    "form_id": 64,
    "risk": 10,
}

#: the form's risk choices (``risk`` of the API's ``POST /v1/plans``): what training stages are
#: planned on, overriding the scenario's ``risk`` (left empty: the scenario's, p50 by default)
RISK_CHOICES = {
    "p50": "p50: the estimate's central value",
    "p90": "p90: the high end of its 80% interval",
}


@dataclass(frozen=True)
class SubmitForm:
    """The submit page's form, as the browser sent it."""

    csrf: str
    text: str
    file: UploadFile | None
    regime: str
    objective: str
    time_limit: str
    record: str
    form_id: str
    risk: str


async def read_form(request: Request) -> SubmitForm:
    """The submit form, read here and not by FastAPI's ``Form`` parameters: Starlette caps a
    field of a multipart form at 1 MiB, so a scenario of 1 to 2 MiB pasted into the page (whose
    cap is 2 MiB) was refused with "Part exceeded maximum size of 1024KB", the text lost. A
    field given twice, a file where text is expected or text over its length is a 400."""
    try:  # every part is UTF-8 text (a scenario file too): the form parser fell back to
        # Latin-1 for a text part that was not, so a scenario was planned as text nobody wrote
        (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the form is not UTF-8 text (byte {exc.start:,})",
            path="text",
            expected="a YAML or JSON scenario in UTF-8",
        ) from None
    form = await request.form(
        max_files=1, max_fields=len(FIELDS) + 1, max_part_size=MAX_SCENARIO_BYTES
    )
    values: dict[str, str] = {}
    for name, longest in FIELDS.items():
        given = form.getlist(name)
        if len(given) > 1:
            raise RequestError(f"{name} was given {len(given)} times", path=name, expected="once")
        value = given[0] if given else ""
        if not isinstance(value, str):
            raise RequestError(f"{name} is a file", path=name, expected="text")
        if len(value) > longest:
            raise RequestError(
                f"{name} is {len(value):,} characters long",
                path=name,
                expected=f"at most {longest:,}",
            )
        values[name] = value
    upload: UploadFile | None = None
    for part in form.getlist("file"):
        if isinstance(part, UploadFile):
            upload = part
        elif part:  # an empty text field is no file chosen
            raise RequestError("file is text", path="file", expected="a scenario file")
    return SubmitForm(
        file=upload,
        time_limit=values.pop("time_limit") or "10",
        record=values.pop("record") or "0",
        **values,
    )


def options_of(request: Request, *, regime: str, objective: str, time_limit: str) -> dict[str, Any]:
    """The planner options of the form, checked as the API checks its query parameters."""
    if regime and regime not in get_args(Regime):
        raise RequestError(
            f"unknown regime {regime!r}", path="regime", expected=" | ".join(get_args(Regime))
        )
    if objective:
        from straits.plan.registry import objective as parse_objective

        parse_objective(objective, path="objective")  # a name or weighted sum it knows
    limit = request.app.state.settings.max_time_limit
    text = time_limit or "10"
    if not decimal_text(text):  # float() reads `1_0` as 10 and ` 5 ` as 5, as the API did
        raise RequestError(
            f"{time_limit[:40]!r} is not a number",
            path="time_limit",
            expected=f"seconds, 1 to {limit:g}",
        )
    seconds = float(text)
    if not 1 <= seconds <= limit:
        raise RequestError(
            f"{seconds:g} s is out of range", path="time_limit", expected=f"seconds, 1 to {limit:g}"
        )
    return {
        "solver": "auto",
        "objective": objective or None,
        "regime": regime or None,
        "time_limit": seconds,
        "seed": 0,
    }


async def submit_scenario(
    request: Request,
    who: Principal,
    text: str,
    *,
    source: str,
    regime: str,
    objective: str,
    time_limit: str,
    record: bool,
    key: str | None = None,
    risk: str = "",
) -> str:
    """Queue ``text`` (a scenario in YAML or JSON) for planning; the new plan's id (with
    ``key``, the plan an earlier post of the same form queued, in whatever server process)."""
    if not text.strip():
        raise InputError(
            "no scenario was given", source=source, expected="a scenario file, or its text pasted"
        )
    if "\ufffd" in text:
        # bytes that were not UTF-8, replaced as the form or the file was read: the plan would
        # record text nobody wrote (the API refuses the same bytes)
        raise RequestError(
            f"U+FFFD at character {text.index(chr(0xFFFD)):,}: bytes that are not UTF-8 text, "
            "replaced as the form was read",
            source=source,
            expected="a YAML or JSON text in UTF-8",
        )
    options = options_of(request, regime=regime, objective=objective, time_limit=time_limit)
    if risk and risk not in RISKS:
        raise RequestError(f"unknown risk {risk!r}", path="risk", expected=" | ".join(RISKS))
    data = await run_in_threadpool(parse_document, text, source=source)
    # every problem of the model at once (ScenarioProblems, each with its line), from this one
    # parse: the page parsed, validated and composed the text again to list them (api65)
    sc = await run_in_threadpool(
        lambda: (
            scenario_listing(data, text, source)
            if isinstance(data, dict)
            else parse_scenario(data, source=source, text=text)
        )
    )
    if risk:  # as the API's `risk` query parameter: overrides the scenario's
        sc = sc.model_copy(update={"risk": risk})
    settings = request.app.state.settings
    if len(sc.workloads) > settings.max_workloads:
        raise RequestError(
            f"{len(sc.workloads)} workloads; this server plans at most "
            f"{settings.max_workloads} at once",
            source=source,
            path="workloads",
        )
    if not who.is_admin:
        others = sorted({w.tenant for w in sc.workloads} - {who.tenant})
        if others:
            raise RequestError(
                f"a token of tenant {who.tenant!r} cannot plan the workloads "
                f"of {', '.join(map(repr, others))}",
                source=source,
                path="workloads[].tenant",
                expected=repr(who.tenant),
            )
    store = request.app.state.store
    digest = request.app.state.rules.digest
    plan_id, replayed = await run_in_threadpool(
        lambda: queue.enqueue_once(
            store,
            sc,
            options,
            tenant=who.tenant,
            actor=who.actor,
            record=record,
            rules_digest=digest,
            key=key,
        )
    )
    if not replayed:
        request.app.state.worker.wake()  # the same durable queue as POST /v1/plans
    return plan_id


def form_key(form_id: str, asked: str) -> str | None:
    """The idempotency key of a form's post: its one-time id and what it asked (a form edited
    and posted again is another plan). The process's :class:`Submissions` answer a double
    post at once; the key finds the first post's plan when the second reaches another server
    process (several behind one console), or this one after a restart."""
    if not form_id:
        return None
    return f"ui:{form_id[:100]}:{hashlib.sha256(asked.encode('utf-8', 'replace')).hexdigest()[:64]}"


def new_form_id() -> str:
    """The one-time id a submit form is drawn with (see :class:`Submissions`)."""
    return secrets.token_urlsafe(16)


class Submissions:
    """The plan each submit form made, by the token that posted it, the form's one-time id
    and what it asked (a form edited and posted again is another plan): a form posted twice
    (a double click, Reload after a post) made a second plan, and a second ledger entry, of
    the same text; now the later posts go to the plan of the first (while it is still being
    queued, they wait for it). Kept in the server process, the newest ``size`` forms; a form
    without an id (an older page) is never matched."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._made: OrderedDict[tuple[str, str, str], asyncio.Future[str]] = OrderedDict()

    async def once(self, key: tuple[str, str, str], make: Callable[[], Awaitable[str]]) -> str:
        """The plan ``key``'s form made, or ``make()``'s (a form that failed, its error
        shown, may be posted again: only a plan made is remembered)."""
        if not key[1]:
            return await make()
        key = (key[0], key[1], hashlib.sha256(key[2].encode("utf-8", "replace")).hexdigest())
        while (made := self._made.get(key)) is not None:
            try:
                return await asyncio.shield(made)
            except Exception:  # the first post failed and was forgotten: try as a first
                continue
        made = asyncio.get_running_loop().create_future()
        self._made[key] = made
        while len(self._made) > self._size:
            self._made.popitem(last=False)
        try:
            plan_id = await make()
        except BaseException as exc:
            if self._made.get(key) is made:
                del self._made[key]
            made.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            made.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        made.set_result(plan_id)
        return plan_id


def submissions(request: Request) -> Submissions:
    """The server's :class:`Submissions` (one per application)."""
    found: Submissions | None = getattr(request.app.state, "submissions", None)
    if found is None:
        found = request.app.state.submissions = Submissions()
    return found
