"""The table of intercepted entry points (`entry_points.tsv`), read and written in one place.

One row per function the shim intercepts: every export of a real CUDA library, and the libc
functions it interposes. `name`, `library` (the SONAME, which for libcudart is also the symbol
version, e.g. `libcudart.so.13`), `status`, free-text `notes`, and `fn`: the id ring records
carry for calls of that function (`enum revati_fn` in C, `revati.shim.FN_NAMES` in Python, both
made from this column), empty for functions that never appear in a record.
A row is `emulated` when the shim implements the function, `stub` when the build generates a
stub that records the call and returns "not supported" (see `stubgen.py`). The build, the docs
and `revati doctor` all read this table; nothing else lists entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from revati.errors import RevatiConfigError

TABLE_PATH = Path(__file__).with_name("entry_points.tsv")
COLUMNS = ("name", "library", "status", "notes", "fn")
LEGACY_COLUMNS = COLUMNS[:4]  # a table without record ids
STATUSES = ("emulated", "stub")
FN_UNKNOWN = "unknown"  # id 0, and ids no row holds (retired)


@dataclass(frozen=True)
class EntryPoint:
    """One exported function of a real CUDA library and how revati answers it."""

    name: str
    library: str
    status: str  # "emulated" | "stub"
    notes: str = ""
    fn: int | None = None  # record id (enum revati_fn), None: never recorded by this name


def read_table(path: str | Path = TABLE_PATH) -> list[EntryPoint]:
    """Parse the table; a malformed row raises `RevatiConfigError` naming file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise RevatiConfigError(f"cannot read entry-point table {path}: {e.strerror}") from e
    if not lines or tuple(lines[0].split("\t")) not in (COLUMNS, LEGACY_COLUMNS):
        raise RevatiConfigError(f"{path}:1: header must be {' TAB '.join(COLUMNS)}")
    rows: list[EntryPoint] = []
    seen: dict[str, int] = {}
    ids: dict[int, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        row = _parse_row(path, number, line)
        if row is None:
            continue
        if row.name in seen:
            raise RevatiConfigError(
                f"{path}:{number}: {row.name} is listed twice (first on line {seen[row.name]})"
            )
        if row.fn is not None and row.fn in ids:
            raise RevatiConfigError(
                f"{path}:{number}: fn id {row.fn} of {row.name} is taken (line {ids[row.fn]}); "
                "give it the next free id"
            )
        seen[row.name] = number
        if row.fn is not None:
            ids[row.fn] = number
        rows.append(row)
    return rows


def _parse_row(path: Path, number: int, line: str) -> EntryPoint | None:
    if not line.strip() or line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) < 3 or len(fields) > 5:
        raise RevatiConfigError(
            f"{path}:{number}: expected 4 tab-separated columns (5 with fn), got {len(fields)}"
        )
    name, library, status = fields[:3]
    if status not in STATUSES:
        raise RevatiConfigError(
            f"{path}:{number}: status {status!r} of {name} is not one of {STATUSES}"
        )
    if not name.isidentifier():
        raise RevatiConfigError(f"{path}:{number}: {name!r} is not a C identifier")
    fn = fields[4] if len(fields) == 5 else ""
    if fn and (not fn.isdigit() or int(fn) < 1 or int(fn) > 0xFFFF):
        raise RevatiConfigError(f"{path}:{number}: fn {fn!r} of {name} is not an id in 1..65535")
    return EntryPoint(name, library, status, fields[3] if len(fields) >= 4 else "",
                      int(fn) if fn else None)  # fmt: skip


def write_table(rows: list[EntryPoint], path: str | Path = TABLE_PATH) -> None:
    """Write rows sorted by (library, name): stable diffs when a row flips status."""
    ordered = sorted(rows, key=lambda row: (row.library, row.name))
    text = "\t".join(COLUMNS) + "\n"
    text += "".join(_row_line(r) + "\n" for r in ordered)
    Path(path).write_text(text, encoding="utf-8")


def _row_line(r: EntryPoint) -> str:
    line = f"{r.name}\t{r.library}\t{r.status}\t{r.notes}"
    return line if r.fn is None else f"{line}\t{r.fn}"


def names_with_status(status: str, path: str | Path = TABLE_PATH) -> list[str]:
    """Names of the rows with `status`, in table order."""
    return [row.name for row in read_table(path) if row.status == status]


def fn_names(path: str | Path = TABLE_PATH) -> tuple[str, ...]:
    """Record ids to names: position i is the function whose `fn` is i (`unknown` for 0 and
    for ids no row holds)."""
    ids = {row.fn: row.name for row in read_table(path) if row.fn is not None}
    return tuple(ids.get(i, FN_UNKNOWN) for i in range(max(ids, default=0) + 1))


def fn_enum_c(path: str | Path = TABLE_PATH) -> str:
    """The C header the build generates from the `fn` column: `enum revati_fn`."""
    names = fn_names(path)
    body = "".join(f"    FN_{name} = {i},\n" for i, name in enumerate(names) if name != FN_UNKNOWN)
    return (
        "/* Generated by the build from entry_points.tsv (the fn column): do not edit. */\n"
        "#ifndef REVATI_FN_H\n#define REVATI_FN_H\n\n"
        f"enum revati_fn {{\n    FN_{FN_UNKNOWN} = 0,\n{body}    FN_COUNT = {len(names)},\n}};\n"
        "\n#endif\n"
    )
