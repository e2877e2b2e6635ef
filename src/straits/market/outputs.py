"""Writing a simulation's months as JSON, CSV or Parquet, and the difference between regimes.

Tables are one row per month; nested values become columns named ``key.COUNTRY``
(``offshore_chip_hours.MY``). Parquet files carry the run's seed, market name, digest and
``--set`` values in their schema metadata, and its regime in a column (``regime``), as CSV
does. Every file is written through a temporary file and renamed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from straits import jsonout
from straits.market.loading import MarketError
from straits.market.result import MarketResult

FORMATS = (".json", ".csv", ".parquet", ".html")


def flat_rows(result: MarketResult) -> list[dict[str, Any]]:
    rows = []
    for rec in result.months:
        row: dict[str, Any] = {"regime": result.regime}
        for key, value in rec.to_json().items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    row[f"{key}.{sub}"] = v
            else:
                row[key] = value
        rows.append(row)
    return rows


def difference(a: MarketResult, b: MarketResult) -> list[dict[str, Any]]:
    """Per month, ``a`` minus ``b`` for the home firms' compute (chip-hours and h100e-hours)."""
    out = []
    for ra, rb in zip(a.months, b.months, strict=True):
        out.append(
            {
                "month": ra.month,
                "offshore_chip_hours": {
                    c: round(ra.offshore_chip_hours[c] - rb.offshore_chip_hours[c])
                    for c in ra.offshore_chip_hours
                },
                "home_chip_hours": round(ra.home_chip_hours - rb.home_chip_hours),
                "domestic_accelerator_chip_hours": round(
                    ra.domestic_accelerator_chip_hours - rb.domestic_accelerator_chip_hours
                ),
                "unmet_h100e_hours": round(ra.unmet_h100e_hours - rb.unmet_h100e_hours),
            }
        )
    return out


def document(
    result: MarketResult,
    other: MarketResult | None = None,
    sets: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The JSON document: the run, the parameters set on the command line (``--set``: the
    document said nothing of them), and (with ``other``) the difference to the other
    regime."""
    doc = result.to_json()
    doc["set"] = dict(sets or {})
    if other is not None:
        doc["difference"] = {
            "versus": other.regime,
            "note": f"{result.regime} minus {other.regime}",
            "months": difference(result, other),
            **({"notes": beside} if (beside := result.notes_beside(other)) else {}),
        }
    return doc


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    cols = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """``data`` in a locked temporary file beside ``path``, fsynced and renamed over it
    (``straits.tempfiles``; a temporary a killed writer left is removed first). A report is
    for reading: the umask's mode, not 0600."""
    from straits import tempfiles
    from straits.fileio import write_all
    from straits.holding import signals_held

    path.parent.mkdir(parents=True, exist_ok=True)
    tempfiles.clear_stale(path)
    with signals_held():  # SIGTERM or SIGHUP mid-write left the temporary file for good
        tmp, fd = tempfiles.create(path, 0o666)
        try:
            write_all(fd, data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)


def parquet_bytes(rows: list[dict[str, Any]], metadata: dict[str, str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    # a column of nothing but nulls (a country's price in a run where it never has capacity)
    # is a column of numbers with no value, not of pyarrow's type `null`
    schema = pa.schema(
        [f.with_type(pa.float64()) if pa.types.is_null(f.type) else f for f in table.schema]
    )
    table = table.cast(schema)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in metadata.items()}}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def check_target(path: Path) -> None:
    """Refuse an output path before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise MarketError(
            f"cannot write {path.name or str(path)!r}",
            path="-o",
            expected="a file ending in " + ", ".join(FORMATS),
        )
    from straits.fileio import output_path

    # a directory, a link, a FIFO or a device, a name too long for the file system: refused
    # before the work (Path.exists() raised ENAMETOOLONG as a traceback)
    output_path(path, option="-o")


def write(
    result: MarketResult,
    path: Path,
    other: MarketResult | None = None,
    digest: str = "",
    sets: Mapping[str, float] | None = None,
) -> None:
    """Write ``result`` to ``path`` in the format its suffix names."""
    check_target(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        # the strict encoder of --json: a NaN is an internal error (exit 1), never written
        # (json.dumps wrote `NaN`, which no JSON reader takes)
        _write(path, (jsonout.dumps(document(result, other, sets)) + "\n").encode())
    elif suffix == ".csv":
        rows = _finite(flat_rows(result) + (flat_rows(other) if other is not None else []))
        _write(path, csv_text(rows).encode())
    elif suffix == ".parquet":
        rows = _finite(flat_rows(result) + (flat_rows(other) if other is not None else []))
        meta = {
            "straits.market": result.market.name,
            "straits.seed": str(result.seed),
            "straits.digest": digest,
            "straits.set": jsonout.dumps(dict(sets or {}), indent=None),
        }
        _write(path, parquet_bytes(rows, meta))
    else:
        from straits.market.report import market_page

        _write(path, market_page(result, other).render().encode())


def _finite(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows``, once no NaN or infinity is among them (as ``--json`` checks its output)."""
    where = jsonout.first_non_finite(rows)
    if where is not None:
        raise jsonout.NonFiniteOutput(
            f"internal error: a non-finite number at {where} in the output "
            "(please report it with the input)"
        )
    return rows


def _write(path: Path, data: bytes) -> None:
    """Replace the regular file ``path`` atomically (``fileio.write_output``: links, FIFOs and
    devices are refused, and an unwritable place is an input error naming ``-o``)."""
    from straits.fileio import write_output

    write_output(path, data, option="-o")
