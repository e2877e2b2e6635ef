"""Verifying a ledger export (``straits ledger export``) away from the database.

The export holds every entry with every stored field, so the chain and the Merkle tree are
rebuilt from it alone (constant memory beyond the entries read), and each older head given is
checked against the rebuilt tree: a ``SEQ:HASH`` head against entry SEQ's chain hash or the
root of the first SEQ entries, a signed checkpoint against the root at its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from straits.errors import InputError
from straits.store import merkle
from straits.store.integrity import ChainHead, Head
from straits.store.ledger import Entry, Verification, verify_chain

#: what a verification of an export without a head cannot tell
NO_HEAD_NOTE = (
    "no --head: an export cut after any entry verifies as well (a prefix of a log is a log); "
    "give the log's published checkpoint (--head FILE) to prove it whole"
)


def verify_export(chain: Iterable[Entry], heads: list[Head]) -> Verification:
    """The chain, the tree and the heads of an export (a removed tail shows only against a
    head)."""
    wanted = {h.seq if isinstance(h, ChainHead) else h.checkpoint.size for h in heads}
    builder = merkle.TreeBuilder()
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    chain_hashes: dict[int, str] = {}
    counts: dict[str, int] = {}
    numbering: list[tuple[int, str]] = []

    def building(entries: Iterable[Entry]) -> Iterator[Entry]:
        for e in entries:
            tseq = counts[e.tenant] = counts.get(e.tenant, 0) + 1
            if e.tenant_seq and e.tenant_seq != tseq and not numbering:
                numbering.append(
                    (
                        e.seq,
                        f"entry {e.seq} is number {e.tenant_seq} of tenant "
                        f"{e.tenant!r}, but the export holds {tseq} of its entries "
                        "up to it: entries were removed, or the number altered",
                    )
                )
            if not e.tenant_seq:  # an export made before the tree: numbered as the upgrade did
                e = Entry(**{**e.__dict__, "tenant_seq": tseq})
            for _ in builder.add(e.leaf_hash()):
                pass
            if builder.size in wanted:
                roots[builder.size] = builder.root()
                chain_hashes[builder.size] = e.hash
            yield e

    v = verify_chain(building(chain))
    if not v.ok:
        return v
    if numbering:
        seq, problem = numbering[0]
        return v.replace(ok=False, first_bad=seq, problem=problem, code="entry-missing")
    v = v.replace(root_hash=builder.root().hex())
    proven: list[dict[str, Any]] = []
    for h in heads:
        size = h.seq if isinstance(h, ChainHead) else h.checkpoint.size
        label = (
            h.label() if isinstance(h, ChainHead) else f"checkpoint {size}:{h.checkpoint.root_hex}"
        )
        if size > v.entries:
            return v.replace(
                ok=False,
                first_bad=v.entries + 1,
                problem=f"entries {v.entries + 1} to {size} were removed from the "
                f"end (the head {label[:40]}... records {size} entries)",
                code="tail-removed",
            )
        if isinstance(h, ChainHead):
            if chain_hashes.get(size) == h.hash:
                proven.append({"head": label, "proven_by": f"chain hash of entry {size}"})
                continue
            if roots.get(size, b"").hex() == h.hash:
                proven.append({"head": label, "proven_by": f"Merkle root of {size} entries"})
                continue
            return v.replace(
                ok=False,
                first_bad=size,
                problem=f"the head {label[:40]}... is neither the chain hash of "
                f"entry {size} nor the Merkle root of the first {size} "
                "entries: the head is forged, or the export was rewritten",
                code="head-forged",
            )
        if roots.get(size) != h.checkpoint.root:
            return v.replace(
                ok=False,
                first_bad=None,
                problem=f"the first {size} entries of the export do not hash to "
                f"the root the checkpoint signs: the export was rewritten",
                code="history-rewritten",
            )
        proven.append(
            {
                "head": label,
                "proven_by": f"Merkle root of {size} entries",
                "key": f"{h.key.name}+{h.key.id:08x}" if h.key else None,
            }
        )
    if not heads:
        return v.replace(notes=(*v.notes, NO_HEAD_NOTE))
    return v.replace(heads=tuple(proven))


def refuse_one_tenants_part(entries: list[Entry], label: str) -> None:
    """``InputError`` (exit 2, naming ``--file``) when ``entries`` are one tenant's part of a
    log (``ledger export --tenant T``): the tenant's numbers 1, 2, 3... without a gap, the
    log's numbers with gaps. Such a file is no log: its chain skips the other tenants' entries,
    and verifying it reported them removed (``entry-missing``, exit 1) of an honest export.
    Whether they were removed from a whole log's export cannot be told from the file either,
    so it is not verified as one (a tenant checks its entries' receipts)."""
    n = len(entries)
    if not entries or [e.seq for e in entries] == list(range(1, n + 1)):
        return
    tenant = entries[0].tenant
    if any(e.tenant != tenant for e in entries):
        return
    if [e.tenant_seq for e in entries] != list(range(1, n + 1)):
        return
    raise InputError(
        f"the file holds tenant {tenant!r}'s entries only (its numbers 1 to {n}, the log's "
        "with gaps): one tenant's part of a log, which does not verify as a log on its own",
        source=label,
        path="--file",
        expected="a whole log's export (`straits ledger export` without --tenant); a tenant "
        "verifies its entries' receipts (`straits ledger receipt N`)",
    )
