"""Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint), Ed25519.

A signed note is a text ending in a newline, a blank line, and signature lines
``— <key name> base64(key id || signature)``; the key id is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || public key)``. Keys are written as the Go checksum
database writes them (golang.org/x/mod/sumdb/note): the verifier key
``<name>+<key id hex>+base64(0x01 || public key)`` and the signer key
``PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || seed)``, so a checkpoint Straits signs opens
with Go's ``note.Open`` and the other way round (the tests use that package's published
example key and note).

A checkpoint's text is the log's origin, its size in decimal and the base64 RFC 6962 root hash,
one per line. Straits signs with a key whose name is the origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 1
EM_DASH = "\u2014"
SIG_PREFIX = EM_DASH + " "
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
MAX_NAME = 200
"""the longest key name (the log's origin) Straits makes: ``ledger_checkpoints.origin``"""
MAX_SIZE = (1 << 63) - 1
"""the largest checkpoint size (Go's tlog parses it as an int64; a 64-bit column holds it)"""


class NoteError(ValueError):
    """A key, note or checkpoint is malformed, or its signature does not verify."""


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_signer_name(name: str) -> None:
    """Key files are ASCII; the name is each checkpoint's first line and is stored in a
    column of 200 characters: a longer one signed on SQLite and was a traceback on PostgreSQL
    (``keygen``'s names since atk29; a key file written by another tool since pg51)."""
    if not (name.isascii() and name.isprintable()) or len(name) > MAX_NAME:
        raise NoteError(
            f"{name[:60]!r} cannot name a key: it must be printable ASCII of at most "
            f"{MAX_NAME} characters (a URL without its scheme: example.com/ledger)"
        )


def key_id(name: str, public: bytes) -> int:
    """The signed-note key id of an Ed25519 public key (32 bytes) under ``name``."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()
    return int(struct.unpack(">I", digest[:4])[0])


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError("not valid base64") from None


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signatures: its name, key id and Ed25519 key."""

    name: str
    id: int
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """From a verifier key ``<name>+<id hex>+<base64(0x01 || key)>``."""
        name, _, rest = vkey.strip().partition("+")
        hex_id, _, b64 = rest.partition("+")
        if not _valid_name(name) or len(hex_id) != 8 or not b64:
            raise NoteError("not a verifier key (expected NAME+KEYID+BASE64)")
        try:
            kid = int(hex_id, 16)
        except ValueError:
            raise NoteError("the key id of the verifier key is not hexadecimal") from None
        raw = _b64decode(b64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        if key_id(name, raw[1:]) != kid:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, kid, raw[1:])

    @property
    def vkey(self) -> str:
        enc = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.id:08x}+{enc}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes; its verifier is what others are given."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not _valid_name(name):
            raise NoteError(
                f"{name!r} cannot name a key: it must be non-empty, without spaces or '+'"
            )
        _check_signer_name(name)
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """From a signer key ``PRIVATE+KEY+<name>+<id hex>+<base64(0x01 || seed)>``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("not a signer key")
        _, _, name, hex_id, b64 = parts
        if not _valid_name(name) or len(hex_id) != 8:
            raise NoteError("not a signer key")
        _check_signer_name(name)  # a key file another tool wrote (pg51)
        raw = _b64decode(b64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 key (type 0x01, 32 bytes)")
        signer = cls(name, raw[1:])
        try:
            if signer.verifier.id != int(hex_id, 16):
                raise NoteError("the signer key's id does not match its name and key")
        except ValueError:
            raise NoteError("the key id of the signer key is not hexadecimal") from None
        return signer

    @cached_property
    def verifier(self) -> Verifier:
        public = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return Verifier(self.name, key_id(self.name, public), public)

    @property
    def skey(self) -> str:
        enc = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id:08x}+{enc}"

    def sign(self, text: str) -> str:
        """``text`` as a signed note with this key's signature."""
        _check_text(text)
        sig = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode("utf-8"))
        blob = base64.b64encode(struct.pack(">I", self.verifier.id) + sig).decode()
        return f"{text}\n{SIG_PREFIX}{self.name} {blob}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note must not contain control characters other than newline")


@dataclass(frozen=True)
class Signature:
    name: str
    id: int
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]


