"""Reading PyTorch-profiler (Kineto) trace files: loading, validation and value parsing.

`load_kineto` turns every problem with a file (missing, not JSON, truncated gzip, JSON that is
not a Kineto trace) into one `RevatiImportError` line naming the file. The small helpers below
read Kineto's loosely typed values (ints that may be floats, `[x, y, z]` dimensions, metadata
names); `revati.recorder.importers.kineto` converts the events themselves.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from revati.recorder.importers.builder import count_list

from revati.errors import RevatiImportError

# Kineto categories (lower-cased; the legacy capitalised names map onto the current ones).
CATEGORY = {
    "kernel": "kernel",
    "gpu_memcpy": "memcpy",
    "memcpy": "memcpy",
    "gpu_memset": "memset",
    "memset": "memset",
    "cuda_runtime": "call",
    "runtime": "call",
    "cuda_driver": "call",
    "cuda_sync": "sync",
    "user_annotation": "annotation",
    "gpu_user_annotation": "gpu_annotation",
}


# Categories that prove a file is a Kineto trace even when it holds no GPU work.
_KINETO_ONLY = {
    "cpu_op",
    "python_function",
    "operator",
    "cpu_instant_event",
    "ac2g",
    "async_cpu_to_gpu",
    "fwdbwd",
    "trace",
}


_THREAD_LABEL = re.compile(r"^thread \d+ \((.*)\)$")  # Kineto's "thread 1234 (python3)"


_GZIP_MAGIC = b"\x1f\x8b"


# PyTorch dtype names in NCCL kernel args -> (revati dtype, bytes per element)
_DTYPES = {
    "Float": ("fp32", 4),
    "Double": ("fp64", 8),
    "Half": ("fp16", 2),
    "BFloat16": ("bf16", 2),
    "Float8_e4m3fn": ("fp8", 1),
    "Float8_e5m2": ("fp8", 1),
    "Int": ("int32", 4),
    "Long": ("int64", 8),
    "Char": ("int8", 1),
    "Byte": ("uint8", 1),
    "Bool": ("bool", 1),
}


def load_kineto(path: Path) -> dict[str, Any]:
    """Read one Kineto JSON (optionally gzip) file; any problem is one RevatiImportError line."""
    try:
        with path.open("rb") as f:
            gz = f.read(2) == _GZIP_MAGIC
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise RevatiImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RevatiImportError(f"{path}: is a directory, not a Kineto JSON file") from None
    except PermissionError:
        raise RevatiImportError(f"{path}: permission denied") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise RevatiImportError(
            f"{path}: truncated or corrupt gzip file ({e}); re-copy or re-export the trace"
        ) from None
    except UnicodeDecodeError:
        raise RevatiImportError(
            f"{path}: not a JSON text file (binary content); expected a "
            "PyTorch-profiler trace .json or .json.gz"
        ) from None
    except json.JSONDecodeError as e:
        raise RevatiImportError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column "
            f"{e.colno}); expected a PyTorch-profiler trace"
        ) from None
    _check_is_kineto(path, data)
    return data


def _check_is_kineto(path: Path, data: Any) -> None:
    events = data.get("traceEvents") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise RevatiImportError(
            f"{path}: JSON but not a PyTorch-profiler (Kineto) trace: no "
            "'traceEvents' list at the top level"
        )
    for e in events:
        if isinstance(e, dict) and isinstance(e.get("cat"), str):
            cat = e["cat"].lower()
            if cat in CATEGORY or cat in _KINETO_ONLY:
                return
    raise RevatiImportError(
        f"{path}: JSON with traceEvents but not a PyTorch-profiler (Kineto) "
        "trace: no kernel, cuda_runtime, cpu_op or user_annotation events"
    )


def refuse_duplicates(files: list[Path]) -> None:
    """The same trace given twice (by two names or as two copies) is not two ranks of a run."""
    seen: dict[str, Path] = {}
    for path in files:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue  # load_kineto names the problem
        first = seen.setdefault(digest, path)
        if first is path:
            continue
        if os.path.realpath(first) == os.path.realpath(path):
            raise RevatiImportError(f"{path}: given twice; give each rank's trace once")
        raise RevatiImportError(
            f"{path}: identical to {first} (the same trace twice); give each rank's trace once"
        )


def refuse_same_rank(path: Path, rank: int | None, ranks: dict[int, Path]) -> None:
    """Two files that both claim rank R are not ranks of one run."""
    if rank is None:
        return
    other = ranks.setdefault(rank, path)
    if other is not path:
        raise RevatiImportError(
            f"{path}: rank {rank} again (already {other}); give one trace per rank of one run"
        )


def check_file_imported(
    path: Path, imported: int, malformed: Counter[str], skipped: Counter[str]
) -> None:
    """A file that gave no rows is an error naming why, never an empty trace."""
    if imported:
        return
    if malformed:
        raise RevatiImportError(
            f"{path}: all {sum(malformed.values())} GPU and CUDA runtime events are malformed "
            f"({count_list(malformed)}); nothing to import"
        )
    host = count_list(Counter({k: v for k, v in skipped.items() if k != "metadata"}))
    raise RevatiImportError(
        f"{path}: no GPU or CUDA runtime events to import (only {host or 'metadata'}); profile "
        "with ProfilerActivity.CUDA enabled"
    )


def with_int_ids(event: dict[str, Any]) -> dict[str, Any]:
    """The event with pid/tid given as digit strings (older PyTorch: "tid": "3004819264") as
    ints; other strings ("stream 7", "Traces") stay as they are."""
    fixed = None
    for key in ("pid", "tid"):
        value = event.get(key)
        if isinstance(value, str) and value.isdigit():
            fixed = fixed or dict(event)
            fixed[key] = int(value)
    return fixed or event


def expand_inputs(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """The input files: a folder stands for the .json / .json.gz files directly inside it."""
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            files.append(p)
            continue
        found = sorted(f for f in p.iterdir() if f.name.endswith((".json", ".json.gz")))
        if not found:
            raise RevatiImportError(f"{p}: folder holds no .json or .json.gz trace files")
        files.extend(found)
    return files


@dataclass
class MetadataNames:
    processes: dict[int, str]
    threads: dict[tuple[int, int], str]


def metadata_names(events: list[dict[str, Any]]) -> MetadataNames:
    names = MetadataNames({}, {})
    for e in events:
        if e.get("ph") != "M" or not isinstance(e.get("args"), dict):
            continue
        label = e["args"].get("name")
        if not isinstance(label, str):
            continue
        if e.get("name") == "process_name" and is_int(e.get("pid")):
            names.processes[e["pid"]] = label
        elif e.get("name") == "thread_name" and is_int(e.get("pid")) and is_int(e.get("tid")):
            m = _THREAD_LABEL.match(label.strip())
            names.threads[(e["pid"], e["tid"])] = m.group(1) if m else label.strip()
    return names


def collective_args(
    args: dict[str, Any], features: dict[str, Any]
) -> tuple[str | None, int | None, str | None]:
    """(dtype, bytes, process group) of an NCCL kernel from the args newer PyTorch adds."""
    if "Collective name" not in args:
        return None, None, None
    features["collective"] = args["Collective name"]
    features["group_size"] = args.get("Group size")
    dtype, size = _DTYPES.get(str(args.get("dtype")), (None, None))
    nelems = int_or_none(args.get("In msg nelems"))
    nbytes = nelems * size if nelems is not None and size is not None else None
    group = args.get("Process Group Name")
    return dtype, nbytes, None if group is None else str(group)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def device_properties(data: dict[str, Any], ordinal: int) -> dict[str, Any]:
    props = data.get("deviceProperties")
    if isinstance(props, list):
        for p in props:
            if isinstance(p, dict) and p.get("id") == ordinal:
                return p
    return {}


def us_to_ns(us: int | float) -> int:
    return us * 1000 if isinstance(us, int) else round(us * 1000)


def dim3(v: Any) -> tuple[int | None, int | None, int | None]:
    if isinstance(v, list) and len(v) == 3 and all(is_int(x) for x in v):
        return v[0], v[1], v[2]
    return None, None, None


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_or_none(v: Any) -> int | None:
    if is_int(v):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None
