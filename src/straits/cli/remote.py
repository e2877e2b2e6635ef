"""The CLI's ``--server URL`` mode: commands run through :mod:`straits.client`.

What the server stores (recorded plans, the ledger) is read from it; files given on the
command line (scenarios, plan documents, request files, `-`) are read here and sent to it, and
errors in them name the local file. Commands that manage this machine (`tokens`, `serve`,
`rules show|diff|test`, `scenario`) refuse --server or ignore it as their help says.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.common import (
    Format,
    emit,
    err_console,
    note,
    parse_text,
    read_stdin_text,
    refuse_unread,
    state,
)
from straits.errors import InputError, StraitsError

if TYPE_CHECKING:
    from straits.client import Client, PlanJob
    from straits.store.ledger import Verification

EXIT_UNPLACED = 3
EXIT_BLOCKED = 4
#: the planner options the API takes (``risk`` overrides the scenario's: it was left out, so
#: ``--server URL plan F --risk p90`` planned on p50 and said nothing)
PLAN_OPTIONS = ("solver", "objective", "regime", "time_limit", "seed", "risk")


def client() -> Client:
    from straits.client import Client

    url = state.server_url
    if not url:
        raise InputError("no server given", path="--server", expected="a URL")
    _check_server(url, state.server_token)
    # what the server answers comes from its own database and rules, recorded under its
    # token's name: --db, --rules or --actor given here were ignored (export, impact, ledger
    # show, report of a recorded plan)
    refuse_unread(("db", "rules", "actor"), when="with --server", expected="no --server")
    c = Client(url, state.server_token)
    state.asked_server = c.base_url
    return c


def _check_server(url: str, token: str | None) -> None:
    """Refuse a server URL or token httpx cannot send, before any request: a newline or a very
    long URL (``$STRAITS_SERVER`` from a broken script) raised httpx.InvalidURL, and a token
    with a non-ASCII character a UnicodeEncodeError, each as a traceback."""
    import re

    import httpx

    from straits.client_io import shown_url

    try:
        parsed = httpx.URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, TypeError, ValueError):
        ok = False
    # the port as written: httpx reads it with int(), so a fullwidth 80 or `:8_0` went to
    # port 80, a server other than the one the URL names (cli30)
    port = re.match(r"[^:/?#]*://(?:[^/?#@]*@)?(?:\[[^\]/?#]*\]|[^:/?#]*)(?::([^/?#]*))?", url)
    ok = ok and port is not None and re.fullmatch(r"[0-9]{0,5}", port.group(1) or "") is not None
    if not ok:
        raise InputError(
            f"{shown_url(url)[:80]!r} is not a server URL",
            path=state.server_from if state.server else "--server",
            expected="http://HOST:PORT or https://HOST (the URL of `straits serve`)",
        )
    if token is not None and not (
        token.isascii() and token.isprintable() and " " not in token and 0 < len(token) <= 512
    ):
        raise InputError(
            "the token is not one `straits tokens create` makes",
            path="--token",
            expected="printable ASCII without spaces (check STRAITS_TOKEN and "
            "`token` in straits.toml)",
        )


def _read(ref: str) -> tuple[Any, str] | None:
    """(parsed document, label) of a file or `-`; None for something else (an id)."""
    from straits.cli.plan_source import looks_like_path

    if ref == "-":
        return parse_text(read_stdin_text("a plan or a scenario"), "<stdin>"), "<stdin>"
    path = Path(ref).expanduser()
    if path.exists():
        from straits.loading import read_text

        return parse_text(read_text(path), str(path)), str(path)
    if looks_like_path(ref):
        raise InputError(
            "file not found",
            source=ref,
            expected="a plan document, a scenario file, or a recorded plan id",
        )
    return None


def _relabel(exc: StraitsError, label: str) -> StraitsError:
    """A server's 400 about the body sent, naming the local file instead."""
    if isinstance(exc, InputError) and exc.source == state.asked_server:
        return type(exc)(
            exc.detail.removeprefix("request body: "),
            source=label,
            path=exc.path,
            expected=exc.expected,
        )
    return exc


