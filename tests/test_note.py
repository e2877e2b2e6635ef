"""Signed notes and checkpoints: byte for byte the published examples of the Go checksum
database's note package and of c2sp.org/signed-note; hostile notes and keys are refused."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.store.note import (
    EM_DASH,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
)

# golang.org/x/mod/sumdb/note, the package documentation's example
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    f"{EM_DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
ENOCH_SIG = (
    f"{EM_DASH} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ"
    "5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
# c2sp.org/signed-note's example verifier key and note
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    f"This is an example message.\n\n{EM_DASH} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1T"
    "nagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_signing_reproduces_the_go_example_byte_for_byte() -> None:
    signer = Signer.parse(GO_SKEY)
    assert signer.verifier.vkey == GO_VKEY
    assert signer.skey == GO_SKEY
    assert signer.sign(GO_TEXT) == GO_TEXT + "\n" + GO_SIG


def test_published_notes_open_with_their_keys() -> None:
    note, key = open_note(GO_TEXT + "\n" + GO_SIG + ENOCH_SIG, [Verifier.parse(ENOCH_VKEY)])
    assert (note.text, key.name) == (GO_TEXT, "EnochRoot")
    note, key = open_note(SPEC_NOTE, [Verifier.parse(SPEC_VKEY)])
    assert note.text == "This is an example message.\n" and key.id == 0x530D903A


def test_unknown_keys_are_ignored_and_a_bad_known_signature_rejects() -> None:
    peter, enoch = Verifier.parse(GO_VKEY), Verifier.parse(ENOCH_VKEY)
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(GO_TEXT + "\n" + GO_SIG, [enoch])
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_TEXT.replace("problem", "answer", 1) + "\n" + GO_SIG, [peter])


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY[:-1],
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "",
        "+++",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


@pytest.mark.parametrize(
    "note",
    [
        "no blank line\n" + GO_SIG,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_SIG[:-1],
        GO_TEXT + "\n" + GO_SIG.replace(EM_DASH, "--"),
        GO_TEXT + "\n\x01" + GO_SIG,
        GO_TEXT + "\n" + GO_SIG.replace("x08go", "x08g!"),
        "\n\n" + GO_SIG * 101,
        GO_TEXT + "\n" + f"{EM_DASH} PeterNeumann AAAA\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note, [Verifier.parse(GO_VKEY)])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(blob: bytes) -> None:
    with contextlib.suppress(NoteError):
        parse_note(blob)


def test_checkpoints_round_trip_and_bind_the_origin_to_the_key() -> None:
    signer = Signer.generate("straits.test/log")
    cp = Checkpoint("straits.test/log", 20852163, bytes(range(32)))
    note = sign_checkpoint(cp, signer)
    assert note.startswith(
        "straits.test/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
        "Hh8=\n\n" + EM_DASH + " straits.test/log "
    )
    opened = open_checkpoint(note, [signer.verifier])
    assert opened.checkpoint == cp and opened.key == signer.verifier
    other = Signer.generate("straits.test/other")
    with pytest.raises(NoteError, match="origin"):
        sign_checkpoint(cp, other)


@pytest.mark.parametrize(
    "text",
    [
        "log\n012\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "log\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "log\n12\nAAEC\n",
        "log\n12\n",
        "log\n\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "log\n\uff11\uff12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    ],
)  # fullwidth 12
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse_text(text)
