"""``GET /v1/plans/{id}/report``: a finished plan as the self-contained HTML report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from straits.server.auth import Caller

router = APIRouter(prefix="/v1")


@router.get(
    "/plans/{plan_id}/report",
    tags=["plans"],
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {}},
            "description": "One HTML file, no network needed to open it",
        }
    },
)
async def plan_report_html(request: Request, plan_id: str, who: Caller) -> HTMLResponse:
    """The plan report (`straits report`): summary, Gantt per pool, map, costs, why not, rules
    timeline, ledger entry. Your tenant's plans only (an admin's: any)."""
    from straits.report import plan_report
    from straits.server.routes import _own_plan
    from straits.web.views import recorded_plan

    def make() -> str:
        # an id or a unique prefix, as the other plan routes take it; another tenant's: 404
        row = _own_plan(request, who, plan_id)
        sc, plan, recorded = recorded_plan(request.app.state.store, who, row.id)
        return plan_report(
            plan, sc, request.app.state.rules, source=f"plan {row.id}", recorded=recorded
        )

    html = await run_in_threadpool(make)
    return HTMLResponse(
        html, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    )
