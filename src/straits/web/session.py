"""Console sign-in: the API token in an HttpOnly cookie, and CSRF tokens for every form.

The cookie holds the same bearer token the API takes (so the console can do nothing a token
cannot); it is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it) and ``Secure`` unless the console is told it runs on plain HTTP off localhost
(``STRAITS_CONSOLE_INSECURE_COOKIE=1``; browsers accept Secure cookies from
``http://localhost``). Every form carries a CSRF token: an HMAC, under a key of this server
process, of the signed-in token's id, or before sign-in of a random value in a second cookie
(double submit). A POST whose token does not match is refused with 403 and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from straits.errors import AuthError
from straits.store.tokens import Principal, authenticate

COOKIE = "straits_session"
PRE_COOKIE = "straits_csrf"
#: seconds a console sign-in lasts (the token itself may live longer)
MAX_AGE = 8 * 3600


@dataclass(frozen=True)
class Signed:
    """A signed-in console user: who, and the CSRF token their forms carry."""

    who: Principal
    csrf: str


def _key(request: Request) -> bytes:
    """The CSRF key: STRAITS_CONSOLE_SECRET when set (needed when several server processes
    serve one console), else a random key of this process (a restart signs everyone's forms
    anew; sessions themselves survive it)."""
    key: bytes | None = getattr(request.app.state, "console_key", None)
    if key is None:
        configured = os.environ.get("STRAITS_CONSOLE_SECRET")
        # its bytes as the environment holds them: a byte that is no UTF-8 (a Latin-1 secret)
        # reaches Python as a lone surrogate, and encode() failed on every console page (500)
        key = (
            hashlib.sha256(configured.encode("utf-8", "surrogateescape")).digest()
            if configured
            else secrets.token_bytes(32)
        )
        request.app.state.console_key = key
    return key


def _mac(request: Request, value: str) -> str:
    return hmac.new(_key(request), value.encode(), hashlib.sha256).hexdigest()[:40]


def secure_cookies() -> bool:
    return os.environ.get("STRAITS_CONSOLE_INSECURE_COOKIE") != "1"


def current(request: Request) -> Signed | None:
    """The signed-in user of ``request``, or None (no cookie, or a revoked/expired token)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        who = authenticate(request.app.state.store, token)
    except AuthError:
        return None
    request.state.who = who  # what the error handlers may show depends on who asked
    return Signed(who, _mac(request, "session:" + who.token_id))


def sign_in(request: Request, response: Response, token: str) -> Principal:
    """Check ``token`` and set the session cookie (raises AuthError when it is refused)."""
    who = authenticate(request.app.state.store, token.strip() or None)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=MAX_AGE,
        httponly=True,
        secure=secure_cookies(),
        samesite="strict",
        path="/",
    )
    response.delete_cookie(PRE_COOKIE, path="/")
    return who


def sign_out(response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, secure=secure_cookies(), samesite="strict"
    )


def pre_value(request: Request) -> str:
    """The sign-in form's random value (kept from the cookie when there is one)."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def pre_csrf(request: Request, value: str) -> str:
    """The CSRF token of the sign-in form for ``value`` (double submit: ``value`` goes in a
    cookie with :func:`set_pre_cookie`, its MAC in the form)."""
    return _mac(request, "pre:" + value)


def set_pre_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=3600,
        httponly=True,
        secure=secure_cookies(),
        samesite="strict",
        path="/",
    )


def _same(expected: str, given: str) -> bool:
    """``given`` is ``expected``, compared in constant time as bytes: ``compare_digest`` of
    two strings raises TypeError when one holds a character beyond ASCII, so a form posted
    with ``csrf=é`` was a 500 with an incident instead of the 403 of a wrong token (api29)."""

    def raw(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    return hmac.compare_digest(raw(expected), raw(given or ""))


def check_pre_csrf(request: Request, given: str) -> bool:
    value = request.cookies.get(PRE_COOKIE)
    return bool(value) and _same(_mac(request, "pre:" + str(value)), given)


def check_csrf(request: Request, signed: Signed, given: str) -> bool:
    return _same(signed.csrf, given)
