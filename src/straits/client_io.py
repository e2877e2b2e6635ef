"""How :mod:`straits.client` reads one answer from a server it cannot trust.

httpx's timeout bounds each read, not the answer: a server sending a byte every few seconds
(or a resolver that never answers) held the CLI for as long as it liked, and an answer was
read into memory whatever its size (an endless chunked body grew until the machine ran out).
Here every request has a deadline for the whole of it (connect, headers, body), and the body
is read in chunks up to a byte cap:

* ``STRAITS_CLIENT_TIMEOUT_S`` (default 120 s): the most one request may take in all. Plans
  are not made within a request (the client submits them and polls their state), so a
  request that takes minutes is a server that does not answer; ``Client.impact`` adds the
  re-plans' time limits it asks for.
* ``STRAITS_CLIENT_MAX_BYTES`` (default 128 MiB): the largest answer read.

The request runs in a daemon thread that the caller waits for until the deadline; a thread
still waiting then (a silent DNS lookup, headers a byte at a time) is abandoned, and the
client's connections are closed under it. Every failure is a :class:`RemoteError` whose one
line names the server, the request and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from straits.errors import AuthError, InputError, NotFoundError, RemoteError, RequestError

DEFAULT_DEADLINE_S = 120.0
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
TIMEOUT_ENV = "STRAITS_CLIENT_TIMEOUT_S"
MAX_BYTES_ENV = "STRAITS_CLIENT_MAX_BYTES"
#: what an error message quotes of a server's text at most
QUOTE = 200


@dataclass(frozen=True)
class Limits:
    deadline_s: float = DEFAULT_DEADLINE_S
    """seconds one request may take in all"""
    max_bytes: int = DEFAULT_MAX_BYTES
    """the largest answer body read (after decompression)"""
    read_s: float = 60.0
    """seconds one read may wait (httpx's timeout), never more than the deadline"""

    @classmethod
    def from_env(cls, read_s: float = 60.0) -> Limits:
        """The limits ``STRAITS_CLIENT_TIMEOUT_S`` and ``STRAITS_CLIENT_MAX_BYTES`` set (garbage
        in either: an InputError naming it, exit 2)."""
        from straits.limits import env_number

        return cls(
            env_number(TIMEOUT_ENV, DEFAULT_DEADLINE_S, 0.001, 86_400.0, unit="seconds"),
            int(env_number(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, 1024, 1 << 40, integer=True)),
            read_s,
        )


class _TooBig(Exception):
    pass


class _Late(Exception):
    pass


def one_line(text: object, limit: int = QUOTE) -> str:
    """A server's text fit for one line of stderr: control characters and line breaks as
    spaces, at most ``limit`` characters."""
    s = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def shown_url(url: str) -> str:
    """``url`` for messages: a password in it (``https://user:PASSWORD@host``, sent by httpx as
    HTTP Basic auth) as ``***``; every error and ``config show`` echoed it whole."""
    m = _USERINFO.match(url)
    if m is None or ":" not in m.group(2):
        return url
    user = m.group(2).split(":", 1)[0]
    return f"{m.group(1)}{user}:***@{url[m.end() :]}"


def fetch(
    http: httpx.Client,
    base_url: str,
    method: str,
    url: str,
    limits: Limits,
    *,
    extra_s: float = 0.0,
    abandon: Callable[[], None] | None = None,
    **kw: Any,
) -> httpx.Response:
    """The whole answer to one request, its body read (a Response whose ``content`` is set),
    within ``limits.deadline_s + extra_s`` seconds and ``limits.max_bytes`` bytes, or a
    RemoteError. Redirects are answers like any other (httpx does not follow them).
    ``abandon`` is called when the worker is still waiting at the deadline (the client
    closes its connections under it)."""
    allowed = limits.deadline_s + extra_s
    end = time.monotonic() + allowed
    # built here: a caller's bad argument raises as it is, not as the server's fault
    request = http.build_request(
        method, url, timeout=httpx.Timeout(min(limits.read_s + extra_s, allowed)), **kw
    )
    box: list[httpx.Response | BaseException] = []

    def work() -> None:
        try:
            box.append(_read(http, request, end, limits))
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    worker = threading.Thread(target=work, name="straits-client", daemon=True)
    worker.start()
    worker.join(allowed)
    where = f"{base_url}: {method} {_path(url)}"
    if not box:
        if abandon is not None:
            abandon()
        raise RemoteError(
            f"{where}: no whole answer within {allowed:g} s (expected a Straits server's "
            f"answer; {TIMEOUT_ENV} sets the limit)"
        )
    got = box[0]
    if isinstance(got, httpx.Response):
        return got
    if isinstance(got, _Late | httpx.TimeoutException):
        raise RemoteError(
            f"{where}: no whole answer within {allowed:g} s (expected a Straits server's "
            f"answer; {TIMEOUT_ENV} sets the limit)"
        )
    if isinstance(got, _TooBig):
        raise RemoteError(
            f"{where}: the answer is over {limits.max_bytes:,} bytes (expected a Straits "
            f"server's answer; {MAX_BYTES_ENV} sets the limit)"
        )
    if isinstance(got, httpx.ConnectError):
        raise RemoteError(f"cannot reach {base_url}: {one_line(got)}")
    if isinstance(got, httpx.HTTPError):
        raise RemoteError(
            f"{where}: the answer broke off: {one_line(got) or type(got).__name__} "
            "(expected a whole HTTP answer)"
        )
    if isinstance(got, Exception):
        # h11 and httpcore raise their own errors for answers that are no HTTP at all
        raise RemoteError(
            f"{where}: not an HTTP answer: {type(got).__name__}: {one_line(got)} "
            "(expected a Straits server)"
        ) from got
    raise got  # KeyboardInterrupt, SystemExit: as they came


def _read(http: httpx.Client, request: httpx.Request, end: float, limits: Limits) -> httpx.Response:
    """In the worker thread: send, then read the body chunk by chunk, stopping at the cap
    or the deadline (a read waits ``read_s`` at most, and a chunk may arrive just inside it)."""
    r = http.send(request, stream=True)
    try:
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise _TooBig()
        body = bytearray()
        for chunk in r.iter_bytes():
            body += chunk
            if len(body) > limits.max_bytes:
                raise _TooBig()
            if time.monotonic() > end:
                raise _Late()
    finally:
        r.close()
    # the body as read (decoded): the headers that described the wire form no longer apply
    skip = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in skip]
    return httpx.Response(r.status_code, headers=headers, content=bytes(body), request=request)


