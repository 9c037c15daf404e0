"""Read the `.nv_fatbin` section of an ELF file: its cubins and their kernels.

A fatbinary section holds one or more containers, each
`u32 magic 0xBA55ED50, u16 version, u16 header size, u64 payload size` followed by entries:
`u16 kind` (1 PTX, 2 ELF cubin), `u32 header size` at 4, `u64 padded payload size` at 8,
`u32 arch` at 28 (90 = sm_90), `u64 flags` at 40 (0x8000 zstd, 0x2000 LZ4), `u64 uncompressed
size` at 56. Uncompressed cubins are ELF files: their kernels are the `.text.<name>` sections,
registers come from the `.nv.info` REGCOUNT attribute (0x2f), static shared memory is the size
of `.nv.shared.<name>`. Compressed entries are listed, not decompressed (no zstd dependency).
"""

from __future__ import annotations

import io
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from revati.errors import RevatiRunError

CONTAINER_MAGIC = 0xBA55ED50
CONTAINER_HEADER = struct.Struct("<IHHQ")
ENTRY_KINDS = {1: "ptx", 2: "cubin"}
FLAG_ZSTD = 0x8000
FLAG_LZ4 = 0x2000
ATTR_REGCOUNT = 0x2F
EIFMT_SVAL = 0x04  # attribute with a u16 size and that many bytes of value
EIFMT_HVAL = 0x03  # attribute with a u16 value
EIFMT_BVAL = 0x02  # attribute with a u16 value (byte-sized, padded)
EIFMT_NVAL = 0x01  # attribute with no value


@dataclass(frozen=True)
class KernelInfo:
    name: str  # mangled
    registers: int | None
    shared_bytes: int  # static shared memory


@dataclass
class FatbinEntry:
    kind: str  # "ptx" | "cubin" | "unknown"
    arch: int  # 90 = sm_90
    compression: str  # "none" | "zstd" | "lz4"
    size: int  # bytes in the container (compressed if compressed)
    uncompressed_size: int | None
    kernels: list[KernelInfo] = field(default_factory=list)


def read_fatbin_section(path: str | Path) -> bytes | None:
    """The raw `.nv_fatbin` section of an ELF file, or None if it has none."""
    try:
        with open(path, "rb") as f:
            section = ELFFile(f).get_section_by_name(".nv_fatbin")
            return None if section is None else section.data()
    except (OSError, ELFError) as e:
        raise RevatiRunError(f"cannot read the fatbinary of {path}: {e}") from e


def parse_fatbin(data: bytes) -> list[FatbinEntry]:
    """Every entry of every container in a fatbinary section (zero padding is skipped)."""
    entries: list[FatbinEntry] = []
    offset = 0
    while offset + CONTAINER_HEADER.size <= len(data):
        magic, _version, header_size, payload_size = CONTAINER_HEADER.unpack_from(data, offset)
        if magic != CONTAINER_MAGIC:
            offset += 8  # containers are 8-byte aligned; skip padding
            continue
        start = offset + header_size
        entries += _parse_entries(data[start : start + payload_size])
        offset = start + payload_size
    return entries


def _parse_entries(payload: bytes) -> list[FatbinEntry]:
    entries = []
    offset = 0
    while offset + 64 <= len(payload):
        kind, header_size, padded = struct.unpack_from("<H2xIQ", payload, offset)
        if header_size == 0:
            break
        arch = struct.unpack_from("<I", payload, offset + 28)[0]
        flags = struct.unpack_from("<Q", payload, offset + 40)[0]
        uncompressed = struct.unpack_from("<Q", payload, offset + 56)[0]
        body = payload[offset + header_size : offset + header_size + padded]
        compression = "zstd" if flags & FLAG_ZSTD else "lz4" if flags & FLAG_LZ4 else "none"
        entry = FatbinEntry(ENTRY_KINDS.get(kind, "unknown"), arch, compression, padded,
                            uncompressed or None)  # fmt: skip
        if entry.kind == "cubin" and compression == "none" and body[:4] == b"\x7fELF":
            entry.kernels = cubin_kernels(body)
        entries.append(entry)
        offset += header_size + padded
    return entries


def cubin_kernels(cubin: bytes) -> list[KernelInfo]:
    """Kernels of one uncompressed cubin with registers and static shared memory."""
    elf = ELFFile(io.BytesIO(cubin))
    sizes = {s.name: s["sh_size"] for s in elf.iter_sections()}
    names = [n.removeprefix(".text.") for n in sizes if n.startswith(".text.")]
    registers = _register_counts(elf)
    return [KernelInfo(n, registers.get(n), sizes.get(f".nv.shared.{n}", 0)) for n in names]


def _register_counts(elf: ELFFile) -> dict[str, int]:
    """Kernel name -> REGCOUNT from the global `.nv.info` section."""
    info = elf.get_section_by_name(".nv.info")
    symtab = elf.get_section_by_name(".symtab")
    if info is None or not isinstance(symtab, SymbolTableSection):
        return {}
    counts = {}
    for attribute, value in _info_attributes(info.data()):
        if attribute == ATTR_REGCOUNT and len(value) >= 8:
            symbol_index, count = struct.unpack_from("<II", value)
            if symbol_index < symtab.num_symbols():
                counts[symtab.get_symbol(symbol_index).name] = count
    return counts


def _info_attributes(data: bytes) -> list[tuple[int, bytes]]:
    """(attribute, value bytes) pairs of an `.nv.info` section."""
    attributes = []
    offset = 0
    while offset + 4 <= len(data):
        fmt, attribute, size = struct.unpack_from("<BBH", data, offset)
        if fmt == EIFMT_SVAL:
            attributes.append((attribute, data[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        elif fmt in (EIFMT_HVAL, EIFMT_BVAL):
            attributes.append((attribute, data[offset + 2 : offset + 4]))
            offset += 4
        elif fmt == EIFMT_NVAL:
            offset += 2
        else:
            break  # unknown format: stop rather than misread
    return attributes


def describe_fatbins(paths: list[str]) -> list[dict[str, object]]:
    """For each file, its fatbinary entries as plain dicts (for JSON and the doctor's table)."""
    listing: list[dict[str, object]] = []
    for path in paths:
        data = read_fatbin_section(path)
        entries = parse_fatbin(data) if data else []
        listing.append({"file": path, "entries": [asdict(entry) for entry in entries]})
    return listing
