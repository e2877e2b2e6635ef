"""The API's OpenAPI document as Straits publishes it: explicit operation ids, the request
bodies' and problems' schemas, and the problems (RFC 9457) every operation can answer with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from straits.server import bodies
from straits.server.problems import Problem
from straits.server.problems import openapi_responses as problems_doc

#: the operations that also take the token as the ``token`` query parameter
QUERY_TOKEN = ("/v1/skypilot/policy",)
#: what the server's protocol answers before any route is known (``server/protocol.py``)
BEFORE_ANY_ROUTE = (400, 431, 503, 505)


def operation_id(route: APIRoute) -> str:
    """Explicit operation ids for routes that give none: the handler's name in camelCase."""
    head, *rest = route.name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def document(app: FastAPI) -> None:
    """The app's OpenAPI document: the bodies' schemas, the problem shape, bearer security
    and every problem each operation can answer with."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        components.update(bodies.COMPONENTS)
        components.update(_model_schemas(Problem))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "st_<id>_<secret>"},
            # the SkyPilot hook's alternative: SkyPilot sends no Authorization header
            "query-token": {"type": "apiKey", "in": "query", "name": "token"},
        }
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                _document_problems(path, method, op)
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]


def _model_schemas(*models: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in models:
        s = m.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(s.pop("$defs", {}))
        out[m.__name__] = s
    return out


def _document_problems(path: str, method: str, op: dict[str, Any]) -> None:
    """Every operation lists the problems it can answer with (RFC 9457 bodies); FastAPI's 422,
    which this API never sends (bad input is 400), goes."""
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    # every request passes the body guard (server/app.py BodyLimit) before any route: a
    # Content-Length that is no number is a 400, one over the limit a 413, and a content coding
    # on a method other than GET and HEAD a 415, whether or not the operation takes a body
    statuses = [400, 413, 500]
    # and the protocol (server/protocol.py) before that: a request h11 refuses is a 400, a head
    # over MAX_HEAD_BYTES a 431, a request over --max-connections a 503, another HTTP version
    # a 505, whatever operation its request line names (they were in the problem table only)
    statuses += BEFORE_ANY_ROUTE
    if method not in ("get", "head"):
        statuses.append(415)
    if path.startswith("/v1/"):
        op["security"] = [{"bearer": []}]
        if path in QUERY_TOKEN:
            op["security"].append({"query-token": []})
        statuses += [401, 403]
    if "{" in path:
        statuses.append(404)
    if op.get("requestBody"):
        statuses += [408, 413, 415]
    if method == "delete" or path.startswith("/v1/plans/{"):
        statuses.append(409)  # not done yet, or a stored plan its ledger entry does not prove
    if method == "post" and path in ("/v1/exports", "/v1/skypilot/policy"):
        statuses.append(409)  # a recorded plan whose stored copy its ledger entry does not prove
    if method == "post" and path in ("/v1/plans", "/v1/check"):
        statuses.append(409)  # an Idempotency-Key sent before with another request
    for status, doc in problems_doc(*sorted(set(statuses))).items():
        responses.setdefault(str(status), doc)
