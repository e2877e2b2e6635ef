"""The ledger as a transparency log, on SQLite and PostgreSQL: the stored tree equals an
independent reference, every tamper case of the issue is detected and named, and older heads
verify through consistency proofs and forged or unsigned ones fail. That reads of recorded
plans and decisions are proven is test_ledger_reads.py's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import LEDGER_ORIGIN
from straits.errors import LedgerError
from straits.loading import load_scenario
from straits.plan import Plan, make_plan
from straits.rules import RuleSet
from straits.store import Store, checkpoints, ledger, merkle, tree
from straits.store.integrity import ChainHead, verify_heads, verify_store
from straits.store.keys import Keys
from straits.store.ledger import Entry, canonical
from straits.store.note import Checkpoint, Signer, open_checkpoint, sign_checkpoint
from straits.store.proven import prove_entry
from test_merkle import ref_mth, ref_path

ORIGIN = LEDGER_ORIGIN


def sql(url: str, statement: str, **params: object) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def fill(store: Store, n: int, tenants: tuple[str, ...] = ("a", "b", "a")) -> None:
    for i in range(n):
        ledger.record(
            store,
            tenant=tenants[i % len(tenants)],
            actor="test",
            kind="check",
            body={"i": i, "note": "ünïcode"},
        )


@pytest.fixture(scope="module")
def plan(rules: RuleSet, example_path: Path) -> Plan:
    return make_plan(load_scenario(example_path), rules=rules, solver="greedy")


# --- the tree ------------------------------------------------------------------------------------
def test_stored_tree_matches_the_reference_and_every_entry_is_proven(db_url: str) -> None:
    store = Store(db_url)
    fill(store, 13)
    chain = list(ledger.entries(store))
    assert [e.tenant_seq for e in chain if e.tenant == "a"] == list(range(1, 10))
    assert len({e.salt for e in chain}) == 13 and all(len(e.salt) == 32 for e in chain)
    data = [e.leaf_data() for e in chain]
    v = verify_store(store, Keys())
    assert v.ok, v.problem
    assert v.root_hash == ref_mth(data).hex()
    for e in chain:
        p = prove_entry(store, e.seq, Keys())
        assert p.root == ref_mth(data) and p.tree_size == 13 and not p.signed
        from straits.store import tree

        with store.session() as s:
            assert tree.proofs(s, inclusions=[(e.seq - 1, 13)]).inclusion(
                e.seq - 1, 13
            ) == ref_path(e.seq - 1, data)


def test_proof_reads_search_the_primary_key_and_never_scan(tmp_path: Path) -> None:
    """A proof must read O(log n) rows: on SQLite its query plan searches the primary key."""
    from straits.store import tree

    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    q = tree.fetch_query(
        sorted(
            merkle.inclusion_nodes(123_456, 1_000_000)
            | merkle.consistency_nodes(500_000, 1_000_000)
        )
    )
    sql_text = str(q.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql_text)]
    assert any(p.startswith("SEARCH ledger_nodes USING") for p in plan), plan
    assert not any(p.startswith("SCAN ledger_nodes") for p in plan), plan


def test_checkpoints_are_signed_reused_and_never_fork(db_url: str, keys: Keys) -> None:
    store = Store(db_url)
    fill(store, 5)
    assert keys.signer is not None
    cp1 = checkpoints.issue(store, keys.signer)
    assert cp1.checkpoint.size == 5 and cp1.key == keys.signer.verifier
    assert checkpoints.issue(store, keys.signer).note == cp1.note  # not grown: the same one
    fill(store, 2)
    cp2 = checkpoints.issue(store, keys.signer)
    assert cp2.checkpoint.size == 7
    opened = open_checkpoint(cp2.note, keys.trusted)
    assert opened.checkpoint.root.hex() == verify_store(store, keys).root_hash
    v = verify_store(store, keys)
    assert v.ok and v.signatures == "checked" and v.checkpoint is not None
    assert v.checkpoint["size"] == 7
    assert prove_entry(store, 3, keys).signed


# --- tampering -----------------------------------------------------------------------------------
def _rewrite_everything(
    url: str, seq: int, keep_checkpoints: bool = True, body: str | None = None
) -> None:
    """The strongest forger without the key: alter entry ``seq`` and recompute the whole chain
    and the whole tree, so everything in the database is consistent again."""
    store = Store(url)
    chain = list(ledger.entries(store))
    prev = ledger.GENESIS
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_nodes"))
        b = merkle.TreeBuilder()
        for e in chain:
            text_ = (body or canonical({"i": 999})) if e.seq == seq else e.body
            e2 = Entry(**{**e.__dict__, "body": text_, "prev_hash": prev, "hash": ""})
            e2 = Entry(**{**e2.__dict__, "hash": e2.expected_hash()})
            conn.execute(
                text("UPDATE ledger SET body=:b, prev_hash=:p, hash=:h WHERE seq=:s"),
                {"b": "tmp" + str(e.seq), "p": "p" + str(e.seq), "h": "h" + str(e.seq), "s": e.seq},
            )
            prev = e2.hash
            for lv, ix, h in b.add(e2.leaf_hash()):
                conn.execute(
                    text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                    {"l": lv, "i": ix, "h": h.hex()},
                )
            chain[e.seq - 1] = e2
        for e2 in chain:
            conn.execute(
                text("UPDATE ledger SET body=:b, prev_hash=:p, hash=:h WHERE seq=:s"),
                {"b": e2.body, "p": e2.prev_hash, "h": e2.hash, "s": e2.seq},
            )
        conn.execute(text("UPDATE ledger_head SET hash=:h"), {"h": prev})
        if not keep_checkpoints:
            conn.execute(text("DELETE FROM ledger_checkpoints"))
    engine.dispose()


def _truncate_everything(url: str, keep: int) -> None:
    """Remove the last entries, their tree nodes, and move the head: a consistent truncation."""
    store = Store(url)
    last = ledger.get_entry(store, keep)
    assert last is not None
    sql(url, "DELETE FROM ledger WHERE seq > :k", k=keep)
    sql(url, "DELETE FROM ledger_nodes")
    b = merkle.TreeBuilder()
    for e in ledger.entries(store):
        for lv, ix, h in b.add(e.leaf_hash()):
            sql(
                url,
                "INSERT INTO ledger_nodes (level, idx, hash) VALUES (:l, :i, :h)",
                l=lv,
                i=ix,
                h=h.hex(),
            )
    sql(url, "UPDATE ledger_head SET seq=:s, hash=:h", s=keep, h=last.hash)


def _alter_checkpoint(url: str) -> None:
    """Put another root in the stored checkpoint's text and column, keeping the signature."""
    engine = create_engine(url)
    with engine.begin() as conn:
        note = conn.execute(text("SELECT note FROM ledger_checkpoints")).scalar_one()
        origin, size, _, rest = note.split("\n", 3)
        conn.execute(
            text("UPDATE ledger_checkpoints SET note=:n, root=:r"),
            {"n": "\n".join((origin, size, "A" * 43 + "=", rest)), "r": "00" * 32},
        )
    engine.dispose()


