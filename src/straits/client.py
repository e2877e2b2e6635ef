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
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypedDict

import httpx

from straits.errors import AuthError, InputError, NotFoundError, RemoteError

ArchiveFormat = Literal["tar.gz", "zip", "tar"]


class PlanJob(TypedDict):
    """A submitted plan's state (``GET /v1/plans/{id}``)."""

    id: str
    tenant: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: str | None
    finished_at: str | None
    options: dict[str, Any]
    progress: dict[str, Any] | None
    ledger_seq: int | None
    error: str | None


class PlanSummary(PlanJob):
    """An item of ``GET /v1/plans``: the job with its scenario's name."""

    scenario: str
    scenario_digest: str


class LedgerEntry(TypedDict):
    """A ledger entry: every stored field (``body`` is the canonical JSON the hash covers)
    and ``content``, the same body as an object."""

    seq: int
    recorded_at: str
    tenant: str
    actor: str
    kind: str
    body: str
    prev_hash: str
    hash: str
    content: dict[str, Any]


class Client:
    """One Straits server. Thread-safe as httpx.Client is; close it, or use ``with``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        """``http`` replaces the transport (tests pass FastAPI's TestClient)."""
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "straits-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if http is not None:
            http.headers.update(headers)
            self._http, self._own = http, False
        else:
            self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
            self._own = True

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, url, **kw)
        except httpx.TimeoutException:
            raise RemoteError(
                f"{self.base_url} did not answer {method} {_path(url)} in time"
            ) from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from None
        if r.status_code < 400:
            return r
        raise _error(r)

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        r = self._request(method, url, **kw)
        try:
            return r.json()
        except ValueError:
            raise RemoteError(
                f"{method} {_path(url)} answered {r.status_code} with no JSON "
                "(is this a Straits server?)",
                r.status_code,
            ) from None

    def _pages(self, url: str, params: dict[str, Any]) -> Iterator[Any]:
        """Items of every page: the next page's URL (with its query) is the Link header's."""
        next_url: str | None = url
        query: dict[str, Any] | None = params
        while next_url is not None:
            r = self._request("GET", next_url, params=query)
            yield from r.json()
            link = r.links.get("next")
            # params=None: an empty dict would replace the next URL's own query
            next_url, query = (link.get("url") if link else None), None

    # --- the API ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/healthz")
        return out

    def check(
        self, request: Mapping[str, Any] | list[Mapping[str, Any]], *, record: bool = False
    ) -> Any:
        """One decision (a dict), or a list in request order for a list of requests."""
        return self._json(
            "POST", "/v1/check", json=request, params={"record": "true"} if record else None
        )

    def estimate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", "/v1/estimate", json=request)
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
    ) -> PlanJob:
        """Queue a plan of ``scenario`` (a parsed scenario, or YAML/JSON text)."""
        params = {
            k: v
            for k, v in {
                "solver": solver,
                "objective": objective,
                "regime": regime,
                "time_limit": time_limit,
                "seed": seed,
            }.items()
            if v is not None
        }
        params["record"] = "true" if record else "false"
        if isinstance(scenario, str):
            out: PlanJob = self._json(
                "POST",
                "/v1/plans",
                content=scenario.encode("utf-8"),
                params=params,
                headers={"Content-Type": "application/yaml"},
            )
        else:
            out = self._json("POST", "/v1/plans", json=_jsonable(scenario), params=params)
        return out

    def plan_job(self, plan_id: str) -> PlanJob:
        out: PlanJob = self._json("GET", f"/v1/plans/{plan_id}")
        return out

    def wait(
        self,
        plan_id: str,
        *,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[PlanJob], None] | None = None,
    ) -> PlanJob:
        """Poll until the plan is done or failed (``timeout`` seconds at most)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.plan_job(plan_id)
            if job["status"] in ("done", "failed"):
                return job
            if on_progress is not None:
                on_progress(job)
            if deadline is not None and time.monotonic() > deadline:
                raise RemoteError(f"plan {plan_id} is still {job['status']} after {timeout:g} s")
            time.sleep(poll)

    def plan_document(self, plan_id: str) -> dict[str, Any]:
        """A finished plan as the document `straits plan --json` prints."""
        out: dict[str, Any] = self._json("GET", f"/v1/plans/{plan_id}/plan")
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
        self, *, date: dt.date | None = None, regime: str = "enacted", packs: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"regime": regime, "pack": list(packs)}
        if date is not None:
            params["date"] = date.isoformat()
        out: list[dict[str, Any]] = self._json("GET", "/v1/rules", params=params)
        return out

    def chips(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/v1/chips")
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
        out: LedgerEntry = self._json("GET", f"/v1/ledger/entries/{seq}")
        return out

    def ledger_receipt(self, seq: int) -> dict[str, Any]:
        """The receipt of entry ``seq`` (the tenant's number; global for admins)."""
        out: dict[str, Any] = self._json("GET", f"/v1/ledger/entries/{seq}/receipt")
        return out

    def ledger_checkpoint(self, *, since: int | None = None, fresh: bool = False) -> dict[str, Any]:
        """The latest signed checkpoint (``fresh``: signed now, admins only), with a
        consistency proof from size ``since`` when given."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if fresh:
            params["fresh"] = "true"
        out: dict[str, Any] = self._json("GET", "/v1/ledger/checkpoint", params=params)
        return out

    def plan_report(self, plan_id: str) -> str:
        """A recorded plan's report: one self-contained HTML page."""
        return self._request("GET", f"/v1/plans/{plan_id}/report").text

    def ledger_verify(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/v1/ledger/verify")
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
            f"/v1/plans/{plan_id}/export",
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
            json=_jsonable(document),
            params=_export_params(to, format, run, image, ordered),
        )
        return r.content

    def impact(
        self,
        date: dt.date,
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
        """What `straits impact --json` prints, computed by the server."""
        body = {
            "date": date.isoformat(),
            "regime": regime,
            "plans": list(plans),
            "documents": [_jsonable(d) for d in documents],
            "all": all,
            "replan": replan,
            "time_limit": time_limit,
            "tenant": tenant,
            "prices": [_jsonable(p) for p in prices],
            "capacity": [_jsonable(c) for c in capacity],
        }
        out: dict[str, Any] = self._json("POST", "/v1/impact", json=body)
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


def _jsonable(obj: Any) -> Any:
    """Dates (as YAML gives them) as ISO text."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    return obj


def _path(url: str) -> str:
    return httpx.URL(url).path


def _error(r: httpx.Response) -> Exception:
    """Straits' exception for an error answer (its JSON, or RFC 9457 problem+json)."""
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(
        body.get("detail") or body.get("error") or body.get("title") or f"HTTP {r.status_code}"
    )
    if r.status_code in (401, 403):
        hint = (
            " (set STRAITS_TOKEN or --token: a token from `straits tokens create` where "
            "the server runs)"
            if r.status_code == 401
            else ""
        )
        return AuthError(message + hint, r.status_code)
    if r.status_code == 404:
        return NotFoundError(message)
    if r.status_code in (400, 409, 413, 422):
        path = body.get("path")
        return InputError(
            message,
            source="server",
            path=str(path) if path else None,
            expected=body.get("expected"),
        )
    incident = f" (incident {body['incident']})" if body.get("incident") else ""
    return RemoteError(
        f"{r.request.method} {r.request.url.path} failed: HTTP "
        f"{r.status_code}: {message}{incident}",
        r.status_code,
    )
