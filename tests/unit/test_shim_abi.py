"""revati/shim.py against the ABI header: a C probe compiled from shim.h (and clock_page.h) with
the system compiler prints every size, offset and constant the Python side uses; they must
agree. Changing a layout or a value on one side only fails here."""

from __future__ import annotations

import ctypes
import dataclasses
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from revati import shim
from revati.native import build

RECORD = "struct revati_record"
GEMM = "struct revati_gemm_record"
ARGS = "struct revati_args_record"
RING = "struct revati_ring_header"
PAGE = "struct revati_clock_page"
MSG = "struct revati_msg"
SNAPSHOT = "struct revati_page_snapshot"

# RECORD_DTYPE's names for the members of the payload union
RECORD_MEMBERS = {"a": "p.u[0]", "b": "p.u[1]", "c": "p.u[2]", "d": "p.u[3]"}
# Python names of C constants that are spelled differently
PY_NAMES = {"REC_COPY_KIND_MASK": "COPY_KIND_MASK", "REVATI_PROTOCOL_VERSION": "PROTOCOL_VERSION"}
PY_NAMES |= {"REVATI_ARGS_BYTES": "ARGS_BYTES"}
PY_NAMES |= {
    f"REVATI_{n}": n
    for n in ("PAGE_MAGIC", "RING_MAGIC", "MAX_DEVICES", "DEFAULT_STREAM_DEVICE_SHIFT")
}
PY_NAMES |= {f"REC_F_{n}": f"F_{n}" for n in ("ASYNC", "BACKED", "GRAPH", "HOST_START")}
# C constants with a prefix the Python side must mirror in full
MIRRORED = re.compile(r"\b((?:REC|SYNC|MSG|QUERY|ALLOC|REG)_[A-Z_]+)\b\s*=?")
NOT_MIRRORED = {"REC_F_"}  # prefix only


def _struct_offsets(fmt: struct.Struct, names: tuple[str, ...]) -> dict[str, int]:
    codes = re.findall(r"[a-zA-Z]", fmt.format)
    assert len(codes) == len(names)
    return {n: struct.calcsize("<" + "".join(codes[:i])) for i, n in enumerate(names)}


def python_side() -> dict[str, int]:
    """What shim.py says, keyed by the C expression that must equal it."""
    out: dict[str, int] = {}
    out[f"sizeof({RECORD})"] = shim.RECORD_SIZE
    out[f"sizeof({RING})"] = shim.RING_HEADER_SIZE
    out[f"sizeof({MSG})"] = shim.MSG.size
    out[f"sizeof({SNAPSHOT})"] = ctypes.sizeof(shim.PageSnapshotC)
    out[f"sizeof({PAGE}) <= {shim.PAGE_SIZE}"] = 1
    for name, (dtype, offset, *_) in shim.RECORD_DTYPE.fields.items():
        member = RECORD_MEMBERS.get(name, name)
        out[f"offsetof({RECORD}, {member})"] = offset
        out[f"sizeof((({RECORD} *)0)->{member})"] = dtype.itemsize
    for name, (dtype, offset, *_) in shim.LAUNCH_DTYPE.fields.items():
        if name != "head":
            out[f"offsetof({RECORD}, p.launch.{name})"] = offset
            out[f"sizeof((({RECORD} *)0)->p.launch.{name})"] = dtype.itemsize
    out[f"offsetof({RECORD}, p)"] = shim.LAUNCH_DTYPE.fields["head"][0].itemsize
    out[f"sizeof({GEMM})"] = shim.GEMM_DTYPE.itemsize
    for name, (dtype, offset, *_) in shim.GEMM_DTYPE.fields.items():
        if name != "head":
            out[f"offsetof({GEMM}, {name})"] = offset
            out[f"sizeof((({GEMM} *)0)->{name})"] = dtype.itemsize
    out[f"sizeof({ARGS})"] = shim.RECORD_SIZE
    out[f"offsetof({ARGS}, bytes)"] = shim.RECORD_SIZE - shim.ARGS_BYTES
    msg_fields = tuple(f.name for f in dataclasses.fields(shim.Message))
    for name, offset in _struct_offsets(shim.MSG, msg_fields).items():
        out[f"offsetof({MSG}, {name})"] = offset
    for name, offset in _struct_offsets(shim.PAGE_STRUCT, shim.PAGE_FIELDS).items():
        out[f"offsetof({PAGE}, {name})"] = offset
    out[f"offsetof({PAGE}, coordinator_pid)"] = shim.PAGE_OFF_COORDINATOR_PID
    out[f"offsetof({PAGE}, epoch_monotonic_ns)"] = shim.PAGE_OFF_EPOCH_MONO
    out[f"offsetof({PAGE}, stalled)"] = shim.PAGE_OFF_STALLED
    out[f"offsetof({PAGE}, mem_capacity)"] = shim.PAGE_OFF_MEM_CAPACITY
    out[f"offsetof({PAGE}, flowed_ns)"] = shim.PAGE_OFF_FLOWED
    for name, offset in _struct_offsets(
        shim.RING_HEADER_START, ("magic", "version", "capacity", "record_size")
    ).items():
        out[f"offsetof({RING}, {name})"] = offset
    out[f"offsetof({RING}, head)"] = shim.RING_OFF_HEAD
    out[f"offsetof({RING}, tail)"] = shim.RING_OFF_TAIL
    out[f"offsetof({RING}, dropped)"] = shim.RING_OFF_DROPPED
    out[f"offsetof({RING}, proc_running)"] = shim.RING_OFF_PROC_RUNNING
    out[f"offsetof({RING}, proc_spinning)"] = shim.RING_OFF_PROC_SPINNING
    out[f"offsetof({RING}, running_real_ns)"] = shim.RING_OFF_RUNNING_REAL
    out[f"offsetof({RING}, proc_waits_announced)"] = shim.RING_OFF_PROC_WAITS_ANNOUNCED
    out[f"offsetof({RING}, proc_stalled)"] = shim.RING_OFF_PROC_STALLED
    for name, _ctype in shim.PageSnapshotC._fields_:
        out[f"offsetof({SNAPSHOT}, {name})"] = getattr(shim.PageSnapshotC, name).offset
    for c_name in c_constants():
        out[c_name] = getattr(shim, PY_NAMES.get(c_name, c_name))
    for code, kind in shim.SYNC_KINDS.items():
        out[f"SYNC_{kind.upper()}"] = code
    for fn_id, name in enumerate(shim.FN_NAMES):
        if name != "unknown":
            out[f"FN_{name}"] = fn_id
    out["FN_COUNT"] = len(shim.FN_NAMES)
    return out


