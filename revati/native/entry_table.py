"""The table of intercepted entry points (`entry_points.tsv`), read and written in one place.

One row per function a real CUDA library exports: `name`, `library` (the SONAME, which for
libcudart is also the symbol version, e.g. `libcudart.so.13`), `status` and free-text `notes`.
A row is `emulated` when the shim implements the function, `stub` when the build generates a
stub that records the call and returns "not supported" (see `stubgen.py`). The build, the docs
and `revati doctor` all read this table; nothing else lists entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from revati.errors import RevatiConfigError

TABLE_PATH = Path(__file__).with_name("entry_points.tsv")
COLUMNS = ("name", "library", "status", "notes")
STATUSES = ("emulated", "stub")


@dataclass(frozen=True)
class EntryPoint:
    """One exported function of a real CUDA library and how revati answers it."""

    name: str
    library: str
    status: str  # "emulated" | "stub"
    notes: str = ""


def read_table(path: str | Path = TABLE_PATH) -> list[EntryPoint]:
    """Parse the table; a malformed row raises `RevatiConfigError` naming file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise RevatiConfigError(f"cannot read entry-point table {path}: {e.strerror}") from e
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise RevatiConfigError(f"{path}:1: header must be {' TAB '.join(COLUMNS)}")
    rows: list[EntryPoint] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        row = _parse_row(path, number, line)
        if row is None:
            continue
        if row.name in seen:
            raise RevatiConfigError(
                f"{path}:{number}: {row.name} is listed twice (first on line {seen[row.name]})"
            )
        seen[row.name] = number
        rows.append(row)
    return rows


def _parse_row(path: Path, number: int, line: str) -> EntryPoint | None:
    if not line.strip() or line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) < 3 or len(fields) > 4:
        raise RevatiConfigError(
            f"{path}:{number}: expected 4 tab-separated columns, got {len(fields)}"
        )
    name, library, status = fields[:3]
    if status not in STATUSES:
        raise RevatiConfigError(
            f"{path}:{number}: status {status!r} of {name} is not one of {STATUSES}"
        )
    if not name.isidentifier():
        raise RevatiConfigError(f"{path}:{number}: {name!r} is not a C identifier")
    return EntryPoint(name, library, status, fields[3] if len(fields) == 4 else "")


def write_table(rows: list[EntryPoint], path: str | Path = TABLE_PATH) -> None:
    """Write rows sorted by (library, name): stable diffs when a row flips status."""
    ordered = sorted(rows, key=lambda row: (row.library, row.name))
    text = "\t".join(COLUMNS) + "\n"
    text += "".join(f"{r.name}\t{r.library}\t{r.status}\t{r.notes}\n" for r in ordered)
    Path(path).write_text(text, encoding="utf-8")


def names_with_status(status: str, path: str | Path = TABLE_PATH) -> list[str]:
    """Names of the rows with `status`, in table order."""
    return [row.name for row in read_table(path) if row.status == status]