def _forge_checkpoint(url: str) -> None:
    other = Signer.generate(ORIGIN)  # same name, another key: what a forger can make
    sql(
        url,
        "UPDATE ledger_checkpoints SET note=:n",
        n=other.sign("straits.test/ledger\n8\n" + "A" * 43 + "=\n"),
    )


TAMPER: list[tuple[str, Callable[[str], None], int | None, str | None]] = [
    ("entry altered, whole chain re-hashed", lambda u: _rechain(u, 3), 3, "Merkle leaf"),
    (
        "entry altered, chain and tree rewritten",
        lambda u: _rewrite_everything(u, 3),
        None,
        "rewritten",
    ),
    (
        "tree node altered",
        lambda u: sql(u, "UPDATE ledger_nodes SET hash=:h WHERE level=1 AND idx=1", h="00" * 32),
        3,
        "does not match",
    ),
    (
        "tree leaf deleted",
        lambda u: sql(u, "DELETE FROM ledger_nodes WHERE level=0 AND idx=4"),
        5,
        "no leaf",
    ),
    (
        "tree node put at a negative level",  # led29: it was ignored
        lambda u: sql(
            u, "INSERT INTO ledger_nodes (level, idx, hash) VALUES (-1, 0, :h)", h="0" * 64
        ),
        1,
        "negative",
    ),
    ("tail truncated consistently", lambda u: _truncate_everything(u, 6), 7, "removed"),
    ("checkpoint forged with another key", _forge_checkpoint, None, "no signature by a trusted"),
    ("checkpoint root altered", lambda u: _alter_checkpoint(u), None, "does not verify"),
    (
        "checkpoint deleted and log rewritten",
        lambda u: _rewrite_everything(u, 2, False),
        None,
        None,
    ),
]


def _rechain(url: str, seq: int) -> None:
    """Alter entry ``seq`` and recompute the chain from it on (not the tree)."""
    store = Store(url)
    chain = list(ledger.entries(store))
    prev = chain[seq - 2].hash if seq > 1 else ledger.GENESIS
    for e in chain[seq - 1 :]:
        body = canonical({"i": 999}) if e.seq == seq else e.body
        e2 = Entry(**{**e.__dict__, "body": body, "prev_hash": prev, "hash": ""})
        e2 = Entry(**{**e2.__dict__, "hash": e2.expected_hash()})
        sql(
            url,
            "UPDATE ledger SET body=:b, prev_hash=:p, hash=:h WHERE seq=:s",
            b=e2.body,
            p="x" + str(e.seq),
            h="y" + str(e.seq),
            s=e.seq,
        )
        sql(url, "UPDATE ledger SET prev_hash=:p, hash=:h WHERE seq=:s", p=prev, h=e2.hash, s=e.seq)
        prev = e2.hash
    sql(url, "UPDATE ledger_head SET hash=:h", h=prev)


