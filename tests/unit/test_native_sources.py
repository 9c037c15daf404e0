"""How the shim's C sources are put together: rules a new library layer must keep too."""

from __future__ import annotations

import re
from pathlib import Path

from revati.native import build, collector_build

SOURCES = sorted(build.NATIVE.glob("*.c"))


def _code(path: Path) -> str:
    """The file without comments and string literals."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def test_every_c_file_is_built() -> None:
    collector = {name for name in collector_build.SOURCES if name.endswith(".c")}
    built = {*build.SHIM_SOURCES, *build.HELPER_SOURCES, *collector}
    assert {p.name for p in SOURCES} == built


def test_real_functions_come_from_the_hooks_table_only() -> None:
    """One table resolved once (hooks.c), not a lazy unsynchronised dlsym per interposer. (A
    layer that dlopens a real library looks up in its handle, in its own file.)"""
    next_lookup = re.compile(r"\bdlv?sym\s*\(\s*RTLD_NEXT")
    offenders = [p.name for p in SOURCES if p.name != "hooks.c" and next_lookup.search(_code(p))]
    assert offenders == []


def test_no_bare_error_numbers_or_record_flags() -> None:
    """Errors by name (cuda_errors.h), record kind bits by name (shim.h)."""
    bare_return = re.compile(r"\breturn\s+(?:ret\()?\s*(\d{2,})\s*\)?\s*;")  # 98, 801, ...
    bare_result = re.compile(r"revati_emit\((?:[^,;]*,){3}\s*(\d{2,})\s*,")  # the result
    bare_flag = re.compile(r"revati_emit\(\s*\w+\s*,[^,;]*\b0x[0-9a-fA-F]+\b")  # kind bits
    offenders = []
    for p in SOURCES:
        code = _code(p)
        offenders += [f"{p.name}: return {m.group(1)}" for m in bare_return.finditer(code)]
        offenders += [f"{p.name}: result {m.group(1)}" for m in bare_result.finditer(code)]
        offenders += [f"{p.name}: {m.group(0)[:60]}" for m in bare_flag.finditer(code)]
    assert offenders == []


def test_shared_run_state_is_atomic() -> None:
    """g_active/g_detached are read by every thread on every call and set by any of them."""
    header = (build.NATIVE / "shim_internal.h").read_text()
    assert "extern _Atomic int g_active;" in header
    assert "extern _Atomic int g_detached;" in header
    plain = [p.name for p in SOURCES if re.search(r"\bg_(?:active|detached)\s*=[^=]", _code(p))]
    assert plain == []  # set with __atomic_store_n / __atomic_exchange_n only
