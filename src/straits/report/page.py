"""HTML pages: the self-contained report file and the fragments the web console serves.

Templates are Jinja2 (``report/templates``), autoescaped. Figures travel as JSON in a
``<script type="application/json">`` element and a few lines of JavaScript hand each to
``Plotly.newPlot``; nothing is computed in the page. A report inlines everything it needs
(Plotly's own bundle from the pinned ``plotly`` package, the base map, the stylesheet), so it
opens from an e-mail with no network; the console links the same files from ``/static``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from straits import __version__
from straits.errors import InputError
from straits.report.figures import Figure, as_text


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("straits.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = usd
    env.filters["num"] = num
    env.filters["pct"] = pct
    env.filters["hours"] = hours
    return env


def usd(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e9:
        return f"${v / 1e9:,.2f}B"
    if a >= 1e6:
        return f"${v / 1e6:,.2f}M"
    return f"${v:,.0f}"


def num(v: float | int | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def hours(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f} h ({v / 24:,.1f} days)"


@cache
def asset(name: str) -> str:
    """A file shipped with the report package (stylesheet, base map)."""
    return resources.files("straits.report").joinpath(f"assets/{name}").read_text("utf-8")


@cache
def plotly_js() -> str:
    """Plotly's JavaScript bundle from the installed ``plotly`` package (pinned in
    pyproject.toml: the bundle decides how every chart looks)."""
    return resources.files("plotly").joinpath("package_data/plotly.min.js").read_text("utf-8")


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or comment openers)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figures_json(figures: dict[str, Figure]) -> str:
    """The page's figures as JSON for its ``#figures`` element: text shown as text (Plotly
    draws tags: :func:`straits.report.figures.as_text`), safe inside ``<script>``."""
    return script_json(as_text(figures))


def uses_map(figures: dict[str, Figure]) -> bool:
    return any(t.get("type") == "scattergeo" for f in figures.values() for t in f["data"])


def render(
    template: str, *, title: str, figures: dict[str, Figure], inline: bool = True, **context: Any
) -> str:
    """A page from ``template`` with ``figures`` drawn into the elements of the same ids.

    ``inline``: embed Plotly, the base map and the stylesheet (a report file); otherwise link
    them from ``/static`` (the web console).
    """
    geo = uses_map(figures)
    page = (
        environment()
        .get_template(template)
        .render(
            title=title,
            figures_json=figures_json(figures),
            inline=inline,
            has_figures=bool(figures),
            css=asset("report.css") if inline else "",
            figures_js=asset("figures.js") if inline else "",
            plotly=plotly_js() if inline and figures else "",
            topojson=asset("world_110m.json") if inline and geo else "",
            geo=geo,
            generated=generated_at().isoformat(),
            version=__version__,
            csp=CSP_MARK if inline else "",
            **context,
        )
    )
    return with_policy(page) if inline else page


def generated_at() -> dt.datetime:
    """When the page says it was generated: now, or ``SOURCE_DATE_EPOCH`` where set (the
    reproducible-builds convention), so the same plan gives the same bytes, for a report
    checked into a repository or compared by its hash. A value that is not a whole number
    of seconds from 1970 to the end of 2100 is refused (exit 2), as the convention asks,
    rather than ignored."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    from straits.limits import MAX_DATE

    last = dt.datetime.combine(MAX_DATE, dt.time(23, 59, 59), tzinfo=dt.UTC)
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) <= 12 and int(text) <= last.timestamp():
        return dt.datetime.fromtimestamp(int(text), dt.UTC)
    raise InputError(
        f"got {raw[:40]!r}",
        path="SOURCE_DATE_EPOCH",
        expected=f"whole seconds since 1970-01-01T00:00:00Z, up to {int(last.timestamp())} "
        f"({last.isoformat()}), or unset for now",
    )


#: where the page's <meta> Content-Security-Policy goes (filled in by :func:`with_policy`)
CSP_MARK = "straits-csp-of-this-page"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def with_policy(page: str) -> str:
    """A self-contained page with its Content-Security-Policy in its <meta> element: no
    network at all (``default-src 'none'``, no connections), scripts only the page's own inline
    ones by their SHA-256, styles inline (Plotly sets them), images from data: and blob: (the
    charts' PNG download). Whatever text got through the escaping could neither run nor
    fetch."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
        "form-action 'none'; object-src 'none'"
    )
    return page.replace(CSP_MARK, policy, 1)