# --- plan ----------------------------------------------------------------------------------------
def remote_plan(
    ref: str,
    fmt: Format,
    flags: dict[str, Any],
    *,
    record: bool,
    show: bool,
    recheck: bool,
    pareto: int,
    date: dt.date | None = None,
) -> None:
    from straits.plandoc import is_plan_document

    if pareto:
        raise InputError(
            "--pareto runs on this machine only", path="--pareto", expected="no --server"
        )
    c = client()
    read = _read(ref)
    doc: dict[str, Any] | None = None
    if read is None:
        doc = _server_document(c, ref)
        note(f"[dim]read plan {doc['id']} from {state.server_url}[/dim]")
    elif is_plan_document(read[0]):
        doc = read[0]
        note(f"[dim]read plan document {read[1]}[/dim]")
    if show or recheck:
        if doc is None:
            raise InputError(
                f"{ref} is a scenario, not a plan",
                path="SCENARIO|PLAN",
                expected="a plan document or a recorded plan id",
            )
        if show:
            _print_plan(doc, fmt)
            return
        day = date or dt.datetime.now(dt.UTC).date()
        body = {"plans": [doc["id"]]} if read is None else {"documents": [doc]}
        answer = c.impact(day, regime=flags.get("regime"), replan=False, **body)
        result = answer["plans"][0]
        if fmt != "table":
            emit(result, fmt)
        else:
            from straits.cli.impact_cmd import show as show_impact

            show_impact(result)
        if result.get("blocking"):
            raise typer.Exit(EXIT_BLOCKED)
        return
    if doc is not None:
        scenario = (doc.get("inputs") or {}).get("scenario")
        if not isinstance(scenario, dict):
            raise InputError(
                "this plan does not carry its scenario",
                path="inputs",
                expected="a plan printed by `straits plan --json`",
            )
        options = {
            **(doc.get("inputs") or {}).get("options", {}),
            **{k: v for k, v in flags.items() if v is not None},
        }
        label = f"the scenario of plan {doc['id']}"
    else:
        assert read is not None
        scenario, label = read
        options = {k: v for k, v in flags.items() if v is not None}
    # the planner options the API takes (a document may carry others from a later version)
    options = {k: v for k, v in options.items() if v is not None and k in PLAN_OPTIONS}
    wait_s = _wait_limit()
    try:
        job = c.submit_plan(scenario, record=record, **options)
    except StraitsError as exc:
        raise _relabel(exc, label) from None
    note(f"[dim]submitted {label} to {state.server_url} as plan {job['id']}[/dim]")
    done = _wait(c, job, wait_s)
    if done["status"] == "failed":
        from straits.client_io import one_line

        raise InputError(
            f"plan {done['id']} failed on the server: {one_line(done.get('error'), 400)}",
            source=label,
        )
    if done["status"] == "cancelled":
        from straits.client_io import one_line
        from straits.errors import RemoteError

        why = one_line(done.get("error") or "no reason given", 400)
        raise RemoteError(f"{state.server_url}: plan {done['id']} was cancelled: {why}")
    out = _server_document(c, done["id"])
    _print_plan(out, fmt)
    if out.get("unplaced"):
        raise typer.Exit(EXIT_UNPLACED)


def _server_document(c: Client, plan_id: str) -> dict[str, Any]:
    """A plan document from the server, refused (exit 1, naming the server) when it is none:
    its id is printed and names files, so it is checked as a local document's is."""
    from straits.errors import RemoteError
    from straits.plandoc import PLAN_ID, is_plan_document

    doc = c.plan_document(plan_id)
    ok = is_plan_document(doc) and isinstance(doc.get("id"), str) and PLAN_ID.fullmatch(doc["id"])
    if not ok:
        raise RemoteError(
            f"{c.base_url}: GET /v1/plans/{plan_id}/plan: the answer is no plan document "
            "(expected `id`, `status` and `assignments`, as `straits plan --json` prints)"
        )
    return doc


#: how long ``plan`` waits for a submitted plan to end (unset: until it ends, or Ctrl-C)
WAIT_ENV = "STRAITS_CLIENT_WAIT_S"


def _wait_limit() -> float | None:
    """``STRAITS_CLIENT_WAIT_S`` (None: unset), read before anything is submitted."""
    import math

    from straits.limits import env_number

    limit = env_number(WAIT_ENV, math.inf, 0.001, 1e9, unit="seconds")
    return None if math.isinf(limit) else limit


def _wait(c: Client, job: PlanJob, timeout: float | None) -> PlanJob:
    """The job once it is done, failed or cancelled; a RemoteError (exit 1) saying how to
    fetch it later when ``timeout`` passes first (the job stays submitted)."""
    from straits.errors import RemoteError, StillWaitingError

    try:
        if state.quiet or not err_console.is_terminal:
            return c.wait(job["id"], timeout=timeout)
        with err_console.status(f"plan {job['id'][:12]} {job['status']}") as status:

            def show(j: PlanJob) -> None:
                text = (j.get("progress") or {}).get("text") or j["status"]
                status.update(f"plan {j['id'][:12]}: {text}")

            return c.wait(job["id"], timeout=timeout, on_progress=show)
    except StillWaitingError as exc:
        raise RemoteError(
            f"{state.server_url}: {exc} ({WAIT_ENV}); it stays submitted: "
            f"`straits --server {state.server_url} plan --show {job['id']}` once it is done"
        ) from None


def _print_plan(doc: dict[str, Any], fmt: str) -> None:
    if fmt == "id":
        print(doc["id"])
        return
    if fmt in ("json", "yaml"):
        emit(doc, "yaml" if fmt == "yaml" else "json")
        return
    from straits.cli.common import console
    from straits.cli.plan_view import plan_view, summary_line

    if state.quiet:  # one line, never wrapped: for scripts and logs
        console.print(summary_line(doc), soft_wrap=True)
    else:
        console.print(plan_view(doc))


