"""An export folder holds one export per target folder: the previous export's leftovers go,
two exports at once take turns, and nothing Straits did not write is touched."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from straits.errors import InputError
from straits.export.bundle import LOCK, MANIFEST, write_bundle

FIRST = {
    "slurm/johor/a.sbatch": "a",
    "slurm/ulanqab/b.sbatch": "b",
    "slurm/submit.sh": "s",
    "kubernetes/my-johor/a.yaml": "k",
}
SECOND = {"slurm/johor/a.sbatch": "a2", "slurm/submit.sh": "s2"}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, LOCK)
    }


def test_a_later_export_removes_what_the_earlier_one_wrote_under_its_targets(
    tmp_path: Path,
) -> None:
    write_bundle(tmp_path, FIRST)
    (tmp_path / "slurm" / "notes.txt").write_text("mine")
    write_bundle(tmp_path, SECOND)
    assert _files(tmp_path) == set(SECOND) | {"kubernetes/my-johor/a.yaml", "slurm/notes.txt"}
    assert not (tmp_path / "slurm" / "ulanqab").exists()  # the folder its removal emptied
    assert (tmp_path / "slurm" / "johor" / "a.sbatch").read_text() == "a2"
    listed = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert set(listed) == set(SECOND) | {"kubernetes/my-johor/a.yaml"}


@pytest.mark.parametrize(
    "manifest",
    [
        b"not json",
        b"\x00\xff" * 10,
        b'{"files": "slurm/ulanqab/b.sbatch"}',
        b"[]",
        b'{"files": [1, null, {}]}',
        b'{"files": ["../outside", "/etc/passwd"]}',
    ],
)
def test_a_foreign_or_broken_manifest_removes_nothing(tmp_path: Path, manifest: bytes) -> None:
    write_bundle(tmp_path, FIRST)
    (tmp_path / MANIFEST).write_bytes(manifest)
    outside = tmp_path.parent / "outside"
    outside.write_text("keep")
    write_bundle(tmp_path, SECOND)
    assert _files(tmp_path) >= set(FIRST)
    assert outside.read_text() == "keep"


def test_a_listed_file_behind_a_link_out_of_the_folder_is_not_removed(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.sbatch").write_text("theirs")
    write_bundle(out, {"slurm/x.sbatch": "x"})
    (out / "slurm" / "ulanqab").symlink_to(elsewhere)
    (out / MANIFEST).write_text(json.dumps({"files": ["slurm/x.sbatch", "slurm/ulanqab/b.sbatch"]}))
    write_bundle(out, {"slurm/x.sbatch": "y"})
    assert (elsewhere / "b.sbatch").read_text() == "theirs"


def _export_many(out: str, tag: str) -> None:
    files = {f"slurm/{tag}/{i}.sbatch": tag for i in range(20)} | {"slurm/submit.sh": tag}
    for _ in range(15):
        write_bundle(Path(out), files)


def test_two_exports_at_once_leave_one_of_them_not_a_mix(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_export_many, args=(str(tmp_path), tag)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    found = _files(tmp_path)
    tags = {Path(f).parts[1] for f in found if f != "slurm/submit.sh"}
    assert len(tags) == 1, found
    (tag,) = tags
    assert (tmp_path / "slurm" / "submit.sh").read_text() == tag
    assert len(found) == 21


def test_a_folder_on_the_way_that_links_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    """`slurm` in the export folder a link to another directory (planted in a shared folder
    such as /tmp/jobs): the scripts were written through it, outside the folder. Now refused,
    exit 2 naming -o, nothing written there or in the folder."""
    from straits.errors import InputError

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "slurm").symlink_to(elsewhere)
    with pytest.raises(InputError) as exc:
        write_bundle(out, FIRST)
    assert exc.value.path == "-o" and "slurm" in str(exc.value)
    assert list(elsewhere.iterdir()) == []
    assert _files(out) == set()
    # a link that stays inside the folder is a folder like any other
    (out / "slurm").unlink()
    (out / "real").mkdir()
    (out / "slurm").symlink_to(out / "real")
    write_bundle(out, FIRST)
    assert (out / "real" / "johor" / "a.sbatch").read_text() == "a"


KILLED_MID_WRITE = """
import os, sys
from pathlib import Path
from straits.export.bundle import write_bundle
real, calls = Path.write_text, []
def write_then_die(self, *args, **kwargs):
    calls.append(self)
    if len(calls) == 3:
        os._exit(9)  # as a SIGKILL: no finally, no cleanup
    return real(self, *args, **kwargs)
