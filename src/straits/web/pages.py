"""The console's routes (``/ui``): server-rendered pages over the same Python API as ``/v1``.

Pages are Jinja2 templates filled from ``views.py`` and ``actions.py``; database and planning
work runs in worker threads. Every response carries a strict Content-Security-Policy (scripts
only from this server, no inline script), and every POST a CSRF token (``session.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from straits.errors import AuthError, BusyError, InputError, NotFoundError
from straits.model.types import Regime
from straits.server.plan_routes import borrowed_rules
from straits.server.query import IsoDate, refuse_nul, refuse_repeated
from straits.web import actions, plan_cache, session, views
from straits.web.session import Signed
from straits.web.submit import MAX_SCENARIO_BYTES, RISK_CHOICES, new_form_id
from straits.web.templating import HEADERS, render

router = APIRouter(prefix="/ui", include_in_schema=False)


class SignIn(Exception):
    """Raised by :func:`user` when the request has no valid session: go to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def user(request: Request) -> Signed:
    signed = session.current(request)
    if signed is None:
        raise SignIn(request.url.path)
    refuse_repeated(request)  # ?regime=a&regime=b was read as b
    refuse_nul(request)  # PostgreSQL refuses NUL in text: a 500
    return signed


async def signed_user(request: Request) -> Signed:
    """:func:`user` in a worker thread, for the async pages: the token's lookup and hash, and
    a refusal's write, stalled every tenant's requests on the event loop (api30)."""
    return await run_in_threadpool(user, request)


def _csrf(request: Request, signed: Signed, token: str) -> None:
    if not session.check_csrf(request, signed, token):
        from straits.server.auth import refuse

        raise refuse(request, 403, "the form's CSRF token does not match this session", signed.who)


def _store(request: Request) -> Any:
    return request.app.state.store


# --- sign-in ---------------------------------------------------------------------------------
def _login_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    value = session.pre_value(request)
    response = render(
        "login.html.j2",
        status=status,
        title="Sign in to Straits",
        csrf=session.pre_csrf(request, value),
        error=error,
        hours=session.MAX_AGE // 3600,
    )
    session.set_pre_cookie(response, value)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not session.check_pre_csrf(request, csrf):
        return _login_page(request, status=403, error="The form expired; sign in again.")
    redirect = RedirectResponse("/ui/", status_code=303, headers=HEADERS)
    try:
        session.sign_in(request, redirect, token)
    except AuthError as exc:
        from straits.server.auth import refuse

        refuse(request, exc.status, f"console sign-in refused: {exc}")
        return _login_page(request, status=401, error=str(exc))
    return redirect


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    signed = user(request)
    _csrf(request, signed, csrf)
    redirect = RedirectResponse("/ui/login", status_code=303, headers=HEADERS)
    session.sign_out(redirect)
    return redirect


# --- plans -----------------------------------------------------------------------------------
@router.get("/")
async def plans(
    request: Request, cursor: Annotated[str | None, Query(max_length=400)] = None
) -> Response:
    """A page of 100 plans, newest first; ``cursor`` (the "Older plans" link) goes on."""
    signed = await signed_user(request)
    rows, more = await run_in_threadpool(
        lambda: views.jobs_page(
            _store(request), signed.who, cursor=cursor, keys=request.app.state.ledger_keys
        )
    )
    return render(
        "plans.html.j2",
        signed=signed,
        section="plans",
        title="Plans - Straits",
        plans=rows,
        cursor=cursor,
        more=more,
        show_tenant=signed.who.is_admin,
        live=any(p.status in ("queued", "running") for p in rows),
    )


@router.get("/plans/rows")
async def plan_rows(
    request: Request, cursor: Annotated[str | None, Query(max_length=400)] = None
) -> Response:
    signed = await signed_user(request)
    rows, _ = await run_in_threadpool(
        lambda: views.jobs_page(
            _store(request), signed.who, cursor=cursor, keys=request.app.state.ledger_keys
        )
    )
    return render("_plan_rows.html.j2", signed=signed, plans=rows, show_tenant=signed.who.is_admin)


@router.get("/plans/{plan_id}")
async def plan(request: Request, plan_id: str) -> Response:
    signed = await signed_user(request)
    ctx = await run_in_threadpool(
        plan_cache.plan_page,
        getattr(request.app.state, "plan_pages", None),
        _store(request),
        request.app.state.rules,
        signed.who,
        plan_id,
    )
    return render(
        "plan.html.j2",
        signed=signed,
        section="plans",
        title=f"Plan {plan_id[:12]} - Straits",
        **ctx,
    )


@router.get("/plans/{plan_id}/progress")
async def plan_progress(request: Request, plan_id: str) -> Response:
    signed = await signed_user(request)
    job = await run_in_threadpool(views.job, _store(request), signed.who, plan_id)
    if job.status not in ("queued", "running"):
        return Response(status_code=205, headers=HEADERS)  # finished: the page reloads
    return render("_progress.html.j2", signed=signed, job=job)


