"""What each exported stage runs: ``--run`` per stage or stage kind, the scenario's
``command``, a plain ``--run`` for the rest, and otherwise a command that fails saying none
was given.

``--run`` takes ``CMD`` (every stage without a command of its own) or ``KEY=CMD`` where KEY is a
stage kind (``pretrain``, ``finetune``, ``serve``), a stage id, or ``workload/stage``. The most
specific wins: ``workload/stage``, then the stage id, then the kind, then the stage's own
``command`` in the scenario, then the plain ``--run``. A ``KEY=`` that names nothing in the
scenario is an error when it cannot be a shell assignment (``fine-tune=...``) or looks like a
misspelt key (``pretrian=...``); ``NCCL_DEBUG=INFO torchrun ...`` stays a plain command.
A kind that is also the id of a stage of another kind (a fine-tune with id ``serve``) is
refused: ``serve=`` gave the fine-tune the serving command; ``workload/stage=`` names one stage
without doubt.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from straits.errors import InputError
from straits.model.scenario import Scenario, Stage
from straits.model.types import StageKind

KINDS: tuple[str, ...] = StageKind.__args__  # type: ignore[attr-defined]
_KEYED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?)=(.*)", re.S)
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_COMMAND = 16384


def missing(workload: str, stage: str) -> str:
    """The command of a stage nobody gave one: it fails, saying so."""
    msg = (
        f"straits: no command was given for stage {workload}/{stage} "
        f"(straits export --run {stage}=CMD, or `command` in the scenario's stage)"
    )
    return f"echo {shlex.quote(msg)} >&2; exit 1"


@dataclass(frozen=True)
class Commands:
    default: str | None = None
    by_kind: dict[str, str] = field(default_factory=dict)
    by_stage: dict[str, str] = field(default_factory=dict)
    by_pair: dict[tuple[str, str], str] = field(default_factory=dict)

    def resolve(self, workload: str, stage: Stage) -> tuple[str, str]:
        """(command, where it came from) for ``stage`` of ``workload``."""
        for cmd, source in (
            (self.by_pair.get((workload, stage.id)), f"--run {workload}/{stage.id}="),
            (self.by_stage.get(stage.id), f"--run {stage.id}="),
            (self.by_kind.get(stage.kind), f"--run {stage.kind}="),
            (stage.command, "scenario"),
            (self.default, "--run"),
        ):
            if cmd is not None:
                return cmd, source
        return missing(workload, stage.id), "none"


def parse(values: Sequence[str] | None, sc: Scenario) -> Commands:
    """``--run`` values as :class:`Commands`, checked against the scenario's stages."""
    out = Commands()
    stage_ids = {s.id for w in sc.workloads for s in w.stages}
    pairs = {f"{w.id}/{s.id}": (w.id, s.id) for w in sc.workloads for s in w.stages}
    known = sorted(set(KINDS) | stage_ids | set(pairs))
    seen: set[str] = set()
    default_set = False
    for i, value in enumerate(values or ()):
        where = f"--run[{i}]"
        if len(value) > MAX_COMMAND:
            raise InputError(
                f"a command of {len(value):,} characters",
                path=where,
                expected=f"at most {MAX_COMMAND:,}",
            )
        if "\0" in value:
            raise InputError("a command with a NUL byte", path=where, expected="shell command text")
        m = _KEYED.fullmatch(value.lstrip())  # ' pretrain=./x' is the key, not a command
        key = m.group(1) if m else None
        if key is not None and m is not None and key in known:
            cmd = m.group(2)
            if not cmd.strip():
                raise InputError(f"an empty command for {key!r}", path=where, expected=f"{key}=CMD")
            if key in seen:
                raise InputError(
                    f"{key!r} given twice", path=where, expected="each stage, stage id or kind once"
                )
            seen.add(key)
            if key in KINDS and key in stage_ids:
                _unambiguous(key, sc, where)
            if key in pairs:
                out.by_pair[pairs[key]] = cmd
            if key in stage_ids:
                out.by_stage[key] = cmd
            if key in KINDS:
                out.by_kind[key] = cmd
            continue
        if key is not None and _meant_as_key(value.split(None, 1)[0], known, sc):
            near = _close(key, known)
            raise InputError(
                f"{key!r} is no stage kind, stage id or workload/stage of scenario {sc.name}"
                + (f" (did you mean {near[0]!r}?)" if near else ""),
                path=where,
                expected="KEY=CMD with KEY one of "
                + ", ".join(known[:20])
                + (" ..." if len(known) > 20 else "")
                + "; a command that starts with an assignment: env VAR=... CMD",
            )
        if not value.strip():
            raise InputError("an empty command", path=where, expected="a shell command")
        _no_stray_key(value, known, sc, where)
        if default_set:
            raise InputError(
                "two commands for every stage",
                path=where,
                expected="one plain --run CMD; others as KEY=CMD",
            )
        default_set = True
        out = Commands(value, out.by_kind, out.by_stage, out.by_pair)
    return out


