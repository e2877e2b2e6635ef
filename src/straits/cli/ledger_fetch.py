"""Reading what the ledger's proof commands check: a file or ``-`` (without blocking on a
FIFO), or a log's URL (``GET`` with a bearer token that stays with its origin, the whole answer
bounded in bytes and in time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from straits.cli.common import read_stdin_text
from straits.errors import InputError, RemoteError, StraitsError

MAX_FETCH = 1024 * 1024


def read_text(path: Path, option: str, cap: int = MAX_FETCH) -> str:
    from straits import pipes

    try:  # without blocking: a FIFO nothing writes to hung verify-receipt and the witness
        raw = pipes.read_path(path, cap)
    except OSError as exc:
        raise InputError(
            f"cannot read: {exc.strerror or exc}", source=str(path), path=option
        ) from None
    if len(raw) > cap:
        raise InputError(f"over {cap:,} bytes", source=str(path), path=option)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path), path=option) from None


def _origin(url: str) -> tuple[str, str, int | None]:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def http_get(url: str, token: str | None) -> str:
    import urllib.error
    import urllib.request

    class TokenStaysHome(urllib.request.HTTPRedirectHandler):
        """Follows redirects, but sends the bearer token only to the origin it was given
        for: urllib keeps every header on a redirect, so a log (or anyone on a plain-HTTP
        path to it) answering 302 to another host was sent the token (httpx and requests
        drop it too)."""

        def redirect_request(  # type: ignore[no-untyped-def]
            self, req, fp, code, msg, headers, newurl
        ) -> urllib.request.Request | None:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and _origin(newurl) != _origin(req.full_url):
                new.remove_header("Authorization")
            return new

    req = urllib.request.Request(url, headers={"Accept": "application/json, text/plain"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    from straits.limits import env_number

    timeout = env_number("STRAITS_WITNESS_TIMEOUT", 10.0, 0.001, 3600.0, unit="seconds")

    out: list[bytes | StraitsError] = []

    def fetch() -> None:
        try:
            with urllib.request.build_opener(TokenStaysHome).open(req, timeout=timeout) as r:
                out.append(r.read(MAX_FETCH + 1))
        except urllib.error.HTTPError as exc:  # 5xx: the log failed, not the input (exit 1)
            said = " ".join(exc.read(500).decode("utf-8", "replace").split())[:200]  # one line
            text = f"HTTP {exc.code}: {said}"
            bad = InputError(text, source=url) if exc.code < 500 else RemoteError(f"{url}: {text}")
            out.append(bad)
        except (urllib.error.URLError, OSError) as exc:  # a log that cannot be reached: exit 1
            out.append(RemoteError(f"{url}: cannot fetch: {getattr(exc, 'reason', exc)}"))
        except ValueError as exc:
            out.append(InputError(f"cannot fetch: {exc}", source=url))

    # the socket's timeout bounds each read, not the answer: a log sending a byte just inside
    # it each time held the witness as long as it liked. The fetch runs in a daemon thread
    # given the same time in all; one still running is abandoned (the command ends anyway)
    import threading

    worker = threading.Thread(target=fetch, name="straits-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if not out:
        raise RemoteError(f"{url}: no whole answer within {timeout:g} s")
    if isinstance(out[0], StraitsError):
        raise out[0]
    raw = out[0]
    if len(raw) > MAX_FETCH:
        raise InputError(f"over {MAX_FETCH:,} bytes", source=url)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=url) from None


@dataclass(frozen=True)
class Fetched:
    text: str
    refused_since: int | None = None
    """the witness's own ``since`` the log refused as beyond its checkpoint (it was then
    fetched without it): the log's latest checkpoint is smaller than the witness's latest"""


def fetch_checkpoint(src: str, token: str | None, since: int | None) -> Fetched:
    """A checkpoint to witness: a file, ``-``, or a URL (a server's checkpoint route asked
    with the witness's ``since``)."""
    import urllib.parse

    if src == "-":
        return Fetched(read_stdin_text("a checkpoint"))
    if src.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(src)
        if parts.path.rstrip("/").endswith("/v1/ledger/checkpoint") and since is not None:
            # the witness's own since, once (a URL naming one too was a 400: given twice)
            kept = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "since"]
            query = [*kept, ("since", str(since))]
            with_since = urllib.parse.urlunsplit(
                parts._replace(query=urllib.parse.urlencode(query))
            )
            try:
                return Fetched(http_get(with_since, token))
            except InputError as exc:
                # the witness's own since refused: the log's latest is smaller than the
                # witness's, so the checkpoint is fetched without it and judged by its origin
                # (the same log gone back: a rollback, exit 1; another log: trust on first
                # use). As bad input (exit 2) it hid a rolled-back log (a fresh-eye attack)
                if "beyond the checkpoint" not in exc.detail:
                    raise
                src = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))
                return Fetched(http_get(src, token), since)
        return Fetched(http_get(src, token))
    return Fetched(read_text(Path(src), "--checkpoint"))
