"""The console's pages from Jinja2 templates (the console's own, then the report's), each with
the security headers every console response carries: a strict Content-Security-Policy
(scripts only from this server, no inline script), no sniffing, no framing, no caching."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from straits import __version__
from straits.report.page import environment as report_environment
from straits.web import views
from straits.web.session import Signed

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    base = report_environment()
    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("straits.web", "templates"),
                PackageLoader("straits.report", "templates"),
            ]
        ),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(base.filters)
    return env


def render(
    name: str,
    *,
    status: int = 200,
    signed: Signed | None = None,
    figures: dict[str, Any] | None = None,
    **ctx: Any,
) -> HTMLResponse:
    from straits.report.page import figures_json, uses_map

    figures = figures or {}
    html = (
        environment()
        .get_template(name)
        .render(
            signed=signed,
            inline=False,
            figures_json=figures_json(figures),
            has_figures=bool(figures),
            geo=uses_map(figures),
            version=__version__,
            generated=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            status_icon=views.STATUS_ICON,
            title=ctx.pop("title", "Straits"),
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
