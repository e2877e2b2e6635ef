"""Several verifier keys at once (atk78 D5): ``STRAITS_LEDGER_PUBKEY`` took one key, so a server
after two rotations could not trust the log's older checkpoints, which the CLI's repeatable
``--pubkey`` could. Keys are separated by whitespace, commas or newlines, or are the lines of
a ``.pub`` file."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.errors import InputError
from straits.store import Store, checkpoints
from straits.store.keys import PUBKEY_ENV, configured, load_verifiers
from straits.store.note import Signer
from test_ledger_cli import straits
from test_ledger_log import fill

ORIGIN = "log.example/l"


@pytest.fixture(scope="module")
def signers() -> list[Signer]:
    return [Signer.generate(ORIGIN) for _ in range(3)]


@pytest.mark.parametrize("sep", [" ", ",", "\n", ", ", " ,\n "])
def test_the_variable_takes_several_keys(
    signers: list[Signer], sep: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBKEY_ENV, sep.join(s.verifier.vkey for s in signers) + "\n")
    assert configured().verifiers == tuple(s.verifier for s in signers)


def test_a_pub_file_of_several_keys(signers: list[Signer], tmp_path: Path) -> None:
    pub = tmp_path / "old keys.pub"  # a space in its name: still one file
    pub.write_text(
        "# the log's keys, oldest first\n\n" + "\n".join(s.verifier.vkey for s in signers)
    )
    assert load_verifiers(str(pub)) == [s.verifier for s in signers]
    one = tmp_path / "k.pub"
    one.write_text(signers[0].verifier.vkey + "\n")
    both = f"{one},{signers[1].verifier.vkey}"
    assert load_verifiers(both) == [signers[0].verifier, signers[1].verifier]
    assert configured(None, [str(pub), str(one)]).verifiers == tuple(s.verifier for s in signers)


def test_a_signing_key_among_them_is_refused(signers: list[Signer], tmp_path: Path) -> None:
    text = f"{signers[0].verifier.vkey} {signers[1].skey}"
    with pytest.raises(InputError, match="PRIVATE signing key"):
        load_verifiers(text, PUBKEY_ENV)
    pub = tmp_path / "k.pub"
    pub.write_text(f"{signers[0].verifier.vkey}\n{signers[1].skey}\n")
    with pytest.raises(InputError, match="PRIVATE signing key"):
        load_verifiers(str(pub))
    with pytest.raises(InputError):
        load_verifiers(f"{signers[0].verifier.vkey},not-a-key")


def test_a_server_after_two_rotations_trusts_the_older_checkpoints(
    db_url: str, signers: list[Signer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = signers
    store = Store(db_url)
    for i, s in enumerate(signers):
        fill(store, 1)
        checkpoints.issue(store, s, tuple(x.verifier for x in signers[:i]), tmp_path / f"r{i}")
    key = tmp_path / "c.key"
    key.write_text(c.skey + "\n")
    key.chmod(0o600)
    monkeypatch.setenv("STRAITS_LEDGER_KEY", str(key))
    monkeypatch.setenv(PUBKEY_ENV, b.verifier.vkey)
    assert straits("ledger", "verify", "--db", db_url).returncode == 1  # A's is not trusted
    monkeypatch.setenv(PUBKEY_ENV, f"{b.verifier.vkey} {a.verifier.vkey}")
    r = straits("ledger", "verify", "--db", db_url)
    assert r.returncode == 0, r.stdout + r.stderr