#: a shell assignment word (``A=1``, ``PATH+=:/x``, ``arr[0]=x``)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?\+?=.*", re.S)


def _meant_as_key(first: str, known: Sequence[str], sc: Scenario) -> bool:
    """Whether ``first``, a command's first word ``X=...``, was meant as a key: X without
    leading ``/ - . ~`` and a trailing ``/`` is empty, a key, a workload id, a workload's path
    (``chat-72b/nope``) or close to a key (``pretrian``); or the word is neither a path, a
    shell assignment (``A=1``, ``PATH+=:/x``, ``arr[0]=x``) nor quoted (``fine-tune=x``). A
    ``key=value`` folder of a program's path (``./sweeps/lr=0.1/train.sh``,
    ``outputs/lr=0.1,bs=32/train.sh``) is a command (a review)."""
    head = first.split("=", 1)[0]
    bare = head.lstrip("/-.~").rstrip("/")
    workloads = {w.id for w in sc.workloads}
    if not bare or bare in known or bare in workloads or _close(bare, known):
        return True
    if "/" in bare:
        return bare.split("/", 1)[0] in workloads
    if any(ch in head for ch in "'\"\\$`"):  # quoted or expanded: the shell's word
        return False
    return not _ASSIGNMENT.fullmatch(first)


def _no_stray_key(value: str, known: Sequence[str], sc: Scenario, where: str) -> None:
    """A plain command that was meant as a key, or that runs nothing, refused: it became
    every stage's command (a fresh-eye attack). Meant as a key: a first word ``X=...`` whose
    X, without leading ``/ - . ~`` and a trailing ``/``, is empty, a key, a workload id or
    close to a key (``/pretrain=``, ``chat-72b/=``, ``=cmd``), or a key and a space before
    ``=`` (``sft =torchrun``). A ``key=value`` folder in a program's path
    (``./sweeps/lr=0.1/train.sh``) is a command (a review). Runs nothing: only assignments
    (``NCCL_DEBUG=INFO``; ``bash -c`` of it succeeds, so the stage would be done)."""
    try:
        words = shlex.split(value)
    except ValueError:  # an unbalanced quote: the shell's to refuse
        words = []
    if words and all(_ASSIGNMENT.fullmatch(w) for w in words):
        raise InputError(
            "a command of variable assignments only, which would run nothing and succeed",
            path=where,
            expected="a command after the assignments (NCCL_DEBUG=INFO torchrun ...)",
        )
    first = value.split(None, 1)[0]
    spaced = re.match(r"\s*(\S+)\s+=", value)
    bad = None
    if "=" in first and _meant_as_key(first, known, sc):
        bad = first.split("=", 1)[0]
    if bad is None and spaced and (spaced[1] in known or _close(spaced[1], known)):
        bad = spaced[1] + " "
    if bad is None:
        return
    raise InputError(
        f"{bad!r} before '=' is no stage kind, stage id or workload/stage of scenario {sc.name}",
        path=where,
        expected="KEY=CMD with KEY one of "
        + ", ".join(known[:20])
        + (" ..." if len(known) > 20 else "")
        + " (no space before '='); a plain command's first word no KEY=",
    )


def _unambiguous(key: str, sc: Scenario, where: str) -> None:
    """Refuse ``key``, a stage kind, when it is also the id of a stage of another kind: the
    kind's stages and that stage would both get its command (a fine-tune named ``serve`` was
    given the serving command). A stage of that very kind named so is no doubt: the kind's
    command is its command too."""
    odd = [
        (f"{w.id}/{s.id}", s.kind)
        for w in sc.workloads
        for s in w.stages
        if s.id == key and s.kind != key
    ]
    if not odd:
        return
    of_kind = [f"{w.id}/{s.id}" for w in sc.workloads for s in w.stages if s.kind == key]
    shown = ", ".join(f"{k}=CMD" for k in of_kind[:5]) + (" ..." if len(of_kind) > 5 else "")
    raise InputError(
        f"{key!r} is both a stage kind and the id of stage "
        + ", ".join(f"{pair} ({kind})" for pair, kind in odd)
        + f": --run {key}=CMD would give that stage the command meant for the {key} stages",
        path=where,
        expected=f"WORKLOAD/STAGE=CMD for each: {odd[0][0]}=CMD for the stage"
        + (f"; {shown} for the {key} stages" if of_kind else "")
        + " (or rename the stage)",
    )


def _close(key: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
