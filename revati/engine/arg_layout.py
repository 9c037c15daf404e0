"""An argument layout: which bytes of a kernel's launch arguments the shim keeps, and how the
engine reads them (the tables: `kernel_layouts.py`, `vllm_layouts.py`).

A layout may also keep a varlen summary (`varlen`): where a launch packs sequences of different
lengths and passes their lengths as device arrays (cumulative query lengths, per-sequence or
cumulative KV lengths), the shim reads the arrays at launch when they sit in backed device memory
and keeps their totals, `VARLEN_SUMMARY` (28 bytes, after the slices; struct varlen_summary in
revati/native/kernel_args.c): sequences, total query and KV lengths, and the sums of q_i * k_i
and q_i * q_i. Zeros mean the arrays could not be read (virtual memory, a graph node).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from revati import shim

VARLEN_SUMMARY = ("<3I2Q", ("sequences", "sum_q", "sum_k", "sum_qk", "sum_qq"))
VARLEN_SUMMARY_BYTES = struct.calcsize(VARLEN_SUMMARY[0])


@dataclass(frozen=True)
class ArgLayout:
    """Where the problem size sits in the arguments of the kernels named by `pattern`."""

    id: int
    name: str  # short name, recorded in kernel_features.features["layout"]
    pattern: str  # parts of the mangled kernel name, in order, separated by '*' ('?': any char)
    slices: tuple[tuple[int, int, int], ...]  # (argument index, byte offset, length), kept in order
    fields: str  # struct format (little-endian) of the kept bytes
    names: tuple[str, ...]  # one name per value `fields` unpacks
    decode: str  # the decoder in kernel_args.DECODERS
    source: str  # the declaration the offsets come from, with its library and version
    # (argument, offsets of the int32 batch size and of the cu_q, used_k, cu_k pointers): a
    # VARLEN_SUMMARY kept after the slices
    varlen: tuple[int, int, int, int, int] | None = None
    # a barrier of the processes sharing IPC buffers (revati/native/ipc_barrier.c): the slices
    # are a pointer into the group's shared buffer, the int32 rank and the int32 message size in
    # `group_unit` bytes; each launch is then an all-reduce arrival, not a kernel
    group_unit: int = 0

    def __post_init__(self) -> None:
        plain = sum(length for _arg, _offset, length in self.slices)
        kept = plain + (VARLEN_SUMMARY_BYTES if self.varlen else 0)
        assert kept <= shim.ARGS_BYTES, f"{self.name}: keeps {kept} bytes"
        assert struct.calcsize(self.fields) <= plain, f"{self.name}: fields past the kept bytes"
        assert len(struct.unpack(self.fields, bytes(struct.calcsize(self.fields)))) == len(
            self.names
        ), f"{self.name}: one name per field"

    def unpack(self, kept: bytes) -> dict[str, int | float]:
        values = dict(zip(self.names, struct.unpack_from(self.fields, kept), strict=True))
        if self.varlen:
            at = sum(length for _arg, _offset, length in self.slices)
            summary = struct.unpack_from(VARLEN_SUMMARY[0], kept, at)
            values.update(zip(VARLEN_SUMMARY[1], summary, strict=True))
        return values

    def config_line(self) -> str:
        slices = [f"{a}:{o}:{n}" for a, o, n in self.slices]
        if self.varlen:
            slices.append("v" + ":".join(str(x) for x in self.varlen))
        if self.group_unit:
            slices.append(f"g{self.group_unit}")
        return f"{self.id};{self.pattern};{','.join(slices)}"


def flash2_kernels(
    id: int,
    name: str,
    namespace: str,
    slices: tuple[tuple[int, int, int], ...],
    fields: str,
    names: tuple[str, ...],
    decode: str,
    source: str,
    varlen: tuple[int, int, int, int, int] | None = None,
) -> tuple[ArgLayout, ...]:
    """FlashAttention 2's forward and split-KV forward kernels of one build (its mangled
    `namespace`), which take the same Flash_fwd_params: ids `id` and `id` + 1."""
    kernels = (("", "16flash_fwd_kernelI"), ("_splitkv", "24flash_fwd_splitkv_kernelI"))
    return tuple(
        ArgLayout(
            id + i,
            name + suffix,
            f"_ZN{namespace}{kernel}",
            slices,
            fields,
            names,
            decode,
            source,
            varlen,
        )  # fmt: skip
        for i, (suffix, kernel) in enumerate(kernels)
    )