Path.write_text = write_then_die
write_bundle(Path(sys.argv[1]), {f"kubernetes/c/s{i}.yaml": "kind: Job\\n" for i in range(5)})
"""


def test_an_export_killed_while_staging_leaves_nothing_a_tool_would_apply(
    tmp_path: Path,
) -> None:
    """A killed export left ``.straits-export-XXXX/kubernetes/c/s0.yaml`` in the folder: a
    half-written copy of a plan that ``kubectl apply -R -f DIR`` applied, and that no later
    export removed."""
    import os
    import subprocess
    import sys

    out = tmp_path / "jobs"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(out)], env=env, timeout=60)
    assert p.returncode == 9
    picked = [f for f in out.rglob("*") if f.suffix in (".yaml", ".yml", ".json", ".sbatch")]
    assert picked == []
    write_bundle(out, {"kubernetes/c/s0.yaml": "kind: Job\n"})
    assert not list(out.glob(".straits-export-*"))
    assert (out / "kubernetes" / "c" / "s0.yaml").read_text() == "kind: Job\n"


def test_ctrl_c_while_files_move_into_place_waits_until_all_are_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C between two moves left the folder holding part of the new export beside part
    of the last one (a new apply.sh naming the old manifests); it now comes once every file
    is in place and the manifest says so. Another thread is alive meanwhile, as a progress
    spinner or a database watchdog is in the command: the kernel may give the signal to it
    (blocking it in the writing thread alone held nothing back, and failed in the full
    suite)."""
    import os
    import signal
    import threading

    done = threading.Event()
    others = [threading.Thread(target=done.wait, daemon=True) for _ in range(4)]
    for t in others:
        t.start()

    out = tmp_path / "jobs"
    write_bundle(out, {f"kubernetes/c/s{i}.yaml": "old\n" for i in range(4)})
    real, moved = os.replace, []

    def replace_then_interrupt(src: object, dst: object) -> None:
        real(src, dst)  # type: ignore[arg-type]
        moved.append(dst)
        if len(moved) == 2:  # after the manifest and one file
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(out, {f"kubernetes/c/s{i}.yaml": "new\n" for i in range(4)})
    done.set()
    texts = {p.read_text() for p in (out / "kubernetes" / "c").iterdir()}
    assert texts == {"new\n"}


@pytest.mark.parametrize("clash", ["folder", "manifest"])
def test_a_refused_export_leaves_no_folder_it_made(tmp_path: Path, clash: str) -> None:
    """A refused export leaves the folder as it was: it left every target folder it had made
    before the refusal (karmada/, kubernetes/<cluster>/, slurm/ulanqab/) behind, empty."""
    write_bundle(tmp_path, SECOND)
    if clash == "folder":  # a folder where a file goes
        (tmp_path / "slurm" / "ulanqab" / "b.sbatch").mkdir(parents=True)
    else:  # a folder where the manifest goes
        (tmp_path / MANIFEST).unlink()
        (tmp_path / MANIFEST).mkdir()
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises((OSError, InputError)):
        write_bundle(tmp_path, {"karmada/x.yaml": "x", "kubernetes/c/y.yaml": "y", **FIRST})
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_a_target_that_gets_nothing_this_time_keeps_nothing_of_the_last_export(
    tmp_path: Path,
) -> None:
    write_bundle(tmp_path, {**FIRST, "skypilot/launch.sh": "old plan"})
    write_bundle(tmp_path, SECOND, targets=["slurm", "skypilot"])
    assert _files(tmp_path) == set(SECOND) | {"kubernetes/my-johor/a.yaml"}
    assert not (tmp_path / "skypilot").exists()


def test_export_to_all_with_a_target_of_no_jobs_clears_that_targets_folder(
    tmp_path: Path,
) -> None:
    """``--to all`` of a plan no site of which is mapped to SkyPilot (0 jobs there) into a
    folder holding an earlier plan's export left that plan's ``skypilot/launch.sh`` beside the
    new plan's other targets."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for site in doc["sites"]:
        site["targets"].pop("skypilot", None)
    unmapped = tmp_path / "no-skypilot.yaml"
    unmapped.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "jobs"
    for scenario in (EXAMPLE, unmapped):
        args = ["export", str(scenario), "--to", "all", "--run", "true", "-o", str(out)]
        p = subprocess.run(
            [sys.executable, "-m", "straits", "-q", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
    assert not (out / "skypilot").exists()
    assert (out / "slurm").is_dir()
