"""A witness after its state was compacted (fix90): a fork at a size whose signed note was
compacted away is still a **split view** (the witness keeps the roots of the sizes it saw), and
where even the root was dropped the witness says it cannot prove one
(``unprovable-after-compaction``) instead of an unqualified ``inconsistent``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from straits.errors import InputError
from straits.store import merkle, witness_state
from straits.store.note import Checkpoint, Signer, sign_checkpoint
from straits.store.witness import Offered, Outcome, Witness

ORIGIN = "straits.test/witness-compaction"


class Log:
    """A Merkle log of ``leaves`` leaves, named ``name`` (two names fork after ``common``)."""

    def __init__(self, name: str, leaves: int, common: int) -> None:
        self.hashes: dict[tuple[int, int], bytes] = {}
        t = merkle.TreeBuilder()
        for i in range(leaves):
            data = f"common-{i}" if i < common else f"{name}-{i}"
            leaf = merkle.leaf_hash(hashlib.sha256(data.encode()).digest())
            for level, index, h in t.add(leaf):
                self.hashes[(level, index)] = h

    def root(self, size: int) -> bytes:
        return merkle.root(size, self.hashes)

    def proof(self, first: int, second: int) -> list[bytes]:
        return merkle.consistency_proof(first, second, self.hashes)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction at a size a test can reach: 3 notes and 4 roots a log."""
    monkeypatch.setattr(witness_state, "KEEP_SEEN", 3)
    monkeypatch.setattr(witness_state, "KEEP_ROOTS", 4, raising=False)


A, B = Log("a", 16, common=2), Log("b", 16, common=2)  # one log key, two histories after 2


def offer(path: Path, signer: Signer, log: Log, size: int) -> Outcome:
    """One witness run: the checkpoint of ``log`` at ``size``, proofs asked of ``log``."""
    w = Witness(path)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, log.root(size)), signer)
    out = w.offer(Offered(note, f"{id(log)}-{size}"), [signer.verifier], log.proof)
    w.save()  # compacted here
    return out


def witnessed(tmp_path: Path, signer: Signer, upto: int = 10) -> Path:
    path = tmp_path / "w.json"
    for size in range(1, upto + 1):
        assert offer(path, signer, A, size).status == "accepted"
    return path


def test_a_fork_at_a_compacted_size_is_a_split_view(
    tmp_path: Path, signer: Signer, small: None
) -> None:
    path = witnessed(tmp_path, signer)
    log = json.loads(path.read_text())["logs"][ORIGIN]
    assert [x["size"] for x in log["seen"]] == [1, 9, 10]  # the notes of 2..8 compacted away
    assert sorted(int(n) for n in log["roots"]) == [5, 6, 7, 8]  # their roots kept, 4 at most
    assert log["forgotten_upto"] == 4  # 2..4 dropped whole
    # B's tree of 6 entries, its log's proof to A's 10 fails: it was "inconsistent"
    out = offer(path, signer, B, 6)
    assert (out.status, out.ok, out.size, len(out.evidence)) == ("split-view", False, 6, 2)
    assert A.root(6).hex()[:16] in out.message and B.root(6).hex()[:16] in out.message
    # A's own tree of 6 entries again: seen before, though only its root is kept
    again = offer(path, signer, A, 6)
    assert (again.status, again.ok) == ("seen", True)


def test_a_fork_at_a_size_wholly_forgotten_is_said_to_be_unprovable(
    tmp_path: Path, signer: Signer, small: None
) -> None:
    path = witnessed(tmp_path, signer)
    out = offer(path, signer, B, 3)  # 3 was seen, then dropped note and root
    assert (out.status, out.ok, out.size, len(out.evidence)) == (
        "unprovable-after-compaction",
        False,
        3,
        2,
    )
    # a size above every one seen, never seen: inconsistent, as before
    assert offer(path, signer, B, 12).status == "inconsistent"
    # the log's own history still verifies at a forgotten size
    assert offer(path, signer, A, 3).status == "older-consistent"


def test_a_state_an_older_version_compacted_is_read_as_maybe_forgetful(
    tmp_path: Path, signer: Signer, small: None
) -> None:
    """A state without ``roots`` holding exactly KEEP_SEEN checkpoints may have lost some
    (older versions kept nothing of them): a fork below its latest cannot be called a split
    view, and the witness says so."""
    path = witnessed(tmp_path, signer)
    s = json.loads(path.read_text())
    log = s["logs"][ORIGIN]
    del log["roots"], log["forgotten_upto"]
    path.write_text(json.dumps(s))
    out = offer(path, signer, B, 6)
    assert out.status == "unprovable-after-compaction"


def _state(log: dict[str, Any]) -> dict[str, Any]:
    item = {"size": 3, "root": "ab" * 32, "note": "n", "source": "s", "seen_at": "t"}
    return {
        "format": "straits-witness/1",
        "logs": {ORIGIN: {"seen": [item], "latest": item, **log}},
    }


@pytest.mark.parametrize(
    ("log", "field"),
    [
        ({"roots": []}, ".roots"),
        ({"roots": {"x": "ab" * 32}}, ".roots"),
        ({"roots": {"-1": "ab" * 32}}, ".roots"),
        ({"roots": {"2": "zz"}}, ".roots['2']"),
        ({"roots": {}, "forgotten_upto": "4"}, ".forgotten_upto"),
        ({"roots": {}, "forgotten_upto": True}, ".forgotten_upto"),
    ],
)
def test_roots_of_a_state_the_witness_never_wrote_are_refused(
    log: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as e:
        witness_state.check_state(_state(log), "s")
    assert field in str(e.value) and e.value.path == "--state"


def test_a_state_with_roots_is_read(tmp_path: Path) -> None:
    s = _state({"roots": {"2": "cd" * 32}, "forgotten_upto": 1})
    witness_state.check_state(s, "s")
