"""API tokens: ``st_<id>_<secret>``; only the SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (a slow password hash protects guessable
secrets; these are not guessable) and lookups stay cheap on every request. Comparison is
constant-time. Roles: ``viewer`` reads its tenant's plans, checks and estimates without
recording; ``planner`` also submits plans and records checks; ``admin`` sees every tenant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from straits.errors import AuthError, InputError, NotFoundError
from straits.store.db import Store
from straits.store.tables import AlteredRowError, PlanRow, TokenRow

Role = Literal["viewer", "planner", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "planner", "admin")
PREFIX = "st_"


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's id, tenant and role."""

    token_id: str
    tenant: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


def printable_line(text: str) -> bool:
    """No control character, and no lone surrogate (argv bytes that were not UTF-8)."""
    return not any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Store, tenant: str, role: str, label: str = "") -> tuple[str, TokenRow]:
    """A new token; the returned string is the only time the secret is seen."""
    check_token(tenant, role, label)
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = TokenRow(id=token_id, tenant=tenant, role=role, secret_hash=_hash(secret), label=label)
    with store.write() as s:
        s.add(row)
    return f"{PREFIX}{token_id}_{secret}", row


def check_token(tenant: str, role: str, label: str = "") -> None:
    """:func:`create_token`'s arguments, checked before any database is opened (`tokens
    create` with a bad --label or --role made and migrated a new database, then exit 2)."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", path="--role", expected=" | ".join(ROLES))
    from straits.store.ledger import check_who
    from straits.store.tables import MAX_TENANT

    if not tenant or len(tenant) > MAX_TENANT:
        raise InputError(
            f"a tenant id of 1 to {MAX_TENANT} characters is required", path="--tenant"
        )

    check_who(tenant, "token")  # the tenant names every entry the token records
    from straits.store.tables import MAX_LABEL

    if len(label) > MAX_LABEL:  # SQLite stored 100 KB in the 200-character column
        raise InputError(
            f"a label of {len(label)} characters",
            path="--label",
            expected=f"at most {MAX_LABEL} characters",
        )
    if label and not printable_line(label):
        raise InputError(
            f"{label[:60]!r} holds a control character or bytes that are not UTF-8",
            path="--label",
            expected="one line of printable text",
        )


#: seconds a verified token is trusted without asking the database again (a revocation made
#: by another process takes effect within this time; one made in this process, at once)
TRUST_SECONDS = 1.0
_trusted: dict[str, tuple[float, Principal]] = {}
#: revocations made in this process so far: a token read from the database before one of them
#: is not trusted after it (a request in flight while its token was revoked cached the token
#: anew, trusted for another second, where a revocation in this process counts at once)
_revocations = [0]
_trust_lock = threading.Lock()


def authenticate(store: Store, token: str | None) -> Principal:
    """The principal a bearer token stands for; AuthError(401) otherwise."""
    if token:
        hit = _trusted.get(_hash(token))
        if hit is not None and time.monotonic() - hit[0] < TRUST_SECONDS:
            return hit[1]
    before = _revocations[0]
    who = _authenticate(store, token)
    with _trust_lock:
        if _revocations[0] != before:  # a revocation came while it was read: ask again
            return _authenticate(store, token)
        if len(_trusted) > 10_000:
            _trusted.clear()
        _trusted[_hash(token or "")] = (time.monotonic(), who)
    return who


def _authenticate(store: Store, token: str | None) -> Principal:
    if not token:
        raise AuthError("missing bearer token: send 'Authorization: Bearer st_...'", 401)
    parts = token.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != PREFIX or not parts[1] or not parts[2]:
        raise AuthError("malformed token: expected st_<id>_<secret>", 401)
    if not (parts[1].isascii() and parts[1].isalnum() and len(parts[1]) <= 16):
        # ids are hex: one with a NUL (``?token=st_%00_x`` on the SkyPilot route, which takes
        # the token as a query parameter) was a DataError on PostgreSQL, a 500
        raise AuthError("malformed token: expected st_<id>_<secret>", 401)
    with store.session() as s:
        try:
            row = s.get(TokenRow, parts[1])
        except AlteredRowError:  # a value Straits never writes in the token's row
            raise AuthError(
                "this token's stored row was altered: it is not honoured", 401
            ) from None
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
            raise AuthError("invalid token", 401)
        if row.revoked_at is not None:
            raise AuthError("token revoked", 401)
        if row.role not in ROLES:  # a role no Straits writes: `may` could not rank it (a 500)
            raise AuthError("this token's stored role was altered: it is not honoured", 401)
        return Principal(row.id, row.tenant, row.role)


def list_tokens(store: Store) -> list[TokenRow]:
    with store.session() as s:
        return list(s.scalars(select(TokenRow).order_by(TokenRow.created_at)))


def revoke_token(store: Store, token_id: str) -> TokenRow:
    return revoke(store, token_id)[0]


def revoke(store: Store, token_id: str) -> tuple[TokenRow, int]:
    """Revoke the token and cancel the plans it submitted that have not ended (how many):
    queued ones at once, running ones at their worker's next heartbeat (unrecorded). They ran
    on after the revocation and were recorded in its tenant's ledger as decisions of a token
    that was refused from then on (one revoked because it leaked, say)."""
    with store.write() as s:
        row = s.get(TokenRow, token_id)
        if row is None:
            raise NotFoundError(f"no token {token_id!r}")
        now = dt.datetime.now(dt.UTC)
        if row.revoked_at is None:
            row.revoked_at = now
        mine = PlanRow.actor == f"token:{row.id}"  # Principal.actor
        queued = s.execute(
            update(PlanRow)
            .where(mine, PlanRow.status == "queued")
            .values(
                status="cancelled",
                finished_at=now,
                lease_until=None,
                cancel_requested=True,
                error="cancelled: the token that submitted it was revoked",
            )
        )
        running = s.execute(
            update(PlanRow).where(mine, PlanRow.status == "running").values(cancel_requested=True)
        )
        stopped = int(getattr(queued, "rowcount", 0)) + int(getattr(running, "rowcount", 0))
    with _trust_lock:
        _revocations[0] += 1
        _trusted.clear()
    return row, stopped