# --- impact --------------------------------------------------------------------------------------
def _changes(path: Path | None, key: str) -> list[Any]:
    if path is None:
        return []
    from straits.loading import read_text

    data = parse_text(read_text(path), str(path))
    if isinstance(data, dict) and set(data) == {key}:
        data = data[key]
    if not isinstance(data, list):
        raise InputError(
            f"expected a list of {key} changes",
            source=str(path),
            expected=f"a list, or a mapping with the one key `{key}`",
        )
    return data


def remote_impact(
    date: dt.date,
    regime: str | None,
    prices: Path | None,
    capacity: Path | None,
    refs: list[str],
    all_plans: bool,
    replan: bool,
    time_limit: float,
    tenant: str | None,
) -> dict[str, Any]:
    from straits.plandoc import is_plan_document

    ids, docs = [], []
    for ref in refs:
        read = _read(ref)
        if read is None:
            ids.append(ref)
        elif is_plan_document(read[0]):
            docs.append(read[0])
        else:
            raise InputError(
                "with --server, --plan takes a recorded plan id or a plan document",
                source=read[1],
                expected="`straits --server URL plan FILE --record` first",
            )
    out: dict[str, Any] = client().impact(
        date,
        regime=regime,
        plans=ids,
        documents=docs,
        all=all_plans,
        replan=replan,
        time_limit=time_limit,
        tenant=tenant,
        prices=_changes(prices, "prices"),
        capacity=_changes(capacity, "capacity"),
    )
    return out


# --- export --------------------------------------------------------------------------------------
def remote_export(
    ref: str, to: list[str], fmt: str, *, run: list[str] | None, image: str | None, ordered: bool
) -> tuple[str, bytes, dict[str, Any]]:
    """(plan id, archive bytes, the export summary) made by the server."""
    from straits.archive import MANIFEST
    from straits.plandoc import is_plan_document

    c = client()
    read = _read(ref)
    kw: dict[str, Any] = {"format": fmt, "run": run, "image": image, "ordered": ordered}
    if read is None:
        data = c.export(ref, to, **kw)
    elif is_plan_document(read[0]):
        try:
            data = c.export_document(read[0], to, **kw)
        except StraitsError as exc:
            raise _relabel(exc, read[1]) from None
    else:
        raise InputError(
            "with --server, export takes a recorded plan id or a plan document",
            source=read[1],
            expected="`straits --server URL plan FILE --record` first, or no --server",
        )
    summary = _manifest(data, fmt, MANIFEST, c.limits.max_bytes)
    return str(summary.get("plan_id", ref)), data, summary


#: files in an archive from a server (an export of the largest plan holds a few thousand)
MAX_ARCHIVE_MEMBERS = 100_000


def _manifest(data: bytes, fmt: str, name: str, limit: int) -> dict[str, Any]:
    """The export summary inside a server's archive, after checking the archive: members
    listed (never extracted) until their sizes pass ``limit`` (the client's answer cap), so
    a small archive that unpacks to terabytes (a gzip bomb) is refused before it is read.
    Not an archive, no summary in it, or too big: a RemoteError (exit 1)."""
    from straits.errors import RemoteError

    what = f"{state.asked_server}: the export is no {fmt} archive holding {name}"
    total = count = 0
    try:
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                infos = z.infolist()
                total = sum(i.file_size for i in infos)
                if total > limit or len(infos) > MAX_ARCHIVE_MEMBERS:
                    raise RemoteError(f"{what} (its files are over {limit:,} bytes)")
                member = next(n for n in z.namelist() if n.endswith("/" + name))
                out: dict[str, Any] = json.loads(z.read(member))
        else:
            mode = "r:gz" if fmt == "tar.gz" else "r:"
            found = None
            with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:  # type: ignore[call-overload]
                for m in tar:
                    total, count = total + m.size, count + 1
                    if total > limit or count > MAX_ARCHIVE_MEMBERS:
                        raise RemoteError(f"{what} (its files are over {limit:,} bytes)")
                    if found is None and m.isfile() and m.name.endswith("/" + name):
                        f = tar.extractfile(m)
                        found = json.loads(f.read()) if f is not None else None
            out = found if isinstance(found, dict) else {}
    except (StopIteration, OSError, ValueError, EOFError, tarfile.TarError, zipfile.BadZipFile):
        raise RemoteError(f"{what} (expected the archive `straits export` writes)") from None
    if not isinstance(out, dict) or not out:
        raise RemoteError(f"{what} (expected the archive `straits export` writes)")
    return out


# --- ledger --------------------------------------------------------------------------------------
def remote_verification(data: dict[str, Any]) -> Verification:
    """The server's /v1/ledger/verify answer (an admin sees where it breaks; others see
    whether it holds and their own count)."""
    from straits.store.ledger import Verification

    entries = int(data.get("entries") or 0)
    return Verification(
        bool(data.get("ok")),
        entries,
        int(data.get("head_seq") or entries),
        str(data.get("head_hash") or ""),
        data.get("first_bad"),
        data.get("problem"),
        code=data.get("code") if isinstance(data.get("code"), str) else None,
    )