def _path(url: str) -> str:
    try:
        return httpx.URL(url).path
    except (httpx.InvalidURL, TypeError, ValueError):
        return one_line(url, 80)


def error_for(r: httpx.Response, base_url: str) -> Exception:
    """Straits' exception for an error answer (its JSON, or RFC 9457 problem+json). What
    the server wrote is quoted on one line, shortened: an HTML page, a detail with line
    breaks or terminal escapes, or fields of the wrong types are only text here."""
    try:
        body = r.json()
    except (ValueError, RecursionError):
        body = {}
    if not isinstance(body, dict):
        body = {}

    def field(name: str) -> str | None:
        value = body.get(name)
        return one_line(value) or None if value not in (None, "", [], {}) else None

    message = field("detail") or field("error") or field("title")
    if r.status_code in (401, 403):
        hint = (
            " (set STRAITS_TOKEN or --token: a token from `straits tokens create` where "
            "the server runs)"
            if r.status_code == 401
            else ""
        )
        return AuthError(f"{base_url}: {message or f'HTTP {r.status_code}'}{hint}", r.status_code)
    if r.status_code == 404:
        if message in (None, "Not Found"):  # no such route (a record's 404 names the record)
            # `--server http://host:8000/v1` asked for /v1/v1/chips: "error: Not Found" said
            # neither what was asked nor where
            return NotFoundError(
                f"{base_url}: {r.request.method} {r.request.url.path}: no such route on this "
                "server (expected the URL `straits serve` answers on as --server, without "
                "/v1: GET /healthz there answers)"
            )
        return NotFoundError(message)
    if r.status_code in (400, 409, 413, 422):
        listed = _listed_problems(body.get("errors"))
        every = [InputError(d, source=base_url, path=p) for p, d in listed or ()]
        total = body.get("total")  # the problems past the 100 listed, counted (rev65c)
        if isinstance(total, bool) or not isinstance(total, int) or total < len(every):
            total = len(every)
        return InputError(
            message or f"HTTP {r.status_code} with no problem details",
            source=base_url,
            path=field("path"),
            expected=field("expected"),
            problems=listed,
            suggestions=_names(body.get("suggestions")),
        ).listing(every, total)  # `check --server` lists each problem too (cli65)
    incident = f" (incident {field('incident')})" if field("incident") else ""
    return RemoteError(
        f"{base_url}: {r.request.method} {r.request.url.path} failed: HTTP "
        f"{r.status_code}: {message or 'no problem details (expected problem+json)'}{incident}",
        r.status_code,
    )


def _names(value: object) -> list[str]:
    """problem+json ``suggestions``: the names it holds (at most 10, each on one line)."""
    if not isinstance(value, list):
        return []
    return [one_line(v) for v in value[:10] if isinstance(v, str)]


def _listed_problems(errors: object) -> list[tuple[str | None, str]] | None:
    """The problems a problem+json ``errors`` lists, each ``{"path", "detail"}`` (the first
    MAX_PROBLEMS, each on one line, shortened); None where it lists none or is not that."""
    from straits.errors import MAX_PROBLEMS

    if not isinstance(errors, list):
        return None
    out: list[tuple[str | None, str]] = []
    for item in errors[:MAX_PROBLEMS]:
        if not isinstance(item, dict) or not isinstance(item.get("detail"), str):
            continue
        path = item.get("path")
        out.append((one_line(path) if isinstance(path, str) else None, one_line(item["detail"])))
    return out or None


