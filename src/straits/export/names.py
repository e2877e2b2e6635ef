"""Names the schedulers accept, one per stage, distinct whatever the ids.

Scenario ids are up to 128 characters of ``[A-Za-z0-9][A-Za-z0-9._-]*``; the schedulers take
less, and each its own subset:

* Kubernetes object names are DNS labels (RFC 1123: at most 63 lowercase letters, digits and
  '-', alphanumeric at both ends); a Service's name, and so a JobSet's (its headless Service)
  and a LeaderWorkerSet's, is an RFC 1035 label: a letter first (``ValidateServiceName`` is
  ``NameIsDNS1035Label``).
* JobSet's webhook (``pkg/webhooks/jobset_webhook.go``, kubernetes-sigs/jobset) refuses a JobSet
  whose longest pod name ``<jobset>-<replicatedJob>-<job index>-<pod index>-abcde`` (the Job
  controller's 5 random characters) is no RFC 1035 label of at most 63 characters.
* A StatefulSet's pods carry ``controller-revision-hash: <statefulset>-<10 characters>``, a
  label value of at most 63 characters, so a StatefulSet name longer than 52 leaves its pods
  uncreatable (kubernetes/kubernetes#64023); a LeaderWorkerSet makes one StatefulSet per group,
  ``<lws>-<group index>``.
* SkyPilot: task names ``[a-zA-Z0-9]+(?:[._-]{1,2}[a-zA-Z0-9]+)*`` (no '---', ``sky/task.py``);
  ``sky jobs launch --name`` and ``sky serve up --service-name`` a letter first
  (``CLUSTER_NAME_VALID_REGEX``, ``[a-zA-Z]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?``).
* Kubernetes label values: at most 63 characters of ``[A-Za-z0-9._-]``, alphanumeric at both
  ends (or empty).

So a stage's name is ``<workload>-<stage>`` made an RFC 1035 label with single dashes and at most
:data:`NAME_MAX` characters; a name that had to change in more than case, or that two stages
share after the change, ends in ``-`` and a hash of the ids, and the hash widens until every
name is distinct. One name serves every target (files, Slurm job names, SkyPilot tasks,
Kubernetes objects), and it leaves room for what the controllers append.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

#: hex digits of the hash a changed name ends with (more where two would still be equal)
HASH = 6
#: the longest stage name: a JobSet of up to 10**9 nodes keeps its pod names within 63
#: characters (``-node-0-<index>-abcde``), a LeaderWorkerSet of up to 10**11 groups its
#: StatefulSets' within 52
NAME_MAX = 40
LABEL_MAX = 63
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def tag(text: str, width: int = HASH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:width]


def dns_name(text: str, limit: int = LABEL_MAX) -> str:
    """An RFC 1035 label of at most ``limit`` characters from ``text``: lowercase, every run of
    other characters (dashes too) one '-', ``s-`` before a leading digit."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not out:
        return "straits"
    if not out[0].isalpha():
        out = "s-" + out
    return out[:limit].rstrip("-")


def distinct(
    texts: Mapping[K, str],
    limit: int,
    seeds: Mapping[K, str] | None = None,
    short: Mapping[K, str] | None = None,
) -> dict[K, str]:
    """Each text as a :func:`dns_name` of at most ``limit`` characters, all different: one that
    changed in more than case, or that another shares, is ``short`` (default: the text) cut to
    leave room for ``-<hash of its seed>``."""
    seed = seeds or texts
    base = short or texts
    plain = {k: dns_name(t, limit) for k, t in texts.items()}
    counts = Counter(plain.values())
    hashed = {k for k, n in plain.items() if counts[n] > 1 or n != texts[k].lower()}
    for width in range(HASH, 17, 2):
        out = {
            k: f"{dns_name(base[k], limit - width - 1)}-{tag(seed[k], width)}" if k in hashed else n
            for k, n in plain.items()
        }
        if len(set(out.values())) == len(out):
            return out
        # a plain name equal to another's hashed one (or two hashes alike): widen them
        hashed |= {k for k, n in out.items() if list(out.values()).count(n) > 1}
    raise AssertionError(f"no distinct names for {sorted(map(str, texts))[:3]}")


def unique_names(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``<workload>-<stage>`` of each key as a stage name (see the module); a shortened one
    keeps at most 16 characters of the workload, so that some of the stage shows."""
    return distinct(
        {k: f"{k[0]}-{k[1]}" for k in keys},
        NAME_MAX,
        seeds={k: f"{k[0]}\0{k[1]}" for k in keys},
        short={k: f"{k[0][:16]}-{k[1]}" for k in keys},
    )


def unique_labels(names: list[str], limit: int = LABEL_MAX) -> dict[str, str]:
    """Each name as an RFC 1035 label, distinct (workload pipelines, Slurm cluster folders)."""
    return distinct({n: n for n in names}, limit)


def label_value(text: str) -> str:
    """A Kubernetes label value for ``text``: itself when it is one, else its allowed
    characters, cut to leave room for ``-<hash of text>``, so two ids never share a value (the
    labels select a Deployment's pods and a Service's endpoints)."""
    if len(text) <= LABEL_MAX and LABEL_VALUE.fullmatch(text):
        return text
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[: LABEL_MAX - HASH - 1]
    out = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", out)
    return f"{out}-{tag(text)}" if out else tag(text)


def fit_name(name: str, suffix_len: int, limit: int = LABEL_MAX) -> str:
    """``name`` short enough that ``name`` and a suffix of ``suffix_len`` characters are at most
    ``limit`` (a hash of the full name keeps shortened names apart)."""
    room = limit - suffix_len
    if len(name) <= room:
        return name
    return f"{name[: room - HASH - 1].rstrip('-')}-{tag(name)}"


# --- container image references -----------------------------------------------------------------
# the grammar of distribution/reference (reference.go), which the kubelet parses an image with:
# a reference it cannot parse leaves the pod in InvalidImageName, although the API server took it
_ALNUM = r"[a-z0-9]+"
_PATH = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*)(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII
)
#: distribution/reference's NameTotalLengthMax
IMAGE_NAME_MAX = 255


def image_reference(text: str) -> bool:
    """Whether ``text`` is an image reference the kubelet can pull: ``[DOMAIN/]PATH[:TAG]
    [@DIGEST]``, lowercase repository path, a name of at most 255 characters."""
    m = IMAGE_REFERENCE.fullmatch(text)
    return m is not None and len(m.group("name")) <= IMAGE_NAME_MAX
