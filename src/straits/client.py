"""A small typed client of the Straits REST API (``straits serve``), on httpx.

    from straits.client import Client

    with Client("http://localhost:8000", token="st_...") as straits:
        answer = straits.check({"date": "2025-06-01", "action": "train", ...})
        job = straits.submit_plan(scenario_yaml_text, solver="greedy")
        doc = straits.plan_document(straits.wait(job["id"])["id"])
        for plan in straits.plans(status="done"):      # follows the Link: rel="next" pages
            ...
        archive = straits.export(doc["id"], ["skypilot", "slurm"])   # .tar.gz bytes

Answers are the JSON contracts the CLI prints (``docs/contracts.md``). Errors are Straits'
own: a 4xx on bad input raises :class:`~straits.errors.InputError` with the server's field
path; 401/403 :class:`~straits.errors.AuthError`; 404 :class:`~straits.errors.NotFoundError`;
anything else, or no answer, :class:`~straits.errors.RemoteError`. The CLI's ``--server URL``
mode runs every command through this client.

The server is not trusted: each request has a deadline for the whole of it and each answer a
byte cap (:mod:`straits.client_io`: ``STRAITS_CLIENT_TIMEOUT_S``, ``STRAITS_CLIENT_MAX_BYTES``),
redirects are not followed, and an answer that is no JSON, or not the JSON the endpoint
answers (its type, a plan's ``id`` and ``status``), or a ``Link: rel="next"`` to another
server or back to a page already read, is a RemoteError naming the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from straits import client_io as cio
from straits.client_io import (
    Limits,
    body,
    day,
    error_for,
    fetch,
    next_page,
    one_line,
    parse_json,
    shown_url,
)
from straits.client_types import (
    FINAL_STATES,
    JOB_STATES,
    ArchiveFormat,
    LedgerEntry,
    PlanJob,
    PlanSummary,
)
from straits.errors import RemoteError, StillWaitingError

__all__ = [
    "FINAL_STATES",
    "JOB_STATES",
    "ArchiveFormat",
    "Client",
    "LedgerEntry",
    "PlanJob",
    "PlanSummary",
]


class Client:
    """One Straits server. Thread-safe as httpx.Client is; close it, or use ``with``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        limits: Limits | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """``timeout`` bounds each read; ``limits`` each whole request and answer (default:
        from the environment, see :mod:`straits.client_io`). ``http`` replaces the transport
        (tests pass FastAPI's TestClient)."""
        self._url = base_url.rstrip("/")
        self.base_url = shown_url(self._url)  # named in every error: its password masked
        self.limits = limits or Limits.from_env(read_s=timeout)
        self._headers = {"User-Agent": "straits-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if http is not None:
            http.headers.update(self._headers)
            self._http, self._own = http, False
        else:
            self._http, self._own = self._connect(), True

    def _connect(self) -> httpx.Client:
        return httpx.Client(
            base_url=self._url,
            headers=self._headers,
            timeout=self.limits.read_s,
            follow_redirects=False,
        )

    def _abandon(self) -> None:
        """A request still waiting at its deadline: close the connections under it (its
        thread then ends at its next read) and carry on with new ones."""
        if self._own:
            old, self._http = self._http, self._connect()
            with contextlib.suppress(Exception):  # a pool in use by the abandoned thread
                old.close()

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, extra_s: float = 0.0, **kw: Any) -> httpx.Response:
        r = fetch(
            self._http,
            self.base_url,
            method,
            url,
            self.limits,
            extra_s=extra_s,
            abandon=self._abandon,
            **kw,
        )
        if r.status_code < 300:
            return r
        if r.status_code < 400:
            to = one_line(r.headers.get("location", ""), 120) or "nowhere"
            raise RemoteError(
                f"{self.base_url}: {method} {_path(url)} answered {r.status_code}, a redirect "
                f"to {to} (redirects are not followed: expected the URL of `straits serve` "
                "itself as --server)",
                r.status_code,
            )
        raise error_for(r, self.base_url)

    def _json(
        self,
        method: str,
        url: str,
        expect: type = dict,
        *,
        keys: tuple[str, ...] = (),
        extra_s: float = 0.0,
        **kw: Any,
    ) -> Any:
        return parse_json(
            self._request(method, url, extra_s=extra_s, **kw), self.base_url, expect, keys
        )

    def _job(self, job: Any, path: str) -> PlanJob:
        """A plan's state as the server sent it, or a RemoteError: a status this client
        does not know would be polled for ever."""
        if not (isinstance(job.get("id"), str) and job.get("status") in JOB_STATES):
            raise RemoteError(
                f"{self.base_url}: {path}: the answer is no plan job (expected `id` and a "
                f"`status` of {', '.join(JOB_STATES)})"
            )
        out: PlanJob = job
        return out

    def _pages(self, url: str, params: dict[str, Any]) -> Iterator[Any]:
        """Items of every page: the next page's URL (with its query) is the Link header's.
        It must be on this server (the token is sent to it) and not a page already read (a
        loop was read for ever, every page kept)."""
        next_url: str | None = url
        query: dict[str, Any] | None = params
        seen: set[str] = set()
        while next_url is not None:
            r = self._request("GET", next_url, params=query)
            seen.add(str(r.request.url))
            items = parse_json(r, self.base_url, list)
            if not all(isinstance(item, dict) for item in items):
                raise RemoteError(
                    f"{self.base_url}: GET {r.request.url.path}: a page holds something "
                    "other than objects (expected a JSON array of objects)"
                )
            yield from items
            link = r.links.get("next")
            # params=None: an empty dict would replace the next URL's own query
            next_url, query = (link.get("url") if link else None), None
            if next_url is None:
                return
            next_url = next_page(r, next_url, seen, self.base_url, bool(items))

    # --- the API ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/healthz")
        return out

    def check(
        self, request: Any, *, record: bool = False, idempotency_key: str | None = None
    ) -> Any:
        """One decision (a dict), or a list in request order for a list of requests (a mapping
        or a list of them); with ``record`` and ``idempotency_key``, a retry answers the
        decision the first recorded."""
        return self._json(
            "POST",
            "/v1/check",
            list if isinstance(request, list) else dict,
            json=body(request, "request"),
            params={"record": "true"} if record else None,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        )

    def estimate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json(
            "POST", "/v1/estimate", keys=("chip", "chips"), json=body(request, "request")
        )
        return out

    def submit_plan(
        self,
        scenario: Mapping[str, Any] | str,
        *,
        solver: str | None = None,
        objective: str | None = None,
        regime: str | None = None,
        time_limit: float | None = None,
        seed: int | None = None,
        record: bool = True,
        risk: str | None = None,
        idempotency_key: str | None = None,
    ) -> PlanJob:
        """Queue a plan of ``scenario`` (a parsed scenario, or YAML/JSON text); ``risk``
        (p50 | p90) overrides the scenario's. With ``idempotency_key`` (sent as the
        ``Idempotency-Key`` header), the same call made again returns the job the first
        queued: a caller that lost the answer may retry without queuing a second plan."""
        params = {
            k: v
            for k, v in {
                "solver": solver,
                "objective": objective,
                "regime": regime,
                "time_limit": time_limit,
                "seed": seed,
                "risk": risk,
            }.items()
            if v is not None
        }
        params["record"] = "true" if record else "false"
        keyed = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        if isinstance(scenario, str):
            out: Any = self._json(
                "POST",
                "/v1/plans",
                content=scenario.encode("utf-8"),
                params=params,
                headers={"Content-Type": "application/yaml", **keyed},
            )
        else:
            out = self._json(
                "POST", "/v1/plans", json=body(scenario, "scenario"), params=params, headers=keyed
            )
        return self._job(out, "POST /v1/plans")

    def plan_job(self, plan_id: str) -> PlanJob:
        return self._job(self._json("GET", cio.plan_path(plan_id)), f"GET {cio.plan_path(plan_id)}")

    def wait(
        self,
        plan_id: str,
        *,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[PlanJob], None] | None = None,
    ) -> PlanJob:
        """Poll until the plan is done, failed or cancelled (``timeout`` seconds at most: then
        a RemoteError; the job stays on the server)."""
        poll, timeout = cio.wait_seconds(poll, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.plan_job(plan_id)
            if job["status"] in FINAL_STATES:
                return job
            if on_progress is not None:
                on_progress(job)
            if deadline is not None and time.monotonic() > deadline:
                raise StillWaitingError(
                    f"plan {plan_id} is still {job['status']} after {timeout:g} s"
                )
            time.sleep(poll)

    def plan_document(self, plan_id: str) -> dict[str, Any]:
        """A finished plan as the document `straits plan --json` prints."""
        out: dict[str, Any] = self._json("GET", cio.plan_path(plan_id, "/plan"))
        return out

    def plans(
        self,
        *,
        status: str | None = None,
        scenario: str | None = None,
        tenant: str | None = None,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[PlanSummary]:
        """Plans, newest first, page after page."""
        params = {
            k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in {
                "status": status,
                "scenario": scenario,
                "tenant": tenant,
                "since": since,
                "until": until,
                "limit": page_size,
            }.items()
            if v is not None
        }
        yield from self._pages("/v1/plans", params)

    def rules(
        self,
        *,
        date: dt.date | str | None = None,
        regime: str = "enacted",
        packs: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"regime": regime, "pack": list(packs)}
        if date is not None:
            params["date"] = day(date)
        out: list[dict[str, Any]] = self._json("GET", "/v1/rules", list, params=params)
        return out

    def chips(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/v1/chips", list)
        return out

    def ledger_entries(
        self,
        *,
        since: int = 1,
        limit: int | None = None,
        tenant: str | None = None,
        page_size: int = 500,
    ) -> Iterator[LedgerEntry]:
        """Entries in order from ``since``, at most ``limit`` of them."""
        params: dict[str, Any] = {"since": since, "limit": min(page_size, limit or page_size)}
        if tenant is not None:
            params["tenant"] = tenant
        for n, entry in enumerate(self._pages("/v1/ledger/entries", params)):
            if limit is not None and n >= limit:
                return
            yield entry

    def ledger_entry(self, seq: int) -> LedgerEntry:
        out: LedgerEntry = self._json("GET", cio.entry_path(seq))
        return out

    def ledger_receipt(self, seq: int) -> dict[str, Any]:
        """The receipt of entry ``seq`` (the tenant's number; global for admins)."""
        out: dict[str, Any] = self._json(
            "GET",
            cio.entry_path(seq, "/receipt"),
            keys=("receipt", "entry", "inclusion_proof", "checkpoint"),
        )
        return out

    def ledger_checkpoint(self, *, since: int | None = None, fresh: bool = False) -> dict[str, Any]:
        """The latest signed checkpoint (``fresh``: signed now, admins only), with a
        consistency proof from size ``since`` when given."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if fresh:
            params["fresh"] = "true"
        out: dict[str, Any] = self._json(
            "GET", "/v1/ledger/checkpoint", keys=("checkpoint", "size"), params=params
        )
        return out

    def plan_report(self, plan_id: str) -> str:
        """A recorded plan's report: one self-contained HTML page."""
        return self._request("GET", cio.plan_path(plan_id, "/report")).text

    def ledger_verify(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/v1/ledger/verify", keys=("ok",))
        return out

    def export(
        self,
        plan_id: str,
        to: Iterable[str],
        *,
        format: ArchiveFormat = "tar.gz",
        run: str | Sequence[str] | None = None,
        image: str | None = None,
        ordered: bool = False,
    ) -> bytes:
        """A recorded plan's export as archive bytes (with straits-export.json inside)."""
        r = self._request(
            "GET",
            cio.plan_path(plan_id, "/export"),
            params=_export_params(to, format, run, image, ordered),
        )
        return r.content

    def export_document(
        self,
        document: Mapping[str, Any],
        to: Iterable[str],
        *,
        format: ArchiveFormat = "tar.gz",
        run: str | Sequence[str] | None = None,
        image: str | None = None,
        ordered: bool = False,
    ) -> bytes:
        """A plan document's export as archive bytes."""
        r = self._request(
            "POST",
            "/v1/exports",
            json=body(document, "document"),
            params=_export_params(to, format, run, image, ordered),
        )
        return r.content

    def impact(
        self,
        date: dt.date | str,
        *,
        regime: str | None = None,
        plans: Iterable[str] = (),
        documents: Iterable[Mapping[str, Any]] = (),
        all: bool = False,
        replan: bool = True,
        time_limit: float = 10.0,
        tenant: str | None = None,
        prices: Iterable[Mapping[str, Any]] = (),
        capacity: Iterable[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """What `straits impact --json` prints, computed by the server within the request:
        its deadline grows by the re-plans' time limits (``all``: by the 300 s the server's
        default ``max_time_limit`` lets them take in all)."""
        plans, documents = list(plans), list(documents)
        replans = 0.0
        if replan:
            count = len(plans) + len(documents)
            replans = max(time_limit * count, 300.0 if all else 0.0)
        payload = {
            "date": day(date),
            "regime": regime,
            "plans": plans,
            "documents": [body(d, f"documents[{i}]") for i, d in enumerate(documents)],
            "all": all,
            "replan": replan,
            "time_limit": time_limit,
            "tenant": tenant,
            "prices": [body(p, f"prices[{i}]") for i, p in enumerate(prices)],
            "capacity": [body(c, f"capacity[{i}]") for i, c in enumerate(capacity)],
        }
        extra = min(replans, 3600.0)
        out: dict[str, Any] = self._json("POST", "/v1/impact", json=payload, extra_s=extra)
        return out


def _export_params(
    to: Iterable[str], fmt: str, run: str | Sequence[str] | None, image: str | None, ordered: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {"to": list(to), "format": fmt, "ordered": str(ordered).lower()}
    if run:
        params["run"] = [run] if isinstance(run, str) else list(run)
    if image is not None:
        params["image"] = image
    return params


def _path(url: str) -> str:
    return httpx.URL(url).path