@router.get("/plans/{plan_id}/report.html")
async def plan_report_file(request: Request, plan_id: str) -> Response:
    from straits.report import plan_report

    signed = await signed_user(request)

    def make() -> str:
        sc, plan_json, recorded = views.recorded_plan(_store(request), signed.who, plan_id)
        return plan_report(
            plan_json, sc, request.app.state.rules, source=f"plan {plan_id}", recorded=recorded
        )

    html = await run_in_threadpool(make)
    return HTMLResponse(
        html,
        headers={
            "Content-Disposition": f'attachment; filename="straits-plan-{plan_id[:12]}.html"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get("/plans/{plan_id}/plan.json")
async def plan_json(request: Request, plan_id: str) -> Response:
    """The plan document, for the plan page's JSON link (the API's /v1/plans/ID/plan takes
    a bearer token, not the console's cookie)."""
    from straits.server.problems import StrictJSONResponse

    signed = await signed_user(request)
    doc = await run_in_threadpool(views.plan_document, _store(request), signed.who, plan_id)
    return StrictJSONResponse(
        doc, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    )


@router.get("/plans/{plan_id}/compare")
async def plan_compare(request: Request, plan_id: str) -> Response:
    signed = await signed_user(request)
    sc, doc, _ = await run_in_threadpool(views.recorded_plan, _store(request), signed.who, plan_id)
    try:
        with borrowed_rules(request) as rs:  # the server's rules, as the API's (atk70)
            ctx = await run_in_threadpool(actions.compare, actions.at_plan_risk(sc, doc), rs)
    except BusyError as exc:
        response = render(
            "error.html.j2",
            status=503,
            signed=signed,
            title="Busy - Straits",
            status_code=503,
            heading="Busy",
            detail=str(exc),
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return render(
        "compare.html.j2",
        signed=signed,
        section="plans",
        plan_id=plan_id,
        title=f"Regimes for {sc.name} - Straits",
        scenario=sc.name,
        date=sc.date.isoformat(),
        **ctx,
    )


@router.get("/plans/{plan_id}/whatif")
async def plan_whatif(
    request: Request,
    plan_id: str,
    date: Annotated[IsoDate | None, Query()] = None,  # YYYY-MM-DD: 86400 was 1970-01-02
    i: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    regime: Annotated[Regime | None, Query()] = None,
) -> Response:
    signed = await signed_user(request)
    sc, plan_json, _ = await run_in_threadpool(
        views.recorded_plan, _store(request), signed.who, plan_id
    )
    days = actions.slider_days()
    if date is None:
        date = days[min(i, len(days) - 1)] if i is not None else sc.date
    day = min(max(date, days[0]), days[-1])
    # ?regime=nonsense is a 400 as on the API's routes: it showed the plan's regime, as if
    # the regime asked for had been checked
    asked = regime or str(plan_json.get("regime", "enacted"))
    with borrowed_rules(request) as rs:  # the server's rules, as the API's (atk70)
        ctx = await run_in_threadpool(actions.whatif, sc, plan_json, rs, day, asked)
    return render(
        "whatif.html.j2",
        signed=signed,
        section="plans",
        plan_id=plan_id,
        title=f"What if - {sc.name} - Straits",
        scenario=sc.name,
        plan_date=plan_json.get("date"),
        plan_regime=plan_json.get("regime"),
        date=day.isoformat(),
        index=(day - days[0]).days,
        days=days,
        regime=asked,
        regimes=actions.REGIMES,
        **ctx,
    )


# --- submit ----------------------------------------------------------------------------------
@router.get("/submit")
def submit_form(request: Request) -> Response:
    signed = user(request)
    return _submit_page(request, signed, form={}, text="")


def _submit_page(
    request: Request,
    signed: Signed,
    *,
    form: dict[str, str],
    text: str,
    errors: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> Response:
    from straits.plan.registry import OBJECTIVE_NAMES

    return render(
        "submit.html.j2",
        status=status,
        signed=signed,
        section="submit",
        title="Submit a scenario - Straits",
        form=form,
        text=text,
        errors=errors,
        regimes=actions.REGIMES,
        objectives=OBJECTIVE_NAMES,
        risks=RISK_CHOICES,
        max_time=request.app.state.settings.max_time_limit,
        form_id=new_form_id(),
    )


@router.post("/submit")
async def submit(request: Request) -> Response:
    from straits.web.submit import form_key, read_form, submissions, submit_scenario

    signed = await signed_user(request)
    got = await read_form(request)
    await run_in_threadpool(_csrf, request, signed, got.csrf)  # a refusal is written
    text, file, regime, objective, risk = got.text, got.file, got.regime, got.objective, got.risk
    time_limit, record = got.time_limit, got.record
    if not signed.who.may("planner"):
        from straits.server.auth import refuse

        raise await run_in_threadpool(
            refuse,
            request,
            403,
            f"a {signed.who.role} token cannot submit plans: it needs the planner role",
            signed.who,
        )
    form = dict(regime=regime, objective=objective, time_limit=time_limit, record=record, risk=risk)
    source = "pasted scenario"
    if file is not None and file.filename:
        raw = await file.read(MAX_SCENARIO_BYTES + 1)
        source = f"uploaded file {file.filename}"
        if len(raw) > MAX_SCENARIO_BYTES:
            return _submit_page(
                request,
                signed,
                form=form,
                text="",
                status=413,
                errors=[
                    {
                        "detail": f"the file is over {MAX_SCENARIO_BYTES:,} bytes",
                        "path": None,
                        "expected": "a smaller scenario",
                    }
                ],
            )
        text = raw.decode("utf-8", errors="replace")
    asked = repr((text, regime, objective, time_limit, record) + ((risk,) if risk else ()))
    try:  # a form posted twice goes to the plan of its first post
        plan_id = await submissions(request).once(
            (signed.who.token_id, got.form_id, asked),
            lambda: submit_scenario(
                request,
                signed.who,
                text,
                source=source,
                regime=regime,
                objective=objective,
                time_limit=time_limit,
                record=record == "1",
                key=form_key(got.form_id, asked),
                risk=risk,
            ),
        )
    except InputError as exc:
        from straits.scenario_listing import ScenarioProblems

        # every problem of the scenario at once (the error raised names the first and lists
        # them, each with its line, from the one parse submit_scenario made)
        every: list[InputError] = list(exc.every) if isinstance(exc, ScenarioProblems) else [exc]
        return _submit_page(
            request,
            signed,
            form=form,
            text=text,
            status=400,
            errors=[
                {
                    "detail": e.detail,
                    "path": e.path,
                    "expected": e.expected_unsaid(),  # shown after the detail
                    "line": getattr(e, "line", None),
                }
                for e in every
            ],
        )
    return RedirectResponse(f"/ui/plans/{plan_id}", status_code=303, headers=HEADERS)


# --- ledger and rules ------------------------------------------------------------------------
@router.get("/ledger")
async def ledger_page(
    request: Request,
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    verify: Annotated[Literal["entries"] | None, Query()] = None,
) -> Response:
    """The ledger: the quick check at every load, and for a tenant, with ``verify=entries``,
    the check of each of its entries (a page of 500 per read of the tree: seconds for
    thousands, so only when asked)."""
    from straits.errors import LedgerError
    from straits.server.ledger_routes import unproven_view, verify_slot
    from straits.web.ledger import Check, tenant_verification, verification

    signed = await signed_user(request)
    keys = request.app.state.ledger_keys
    full = verify == "entries" and not signed.who.is_admin
    if full:
        with verify_slot(request.app.state):  # shared with the API's; 503 when all are taken
            check = await run_in_threadpool(tenant_verification, _store(request), signed.who, keys)
    else:
        check = await run_in_threadpool(verification, _store(request), signed.who, keys)
    try:
        lines, more = await run_in_threadpool(
            lambda: views.ledger_lines(_store(request), signed.who, before=before, keys=keys)
        )
    except LedgerError as exc:  # a tenant's page holds an entry the log does not prove
        detail, _ = await run_in_threadpool(unproven_view, _store(request), signed.who, exc)
        lines, more = [], None  # the tenant's own verification, failed, says more (#N)
        check = check if full and not check.ok else Check(False, detail)
    return render(
        "ledger.html.j2",
        signed=signed,
        section="ledger",
        title="Ledger - Straits",
        entries=lines,
        more=more,
        show_tenant=signed.who.is_admin,
        verification=check,
        verified_entries=full,
    )


@router.get("/ledger/{seq}/receipt.json")
async def receipt(request: Request, seq: int) -> Response:
    from straits.store.checkpoints import NoCheckpointError
    from straits.web.ledger import receipt_json

    signed = await signed_user(request)
    try:
        body = await run_in_threadpool(
            receipt_json, _store(request), signed.who, seq, request.app.state.ledger_keys
        )
    except NoCheckpointError:
        from straits.server.ledger_routes import no_receipt_yet

        raise InputError(
            no_receipt_yet(seq),  # the caller's number (the store's is the global one)
            expected="a server with a ledger key (STRAITS_LEDGER_KEY), which "
            "signs the checkpoint a receipt proves against",
        ) from None
    return JSONResponse(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="straits-receipt-{seq}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/rules")
async def rules_page(
    request: Request,
    date: Annotated[IsoDate | None, Query()] = None,  # YYYY-MM-DD: 86400 was 1970-01-02
    regime: Annotated[Regime, Query()] = "enacted",
) -> Response:
    from straits import api

    signed = await signed_user(request)
    chosen: Regime = regime  # another value is a 400: it listed the enacted rules as asked
    with request.app.state.rules_lock:
        listed = api.rules_json(request.app.state.rules, date, chosen, None)
    return render(
        "rules.html.j2",
        signed=signed,
        section="rules",
        title="Rules - Straits",
        rules=listed,
        date=date.isoformat() if date else None,
        regime=chosen,
        regimes=actions.REGIMES,
    )


__all__ = ["NotFoundError", "SignIn", "router"]
