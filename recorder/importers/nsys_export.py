"""Reading an Nsight Systems SQLite export: validation, tables, columns and StringIds.

`NsysExport` opens the file read-only and turns every problem (missing, not SQLite, truncated,
no CUPTI tables) into one `RevatiImportError` line naming the file. Columns are looked up by
name, so exports of older and newer schema versions read the same way; a column an export lacks
reads as None. `revati.recorder.importers.nsys` converts the rows.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from revati.errors import RevatiImportError

SQLITE_MAGIC = b"SQLite format 3\x00"


KERNEL_TABLE = "CUPTI_ACTIVITY_KIND_KERNEL"


RUNTIME_TABLE = "CUPTI_ACTIVITY_KIND_RUNTIME"


MEMCPY_TABLE = "CUPTI_ACTIVITY_KIND_MEMCPY"


MEMSET_TABLE = "CUPTI_ACTIVITY_KIND_MEMSET"


SYNC_TABLE = "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION"


NVTX_TABLE = "NVTX_EVENTS"


# Columns that hold text inline or an id into StringIds; every other column read is an integer.
TEXT_COLUMNS = frozenset({"text", "textId", "nameId", "demangledName", "shortName", "mangledName"})
# Columns a row of each activity table cannot do without (a NULL there makes it malformed).
_DEVICE_OP = ("start", "end", "globalPid", "deviceId", "streamId")
REQUIRED = {
    RUNTIME_TABLE: ("start", "end", "globalTid"),
    KERNEL_TABLE: _DEVICE_OP,
    MEMCPY_TABLE: _DEVICE_OP,
    MEMSET_TABLE: _DEVICE_OP,
    SYNC_TABLE: ("start", "end", "globalPid"),
}


def pid_of(global_id: int) -> int:
    """OS pid inside an Nsight globalPid / globalTid."""
    return (global_id >> 24) & 0xFFFFFF


def tid_of(global_tid: int) -> int:
    """OS tid inside an Nsight globalTid."""
    return global_tid & 0xFFFFFF


class NsysExport:
    """Read-only access to one export, with every problem turned into a RevatiImportError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.malformed: Counter[str] = Counter()  # rows skipped, by table and column
        _check_sqlite_file(path)
        try:
            self.con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
            self.tables = {
                r[0]
                for r in self.con.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            }
        except sqlite3.DatabaseError as e:
            raise RevatiImportError(
                f"{path}: not a readable SQLite database ({e}); the file may be truncated or corrupt"
            ) from None
        if KERNEL_TABLE not in self.tables and RUNTIME_TABLE not in self.tables:
            raise RevatiImportError(
                f"{path}: SQLite file without CUPTI tables ({KERNEL_TABLE}, {RUNTIME_TABLE}); "
                "export an Nsight Systems report with `nsys export --type sqlite` from a run "
                "traced with CUDA enabled (--trace cuda)"
            )
        self.strings = (
            dict(self.rows("SELECT id, value FROM StringIds")) if "StringIds" in self.tables else {}
        )

    def columns(self, table: str) -> set[str]:
        if table not in self.tables:
            return set()
        return {r[1] for r in self.con.execute(f"PRAGMA table_info({table})")}

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(query).fetchall()
        except sqlite3.DatabaseError as e:
            raise RevatiImportError(
                f"{self.path}: cannot read the export ({e}); the file may be "
                "truncated or from an unsupported Nsight Systems version"
            ) from None

    def records(self, table: str, wanted: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """Rows of `table` as dicts of the `wanted` columns it has (missing ones are None)."""
        have = [c for c in wanted if c in self.columns(table)]
        if table not in self.tables or not have:
            return
        numeric = [i for i, c in enumerate(have) if c not in TEXT_COLUMNS]
        required = [i for i, c in enumerate(have) if c in REQUIRED.get(table, ())]
        for row in self.rows(
            f"SELECT {', '.join(have)} FROM {table} ORDER BY start"
            if "start" in have
            else f"SELECT {', '.join(have)} FROM {table}"
        ):
            bad = next((have[i] for i in numeric if not _is_int_or_null(row[i])), None)
            if bad is not None:
                self.malformed[f"{table} row with a non-integer {bad}"] += 1
                continue
            missing = next((have[i] for i in required if row[i] is None), None)
            if missing is not None:
                self.malformed[f"{table} row without {missing}"] += 1
                continue
            rec = dict.fromkeys(wanted)
            rec.update(zip(have, row, strict=True))
            yield rec

    def int_rows(self, query: str) -> list[tuple[Any, ...]]:
        """`rows(query)` without the rows whose first column is not an integer."""
        return [r for r in self.rows(query) if isinstance(r[0], int)]

    def text(self, value: Any) -> str | None:
        """A string column that is either inline text or an id into StringIds."""
        if value is None or isinstance(value, str):
            return value
        return self.strings.get(value)

    def close(self) -> None:
        self.con.close()


def _is_int_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _check_sqlite_file(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise RevatiImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RevatiImportError(f"{path}: is a directory, not an Nsight Systems .sqlite") from None
    except PermissionError:
        raise RevatiImportError(f"{path}: permission denied") from None
    if head != SQLITE_MAGIC:
        hint = (
            " (a .nsys-rep report: run `nsys export --type sqlite` on it first)"
            if path.suffix == ".nsys-rep"
            else ""
        )
        raise RevatiImportError(
            f"{path}: not an SQLite database{hint}; expected an Nsight Systems SQLite export"
        )