@pytest.mark.parametrize(
    ("what", "tamper", "first_bad", "word"), TAMPER, ids=[t[0] for t in TAMPER]
)
def test_tampering_with_the_log_is_found(
    db_url: str,
    keys: Keys,
    what: str,
    tamper: Callable[[str], None],
    first_bad: int | None,
    word: str | None,
) -> None:
    store = Store(db_url)
    fill(store, 8)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    tamper(db_url)
    v = verify_store(Store(db_url), keys)
    if word is None:  # the forger removed every checkpoint: only a published one shows it
        assert v.ok and v.signatures == "none"
        return
    assert not v.ok, what
    assert word in (v.problem or ""), v.problem
    if first_bad is not None:
        assert v.first_bad == first_bad, v.problem


def test_a_rewrite_without_checkpoints_is_caught_by_a_published_one(
    db_url: str, keys: Keys
) -> None:
    store = Store(db_url)
    fill(store, 8)
    assert keys.signer is not None
    published = checkpoints.issue(store, keys.signer)
    _rewrite_everything(db_url, 2, keep_checkpoints=False)
    v = verify_store(Store(db_url), keys, [published])
    assert not v.ok and "rewritten" in (v.problem or "")
    q = verify_heads(Store(db_url), keys, [published])  # the quick check sees it too
    assert not q.ok and "rewritten" in (q.problem or "")


def test_an_older_published_head_verifies_and_a_forged_one_fails(db_url: str) -> None:
    store = Store(db_url)
    fill(store, 5)
    v5 = verify_store(store, Keys())
    old_chain, old_root = ChainHead(5, v5.head_hash), ChainHead(5, v5.root_hash or "")
    fill(store, 6)
    v = verify_store(store, Keys(), [old_chain, old_root])
    assert v.ok, v.problem
    assert [h["proven_by"].split()[0] for h in v.heads] == ["chain", "consistency"]
    forged = ChainHead(5, hashlib.sha256(b"forged").hexdigest())
    bad = verify_store(store, Keys(), [forged])
    assert not bad.ok and "forged" in (bad.problem or "") and bad.first_bad == 5
    future = verify_store(store, Keys(), [ChainHead(20, v5.head_hash)])
    assert not future.ok and "removed from the end" in (future.problem or "")
    # size 0: the empty tree's root and nothing else (any hash was 'proven'), as with --file
    empty = ChainHead(0, merkle.EMPTY_ROOT.hex())
    assert verify_store(store, Keys(), [empty]).ok and verify_heads(store, Keys(), [empty]).ok
    for fake in (hashlib.sha256(b"forged").hexdigest(), ledger.GENESIS):
        zero = ChainHead(0, fake)
        assert not verify_store(store, Keys(), [zero]).ok
        assert not verify_heads(store, Keys(), [zero]).ok


def test_a_forged_latest_checkpoint_does_not_get_a_rewritten_log_signed(
    db_url: str, keys: Keys
) -> None:
    """A database writer rewrites the log, appends an entry and inserts a checkpoint row of
    the rewritten log signed by another key: issuing must not take that row for the log's own
    latest checkpoint and sign the rewritten history (it did: the consistency check before
    signing opened the latest row without checking its signature)."""
    store = Store(db_url)
    fill(store, 8)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    _rewrite_everything(db_url, 2)
    fill(Store(db_url), 1)
    with Store(db_url).session() as s:
        root8 = tree.proofs(s, roots=[8]).root(8)
    other = Signer.generate(ORIGIN)
    sql(
        db_url,
        "INSERT INTO ledger_checkpoints (size, root, origin, key_id, note, created_at) "
        "VALUES (8, :r, :o, :k, :n, '2026-12-01T00:00:00+00:00')",
        r=root8.hex(),
        o=ORIGIN,
        k=f"{other.verifier.id:08x}",
        n=sign_checkpoint(Checkpoint(ORIGIN, 8, root8), other),
    )
    with pytest.raises(LedgerError, match="not trustworthy"):
        checkpoints.issue(Store(db_url), keys.signer)
    with create_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT max(size) FROM ledger_checkpoints")).scalar() == 8


#: the head row edited by hand; the code both checks give (the quick one said "verifies" of
#: the first two: a fresh-eye attack)
HEAD_EDITS = [
    (
        "rewound",
        "UPDATE ledger_head SET seq=seq-1, hash=(SELECT hash FROM ledger WHERE seq=6)",
        "head-altered",
    ),
    ("re-hashed", "UPDATE ledger_head SET hash=:h", "head-altered"),
    ("advanced", "UPDATE ledger_head SET seq=seq+1", "tail-removed"),
]


@pytest.mark.parametrize(("what", "statement", "code"), HEAD_EDITS, ids=[h[0] for h in HEAD_EDITS])
def test_the_quick_check_holds_the_head_to_the_last_entry(
    db_url: str, what: str, statement: str, code: str
) -> None:
    store = Store(db_url)
    fill(store, 7)
    assert verify_heads(store, Keys(), []).ok
    sql(db_url, statement, h="ab" * 32)
    store = Store(db_url)
    quick, full = verify_heads(store, Keys(), []), verify_store(store, Keys())
    assert (quick.ok, full.ok) == (False, False)
    assert quick.code == code, quick.problem
    assert full.code in ("head-altered", "tail-removed"), full.problem
