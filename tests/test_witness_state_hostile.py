"""A witness state file edited by hand or by an attacker (atk93): ``roots`` and
``forgotten_upto`` (fix90) must describe what the witness itself would have written, or the
state is refused (exit 2, naming the field) before any checkpoint is judged against it. A root
kept above the latest size answered a forked checkpoint of that size ``seen`` (ok) without any
proof; a root key spelled ``07`` was never looked up (a split view at 7 became ``unproven``);
a key of 5,000 digits was a ValueError traceback once compaction sorted the roots; two roots
for one size (in ``seen``, in ``roots``, or ``latest`` against ``seen``) made the verdict
depend on which one was read first."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from straits.errors import InputError
from straits.store import witness_state
from straits.store.note import Checkpoint, Signer, sign_checkpoint
from straits.store.witness import Offered, Outcome, Witness
from test_witness_compaction import ORIGIN, A, B, Log


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def offer(path: Path, signer: Signer, log: Log, size: int, proofs: bool = True) -> Outcome:
    w = Witness(path)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, log.root(size)), signer)
    out = w.offer(Offered(note, f"{size}"), [signer.verifier], log.proof if proofs else None)
    w.save()
    return out


@pytest.fixture
def good(tmp_path: Path, signer: Signer) -> dict[str, Any]:
    """A state the witness wrote: checkpoints 1, 5 and 10 of log A seen, 10 the latest."""
    path = tmp_path / "good.json"
    for size in (1, 5, 10):
        assert offer(path, signer, A, size).ok
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda log: log.__setitem__(key, value)


def _dup_seen(log: dict[str, Any]) -> None:
    log["seen"].insert(2, dict(log["seen"][1], root=B.root(5).hex()))


def _latest_root(log: dict[str, Any]) -> None:
    log["latest"] = dict(log["latest"], root=B.root(10).hex())


# (what is edited, the field the refusal names)
HOSTILE: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("a root above the latest size", _set("roots", {"12": B.root(12).hex()}), ".roots"),
    ("a root at the latest size", _set("roots", {"10": B.root(10).hex()}), ".roots"),
    ("a root key with a leading zero", _set("roots", {"07": A.root(7).hex()}), ".roots"),
    ("a root key of 5,000 digits", _set("roots", {"9" * 5000: A.root(7).hex()}), ".roots"),
    ("a root that contradicts a note seen", _set("roots", {"5": B.root(5).hex()}), ".roots"),
    ("forgotten_upto beyond the latest size", _set("forgotten_upto", 11), ".forgotten_upto"),
    ("two roots for one size in seen", _dup_seen, ".seen"),
    ("a latest root no note seen holds", _latest_root, ""),
]


@pytest.mark.parametrize(("what", "edit", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_state_the_witness_never_writes_is_refused(
    tmp_path: Path,
    signer: Signer,
    good: dict[str, Any],
    what: str,
    edit: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    state = copy.deepcopy(good)
    edit(state["logs"][ORIGIN])
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(state))
    with pytest.raises(InputError) as exc:
        Witness(path)
    assert exc.value.path == witness_state.OPTION
    assert exc.value.exit_code == 2
    assert f"logs[{ORIGIN!r}]{field}" in exc.value.detail


# what the witness writes stays readable: forgotten_upto at the latest size (an older
# version's compacted state, upgraded), roots below it, and a state with no checkpoint yet
ACCEPTED: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("forgotten_upto at the latest size", _set("forgotten_upto", 10)),
    ("roots below the latest size", _set("roots", {"7": A.root(7).hex(), "0": "00" * 32})),
    ("a root that agrees with a note seen", _set("roots", {"5": A.root(5).hex()})),
]


@pytest.mark.parametrize(("what", "edit"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_a_state_the_witness_writes_is_read(
    tmp_path: Path,
    signer: Signer,
    good: dict[str, Any],
    what: str,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    state = copy.deepcopy(good)
    edit(state["logs"][ORIGIN])
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    assert offer(path, signer, A, 12).status == "accepted"
    fork = offer(path, signer, B, 7).status  # never ok: a fork below the latest
    assert fork in ("split-view", "inconsistent", "unprovable-after-compaction")


@pytest.mark.parametrize("kind", ["directory", "symlink", "device"])
def test_a_state_that_is_no_file_is_refused_without_offering_stdout(
    tmp_path: Path, kind: str
) -> None:
    """`--state DIR` (a link, a device) is exit 2 naming --state; the refusal offered "or '-'
    for standard output", which the witness then refuses too (docs51)."""
    from test_cli import straits

    target = {"directory": tmp_path, "symlink": tmp_path / "link", "device": Path("/dev/null")}
    if kind == "symlink":
        (tmp_path / "link").symlink_to(tmp_path / "elsewhere.json")
    note = tmp_path / "cp"
    note.write_text("not a checkpoint\n", encoding="utf-8")
    key = tmp_path / "k"
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 0
    p = straits(
        "ledger", "witness", "--pubkey", f"{key}.pub", "--checkpoint", str(note),
        "--state", str(target[kind]),
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "--state" in p.stderr and "Traceback" not in p.stderr
    assert "standard output" not in p.stderr
