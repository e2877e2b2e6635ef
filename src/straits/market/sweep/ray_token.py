"""A Ray cluster that asks for a token (``RAY_AUTH_MODE=token``), named as such, and at once.

``ray.init(address=...)`` joins a cluster's GCS through a loop of 20 attempts a second apart
(``ray._private.node.Node._init_gcs_client``) that retries every failure alike: a cluster that
refuses this process's token was reported after 20 s, as "Failed to connect". Ray's own GCS
client (the one ``ray health-check`` makes) answers the same question in one call, in
milliseconds: :func:`probe_token` asks it once before ``ray.init``. It runs in a child process:
with ``RAY_AUTH_MODE=token`` and no token anywhere the client's constructor fails a C++ check
and aborts its process (Ray 2.60; ``ray.init`` checks the token first, and so does the child),
and it has no timeout of its own (a port that answers but is no GCS held it 40 s). Only a
refused token ends the join here; any other answer, or none within :data:`TOKEN_PROBE_SECONDS`,
leaves the join to ``ray.init`` as before.

Shortening Ray's retries instead (``RAY_gcs_server_port_wait_time_s``, read by that loop) was
not taken: it is an operator's setting, read by the head's own start too, and a GCS that is
restarting (RocksDB recovery) needs the retries a refused token does not.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

from straits.errors import InputError

#: seconds the child that asks the GCS may take (it imports Ray's core, ~0.5 s, and asks once)
TOKEN_PROBE_SECONDS = 10.0

#: what to set for a cluster started with token authentication (``RAY_AUTH_MODE=token``)
RAY_TOKEN_EXPECTED = (
    "RAY_AUTH_MODE=token, and the cluster's token in RAY_AUTH_TOKEN or in the file "
    "RAY_AUTH_TOKEN_PATH names (default ~/.ray/auth_token)"
)

#: the child: one line on stdout, "refused MESSAGE", "accepted" or "unknown" after
#: :data:`MARK` (what else Ray may print is not read); nothing where Ray's core cannot be
#: imported. It ends itself (SIGALRM, whose default ends a process even inside Ray's C++) a
#: second after the parent would have killed it: a CLI killed while it asked a silent port
#: left it running alone for ~40 s (rev65b)
MARK = "straits-ray-token: "
_CHILD = """
import signal, sys
if hasattr(signal, "alarm"):
    signal.alarm(int(sys.argv[2]))
MARK = "straits-ray-token: "
try:
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError
except BaseException:
    raise SystemExit(0)
try:
    try:
        from ray._private.authentication.authentication_token_setup import (
            ensure_token_if_auth_enabled,
        )
    except ImportError:
        pass
    else:
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    GcsClient(address=sys.argv[1])
except AuthenticationError as e:
    print(MARK + "refused " + " ".join(str(e).split()), flush=True)
except BaseException:
    print(MARK + "unknown", flush=True)
else:
    print(MARK + "accepted", flush=True)
"""


def ask_gcs(address: str) -> str | None:
    """The child's answer for the GCS at ``address`` (``HOST:PORT``), or None where it gave
    none in time (killed), crashed or could not import Ray."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, address, str(math.ceil(TOKEN_PROBE_SECONDS) + 1)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TOKEN_PROBE_SECONDS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    answers = [x for x in done.stdout.splitlines() if x.startswith(MARK)]
    return answers[-1].removeprefix(MARK) if answers else None


def probe_token(address: str, option: str = "--ray-address") -> None:
    """Refuse at once a cluster whose GCS refuses this process's token. A Ray Client address
    (``ray://``) and ``auto`` are left to ``ray.init``."""
    if "://" in address or ":" not in address:
        return
    answer = ask_gcs(address)
    if answer is not None and answer.startswith("refused "):
        raise token_error(answer.removeprefix("refused "), address, option)


def token_error(message: str, address: str, option: str) -> InputError:
    """The error for a cluster that refused this process's token; ``message`` is Ray's."""
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() != "token":
        why = "it asks for a token (token authentication) and RAY_AUTH_MODE is not `token`"
    elif "no authentication token was found" in message:
        why = "RAY_AUTH_MODE is `token` but no token was found"
    elif "RAY_AUTH_TOKEN_PATH is set but" in message:
        why = "the file RAY_AUTH_TOKEN_PATH names cannot be read or is empty"
    else:
        why = "it refused the token given (not the cluster's)"
    return InputError(
        f"cannot join the Ray cluster at {address!r}: {why}",
        path=option,
        expected=RAY_TOKEN_EXPECTED,
    )


def join_refused(exc: BaseException, address: str, option: str) -> Exception:
    """The error for a cluster Ray could not join. A cluster with token authentication that
    was given no token (or a wrong one) is named as such: Ray's own answer, after 20 s of
    retries, was "Failed to connect to Ray cluster at ...", its cause (an AuthenticationError,
    "InvalidAuthToken") only in the text of a traceback two exceptions down; and with
    ``RAY_AUTH_MODE=token`` but no token anywhere, ray.init's AuthenticationError was a
    traceback."""
    refused = token_refused(exc)
    if refused is not None:
        return token_error(refused, address, option)
    why = " ".join(str(exc).split())[:300]  # Ray's messages span lines
    return InputError(
        f"cannot join the Ray cluster at {address!r}: {why}",
        path=option,
        expected="the address of a running Ray cluster "
        "(ray://HOST:10001 needs `pip install 'ray[client]'`)",
    )


def token_refused(exc: BaseException) -> str | None:
    """The text of ``exc`` or of an exception it came from that is Ray's AuthenticationError,
    as an object or in the text of the traceback Ray's RuntimeError quotes; None if none is."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        if type(e).__name__ == "AuthenticationError" or any(
            mark in text for mark in ("AuthenticationError:", "InvalidAuthToken")
        ):
            return text
        e = e.__cause__ or e.__context__
    return None