def next_page(r: httpx.Response, next_url: str, seen: set[str], base_url: str, items: bool) -> str:
    """The absolute URL of the page a ``Link: rel="next"`` names, or a RemoteError: it must be
    on this server (the token is sent to it), not a page already read (a loop was read for
    ever, every page kept), and follow a page that held items."""
    origin = httpx.URL(base_url)
    try:
        nxt: httpx.URL | None = r.request.url.join(next_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        nxt = None
    problem = (
        "is no URL"
        if nxt is None
        else "is on another server"
        if (nxt.scheme, nxt.host, nxt.port) != (origin.scheme, origin.host, origin.port)
        else "repeats a page already read"
        if str(nxt) in seen
        else "follows an empty page"
        if not items
        else None
    )
    if nxt is None or problem is not None:
        raise RemoteError(
            f'{base_url}: GET {r.request.url.path}: the Link: rel="next" page '
            f"{one_line(next_url, 120)} {problem} (expected the next page of this list on "
            "this server)"
        )
    return str(nxt)


def parse_json(r: httpx.Response, base_url: str, expect: type, keys: tuple[str, ...] = ()) -> Any:
    """The answer's JSON: of type ``expect``, an object holding ``keys``."""
    where = f"{base_url}: {r.request.method} {r.request.url.path}"
    kind = "object" if expect is dict else "array"
    try:
        data = r.json()
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        raise RemoteError(
            f"{where} answered {r.status_code} with no JSON (expected a JSON {kind}: "
            "is this a Straits server?)",
            r.status_code,
        ) from None
    if not isinstance(data, expect):
        raise RemoteError(
            f"{where} answered JSON {type(data).__name__} (expected a JSON {kind})",
            r.status_code,
        )
    missing = [k for k in keys if isinstance(data, dict) and k not in data]
    if missing:
        raise RemoteError(
            f"{where}: the answer has no {', '.join(missing)} (expected a JSON object "
            f"with {', '.join(keys)})",
            r.status_code,
        )
    return data


#: a plan id (or a prefix of one) as one URL path segment: plandoc.PLAN_ID's characters
_PLAN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def plan_path(plan_id: object, tail: str = "") -> str:
    """``/v1/plans/ID`` + ``tail``: an id that is no path segment (``x/../../ledger/verify``,
    ``x?status=done``, ``None``) asked another route and read its answer as this one's."""
    if not (isinstance(plan_id, str) and _PLAN_ID.fullmatch(plan_id)):
        raise InputError(
            f"{str(plan_id)[:60]!r} is not a plan id",
            path="plan_id",
            expected="letters, digits, '.', '_', ':', '-' (as `straits plan` prints it)",
        )
    return f"/v1/plans/{plan_id}{tail}"


def entry_path(seq: object, tail: str = "") -> str:
    """``/v1/ledger/entries/SEQ`` + ``tail``: ``"1/receipt"`` fetched entry 1's receipt and
    returned it as the entry, ``True`` asked for entry ``True``."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise InputError(
            f"{str(seq)[:60]!r} is not a ledger entry number", path="seq", expected="an int >= 1"
        )
    return f"/v1/ledger/entries/{seq}{tail}"


def wait_seconds(poll: object, timeout: object) -> tuple[float, float | None]:
    """``wait``'s ``poll`` (finite, > 0) and ``timeout`` (None, or finite and >= 0): a NaN
    timeout never passed (polled for ever), a NaN or negative poll was a ValueError."""
    for name, value, none_ok in (("poll", poll, False), ("timeout", timeout, True)):
        if value is None and none_ok:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and (value > 0 if name == "poll" else value >= 0))
        ):
            raise InputError(
                f"{str(value)[:40]!r} is not a number of seconds",
                path=name,
                expected="a finite number > 0"
                if name == "poll"
                else "None or a finite number >= 0",
            )
    return float(poll), None if timeout is None else float(timeout)  # type: ignore[arg-type]


def jsonable(obj: Any) -> Any:
    """Dates (as YAML gives them) as ISO text."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    return obj


def body(obj: Any, name: str) -> Any:
    """``obj`` as a request sends it (dates as ISO text, as the local API reads them): a value
    JSON cannot carry (NaN, a set, an object) is a RequestError naming the argument, not
    the encoder's TypeError or ValueError (a dated check or estimate was a TypeError)."""
    out = jsonable(obj)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RequestError(
            f"cannot be sent as JSON: {one_line(str(exc), 120)}",
            path=name,
            expected="JSON values: mappings, lists, text, finite numbers, booleans, null, dates",
        ) from None
    return out


def day(value: Any, name: str = "date") -> str:
    """A date argument (a ``datetime.date`` or ``YYYY-MM-DD`` text, as ``straits.api`` takes
    one) as the server's query and bodies take it; text was an AttributeError."""
    from straits.api_args import date_arg

    checked = date_arg(value, name)
    if checked is None:
        raise RequestError("no date given", path=name, expected="a date, YYYY-MM-DD")
    return checked.isoformat()