def c_constants() -> list[str]:
    """Every constant of shim.h that shim.py mirrors, by its C name."""
    text = (build.NATIVE / "shim.h").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    names = {m.group(1) for m in MIRRORED.finditer(text)} - NOT_MIRRORED
    names = {n for n in names if not n.endswith("_")}
    return sorted(names | set(PY_NAMES))


def c_side(keys: list[str], tmp_path: Path) -> dict[str, int]:
    """Compile and run a probe that prints each C expression's value."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler (cc/gcc/clang): the shim cannot be built either")
    lines = [f'    printf("%s\\t%lld\\n", "{k}", (long long)({k}));' for k in keys]
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#include <stddef.h>\n#include <stdio.h>\n#include "revati_fn.h"\n'
        '#include "shim.h"\n#include "clock_page.h"\n'
        "int main(void) {\n" + "\n".join(lines) + "\n    return 0;\n}\n"
    )
    build.write_fn_header(tmp_path)
    exe = tmp_path / "probe"
    subprocess.run(
        [cc, "-std=gnu11", "-I", str(build.NATIVE), "-I", str(tmp_path), "-o", str(exe),
         str(probe)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines())}


def test_shim_py_matches_the_abi_header(tmp_path: Path) -> None:
    expected = python_side()
    actual = c_side(sorted(expected), tmp_path)
    mismatches = {k: (expected[k], actual[k]) for k in expected if expected[k] != actual[k]}
    assert not mismatches, f"shim.py vs shim.h (python, C): {mismatches}"


def test_every_record_type_and_kind_of_shim_h_is_mirrored() -> None:
    names = c_constants()
    assert {"REC_API", "REC_GRAPH_NODE", "REC_F_GRAPH", "MSG_LEFT", "QUERY_STREAM"} <= set(names)
    missing = [n for n in names if not hasattr(shim, PY_NAMES.get(n, n))]
    assert not missing, f"shim.h constants with no counterpart in revati/shim.py: {missing}"


def test_probe_catches_a_one_sided_change(tmp_path: Path) -> None:
    """The check itself: a layout shifted on the Python side only is reported."""
    expected = python_side()
    key = f"offsetof({RECORD}, enter_ns)"
    expected[key] += 8
    actual = c_side([key], tmp_path)
    assert actual[key] != expected[key]
