"""The files of an export as one archive (zip or gzipped tar), byte-for-byte reproducible:
names sorted, every file dated 1980-01-01, modes 0644 (0755 for scripts), no owner names."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Mapping
from typing import Literal

ArchiveFormat = Literal["zip", "tar.gz", "tar"]
FORMATS: tuple[ArchiveFormat, ...] = ("tar.gz", "zip", "tar")
MEDIA_TYPES = {"zip": "application/zip", "tar.gz": "application/gzip", "tar": "application/x-tar"}
#: zip's earliest date; used for tar too so both archives of one export carry the same time
EPOCH = (1980, 1, 1, 0, 0, 0)
EPOCH_SECONDS = 315532800
#: the export's summary (`straits export --json`), inside every archive
MANIFEST = "straits-export.json"


def format_of(name: str) -> ArchiveFormat | None:
    """The archive format a file name asks for, or None (a directory)."""
    lower = name.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(".tar"):
        return "tar"
    return None


#: suffixes of archives and compressions Straits does not write: a name ending so is refused,
#: not taken as a directory (`-o jobs.tar.bz2` made a directory named jobs.tar.bz2, exit 0)
OTHER_ARCHIVES = (
    ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.lz",
    ".gz", ".bz2", ".xz", ".zst", ".lz", ".lz4", ".7z", ".rar", ".jar",
)  # fmt: skip


def other_archive(name: str) -> str | None:
    """The suffix of an archive or compression Straits does not write that ``name`` ends
    with, or None."""
    lower = name.lower()
    return next((s for s in OTHER_ARCHIVES if lower.endswith(s)), None)


def build(
    files: Mapping[str, str],
    fmt: ArchiveFormat,
    *,
    root: str,
    executable: tuple[str, ...] = (".sh", ".sbatch"),
) -> bytes:
    """The archive of ``files`` (relative path -> text) under the folder ``root``."""
    buf = io.BytesIO()
    names = sorted(files)
    if fmt == "zip":
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name in names:
                zinfo = zipfile.ZipInfo(f"{root}/{name}", date_time=EPOCH)
                zinfo.external_attr = (0o100755 if name.endswith(executable) else 0o100644) << 16
                zinfo.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(zinfo, files[name].encode("utf-8"))
        return buf.getvalue()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            data = files[name].encode("utf-8")
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime = len(data), EPOCH_SECONDS
            info.mode = 0o755 if name.endswith(executable) else 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    if fmt == "tar":
        return raw.getvalue()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return buf.getvalue()
