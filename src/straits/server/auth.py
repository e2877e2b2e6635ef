"""Bearer tokens on every /v1 route; roles and tenants decide the rest."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from straits.errors import AuthError
from straits.server.query import refuse_nul, refuse_repeated, refuse_unknown
from straits.store.audit import log_refusal
from straits.store.tokens import Principal, Role, authenticate


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def refuse(request: Request, status: int, reason: str, who: Principal | None = None) -> AuthError:
    """Log the refusal (database and log) and return the error to raise."""
    log_refusal(
        request.app.state.store,
        method=request.method,
        path=request.url.path,
        status=status,
        reason=reason,
        token_id=who.token_id if who else None,
        tenant=who.tenant if who else None,
        client=_client(request),
        budget=getattr(request.app.state, "audit_budget", None),
    )
    return AuthError(reason, status)


def principal(request: Request) -> Principal:
    """The caller of ``request``, from its bearer token (the dependency of every /v1 route)."""
    return caller(request)


def caller(request: Request, fallback_token: str | None = None) -> Principal:
    """The caller of ``request``: its bearer token, else ``fallback_token`` (for callers that
    cannot send headers, such as SkyPilot's admin-policy client)."""
    headers = request.headers.getlist("authorization")
    header = headers[0] if headers else ""
    scheme, _, token = header.partition(" ")
    try:
        if len(headers) > 1:  # read as the first, a request ran as whichever token came first
            raise AuthError(
                f"{len(headers)} Authorization headers: send one, 'Authorization: Bearer st_...'",
                401,
            )
        if header and scheme.lower() != "bearer":
            raise AuthError("use the Bearer scheme: 'Authorization: Bearer st_...'", 401)
        who = authenticate(request.app.state.store, token.strip() or fallback_token or None)
    except AuthError as exc:
        raise refuse(request, exc.status, str(exc)) from None
    request.state.who = who  # what the error handlers may show depends on who asked
    refuse_repeated(request)  # after the token: a 401 comes before any look at the query
    refuse_unknown(request)
    refuse_nul(request)
    return who


Caller = Annotated[Principal, Depends(principal)]


def require(request: Request, who: Principal, role: Role, what: str) -> None:
    if not who.may(role):
        raise refuse(
            request, 403, f"a {who.role} token cannot {what}: it needs the {role} role", who
        )