def parse_note(message: str | bytes) -> Note:
    """Split a signed note into its text and signature lines (nothing verified yet)."""
    if isinstance(message, bytes):
        if len(message) > MAX_NOTE_BYTES:
            raise NoteError(f"a note of {len(message):,} bytes; at most {MAX_NOTE_BYTES:,}")
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a note must be UTF-8") from None
    if len(message) > MAX_NOTE_BYTES:
        raise NoteError(f"a note of {len(message):,} characters; at most {MAX_NOTE_BYTES:,}")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as JSON's "\ud800" reads
        raise NoteError("a note must be UTF-8 text (it holds a lone surrogate)") from None
    if any(ord(c) < 0x20 and c != "\n" for c in message):
        raise NoteError("a note must not contain control characters other than newline")
    cut = message.rfind("\n\n")
    if cut < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    text, sig_block = message[: cut + 1], message[cut + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("not a signed note: the last signature line must end with a newline")
    sigs = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"not a signature line: {line[:60]!r}")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not b64 or " " in b64:
            raise NoteError(f"malformed signature line: {line[:60]!r}")
        raw = _b64decode(b64)
        if len(raw) < 5:
            raise NoteError(f"signature of {name} is too short")
        sigs.append(Signature(name, int(struct.unpack(">I", raw[:4])[0]), raw[4:]))
    if not sigs:
        raise NoteError("not a signed note: no signature lines")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError(f"{len(sigs)} signatures; at most {MAX_SIGNATURES}")
    return Note(text, tuple(sigs))


def open_note(message: str | bytes, verifiers: list[Verifier]) -> tuple[Note, Verifier]:
    """The note and the known key that signed it. Signatures by unknown keys are ignored; a
    signature by a known key that does not verify rejects the note, as does a note no known key
    signed."""
    note = parse_note(message)
    known = {(v.name, v.id): v for v in verifiers}
    good = None
    for s in note.signatures:
        v = known.get((s.name, s.id))
        if v is None:
            continue
        if not v.verify(note.text.encode("utf-8"), s.signature):
            raise NoteError(
                f"the signature of {v.name}+{v.id:08x} does not verify: the note "
                "was altered or forged"
            )
        good = good or v
    if good is None:
        names = ", ".join(f"{s.name}+{s.id:08x}" for s in note.signatures)
        expected = ", ".join(f"{v.name}+{v.id:08x}" for v in verifiers) or "none"
        raise NoteError(f"no signature by a trusted key (signed by {names}; trusted: {expected})")
    return note, good


# --- checkpoints ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the RFC 6962 root hash."""

    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not x for x in lines[:-1]):
            raise NoteError(
                "a checkpoint's text is three or more non-empty lines: origin, size, root hash"
            )
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise NoteError(
                f"checkpoint size {size_text[:30]!r} is not a decimal number without leading zeros"
            )
        if len(size_text) > len(str(MAX_SIZE)) or int(size_text) > MAX_SIZE:
            raise NoteError(
                f"checkpoint size {size_text[:30]!r}... is over {MAX_SIZE} (2^63 - 1, the "
                "largest log a database holds)"
            )
        root = _b64decode(root_text)
        if len(root) != 32:
            raise NoteError(f"checkpoint root hash has {len(root)} bytes; expected 32")
        return cls(origin, int(size_text), root)


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    """the whole signed note"""
    key: Verifier | None
    """the trusted key whose signature verified, or None when none was checked"""


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    if cp.origin != signer.name:
        raise NoteError(f"the key is named {signer.name!r} but the log's origin is {cp.origin!r}")
    return signer.sign(cp.text)


def open_checkpoint(message: str | bytes, verifiers: list[Verifier] | None) -> SignedCheckpoint:
    """Parse a signed checkpoint; with ``verifiers``, only one a trusted key signed (whose
    name is the checkpoint's origin). ``None`` parses without checking any signature."""
    if verifiers is None:
        note = parse_note(message)
        return SignedCheckpoint(Checkpoint.parse_text(note.text), _as_text(message), None)
    note, key = open_note(message, verifiers)
    cp = Checkpoint.parse_text(note.text)
    own = [v for v in verifiers if v.name == cp.origin]
    if cp.origin != key.name and own:  # co-signed: the first trusted signature was another's
        note, key = open_note(message, own)
    if cp.origin != key.name:
        raise NoteError(f"the checkpoint is of log {cp.origin!r} but signed by key {key.name!r}")
    return SignedCheckpoint(cp, _as_text(message), key)


def _as_text(message: str | bytes) -> str:
    return message.decode("utf-8") if isinstance(message, bytes) else message
