"""What the dynamic loader would see in an ELF file.

`read_elf(path)` gathers the dynamic section (SONAME, DT_NEEDED, DT_RPATH, DT_RUNPATH), the
dynamic symbols a file defines and the ones it leaves undefined (with their GNU symbol
versions), and its section names. `LibrarySearch` resolves DT_NEEDED names the way glibc's
`ld.so` does: DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the
`ldconfig` cache, then the default directories. `revati doctor` and the entry-point generator
build on these; nothing here runs the program. Headers, section names and the dynamic section
are read with `struct` (pyelftools takes ~50 ms per library for them, and `revati record` reads
a program's whole loader closure before it starts it); symbols with pyelftools and numpy, on
first use.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from revati.errors import RevatiRunError

if TYPE_CHECKING:  # pyelftools is imported where symbols are read (`ElfInfo._read_symbols`)
    from elftools.elf.elffile import ELFFile

# Directories ld.so searches last, after the cache (x86_64 and aarch64 Debian/Ubuntu layouts).
DEFAULT_LIB_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


@dataclass(frozen=True)
class DynamicSymbol:
    """A dynamic symbol: `version` is its GNU version name (`libcudart.so.13`) or None."""

    name: str
    version: str | None
    kind: str  # "func" | "object" | "other"


@dataclass
class ElfInfo:
    """The loader-relevant facts of one ELF file."""

    path: Path
    machine: str  # e_machine, e.g. "EM_X86_64"
    elf_class: int  # 32 or 64
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    _symbols: tuple[list[DynamicSymbol], list[DynamicSymbol]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def defined(self) -> list[DynamicSymbol]:
        """Exported dynamic symbols (read from the file on first use)."""
        return self._read_symbols()[0]

    @property
    def undefined(self) -> list[DynamicSymbol]:
        """Dynamic symbols the file imports (read from the file on first use)."""
        return self._read_symbols()[1]

    def _read_symbols(self) -> tuple[list[DynamicSymbol], list[DynamicSymbol]]:
        # Only some files' symbols are ever needed (e.g. `record` checks the few with device
        # code), and reading them is most of the cost of reading a library.
        if self._symbols is None:
            from elftools.common.exceptions import ELFError
            from elftools.elf.elffile import ELFFile

            self._symbols = ([], [])
            try:
                with open(self.path, "rb") as f:
                    _read_symbols(ELFFile(f), *self._symbols)
            except OSError as e:
                raise RevatiRunError(f"cannot read {self.path}: {e.strerror}") from e
            except ELFError as e:
                raise RevatiRunError(f"{self.path} is not a readable ELF file ({e})") from e
        return self._symbols

    def exports_any(self, names: set[str]) -> bool:
        """Whether the file exports (defines, default or protected visibility) any of `names`:
        the dynamic symbol table read with `struct`, without building every symbol."""
        if self._symbols is not None:
            return any(sym.name in names for sym in self._symbols[0])
        try:
            with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return _exports_any(m, names)
        except (OSError, struct.error, IndexError, ValueError):
            return any(sym.name in names for sym in self.defined)  # says what is wrong

    def defined_functions(self) -> list[DynamicSymbol]:
        return [sym for sym in self.defined if sym.kind == "func"]


def is_elf(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_elf(path: str | Path) -> ElfInfo:
    """Read an ELF file's dynamic facts; a missing or non-ELF file raises `RevatiRunError`."""
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read_image(path, data)
    except OSError as e:
        raise RevatiRunError(f"cannot read {path}: {e.strerror}") from e
    except (struct.error, IndexError, ValueError) as e:  # ValueError: an empty file too
        raise RevatiRunError(f"{path} is not a readable ELF file ({e})") from e


def _read_image(path: Path, data: mmap.mmap) -> ElfInfo:
    """The ElfInfo of a mapped file (only the pages holding headers and names are read)."""
    header = _header(data)
    if header is None:
        raise ValueError("bad ELF header")
    order, elf_class, machine = header
    info = ElfInfo(path, MACHINES.get(machine, f"EM_{machine}"), elf_class)
    sections = _section_headers(data, order, elf_class)
    info.sections = [name for name, *_ in sections]
    _read_dynamic(data, order, elf_class, sections, info)
    return info


# e_machine values (elf.h) under the names pyelftools gives them.
MACHINES = {3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}
SHT_DYNAMIC = 6
# Dynamic tags that carry a string (an offset into the dynamic string table).
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29


def _header(data: bytes | mmap.mmap) -> tuple[str, int, int] | None:
    """(byte order, class 32/64, e_machine) of an ELF image, or None if it is not one."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    order = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(order + "H", data, 18)
    return order, 32 if data[4] == 1 else 64, machine


# (name, sh_type, sh_offset, sh_size, sh_link) per section.
Section = tuple[str, int, int, int, int]


def _section_headers(data: bytes | mmap.mmap, order: str, elf_class: int) -> list[Section]:
    if elf_class == 64:
        shoff, shentsize, shnum, shstrndx = (*struct.unpack_from(order + "Q", data, 40),
                                             *struct.unpack_from(order + "HHH", data, 58))  # fmt: skip
        fmt = order + "IIQQQQIIQQ"
    else:
        shoff, shentsize, shnum, shstrndx = (*struct.unpack_from(order + "I", data, 32),
                                             *struct.unpack_from(order + "HHH", data, 46))  # fmt: skip
        fmt = order + "IIIIIIIIII"
    raw = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx][4] if shnum and shstrndx < shnum else 0
    return [(_cstr(data, strtab + h[0]) if strtab else "", h[1], h[4], h[5], h[6]) for h in raw]


SHT_DYNSYM = 11


def _exports_any(data: mmap.mmap, names: set[str]) -> bool:
    header = _header(data)
    if header is None:
        raise ValueError("bad ELF header")
    order, elf_class, _machine = header
    sections = _section_headers(data, order, elf_class)
    wanted = {n.encode() for n in names}
    for _name, kind, offset, length, link in sections:
        if kind != SHT_DYNSYM or link >= len(sections):
            continue
        strings = sections[link][2]
        fmt = order + ("IBBHQQ" if elf_class == 64 else "IIIBBH")
        size = struct.calcsize(fmt)
        for entry in struct.iter_unpack(fmt, data[offset : offset + length - length % size]):
            name, info, other, shndx = (
                entry[:4] if elf_class == 64 else (entry[0], entry[3], entry[4], entry[5])
            )
            if shndx == 0 or info >> 4 not in _GLOBAL_BINDS or other & 0x3 not in (0, 3):
                continue
            end = data.find(b"\0", strings + name)
            if data[strings + name : end] in wanted:
                return True
    return False


def _cstr(data: bytes | mmap.mmap, offset: int) -> str:
    end = data.find(b"\0", offset)
    if end < 0:
        raise ValueError("unterminated string")
    return data[offset:end].decode(errors="replace")


def _read_dynamic(
    data: bytes | mmap.mmap, order: str, elf_class: int, sections: list[Section], info: ElfInfo
) -> None:
    entry = order + ("qQ" if elf_class == 64 else "iI")
    size = struct.calcsize(entry)
    for _name, kind, offset, length, link in sections:
        if kind != SHT_DYNAMIC or link >= len(sections):
            continue
        strings = sections[link][2]
        for tag, value in struct.iter_unpack(entry, data[offset : offset + length - length % size]):
            if tag == 0:  # DT_NULL
                break
            if tag not in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                continue
            text = _cstr(data, strings + value)
            if tag == DT_NEEDED:
                info.needed.append(text)
            elif tag == DT_SONAME:
                info.soname = text
            elif tag == DT_RPATH:
                info.rpath += [p for p in text.split(":") if p]
            else:
                info.runpath += [p for p in text.split(":") if p]


def _version_names(elf: ELFFile) -> dict[int, str]:
    """Version index -> name, from both the definitions and the requirements sections."""
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

    names: dict[int, str] = {}
    for section in elf.iter_sections():
        if isinstance(section, GNUVerDefSection):
            for verdef, auxiliaries in section.iter_versions():
                first = next(iter(auxiliaries), None)
                if first is not None:
                    names[verdef["vd_ndx"]] = first.name
        elif isinstance(section, GNUVerNeedSection):
            for _verneed, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    names[aux["vna_other"]] = aux.name
    return names


# ELF symbol records, read in bulk with numpy: pyelftools parses ~10k symbols/s, too slow for
# libstdc++ and friends. Binding and type are the high and low nibbles of st_info.
_SYM_FIELDS = {
    64: [
        ("name", "u4"),
        ("info", "u1"),
        ("other", "u1"),
        ("shndx", "u2"),
        ("value", "u8"),
        ("size", "u8"),
    ],
    32: [
        ("name", "u4"),
        ("value", "u4"),
        ("size", "u4"),
        ("info", "u1"),
        ("other", "u1"),
        ("shndx", "u2"),
    ],
}
_GLOBAL_BINDS = (1, 2, 10)  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE
_KINDS = {1: "object", 2: "func", 10: "func"}  # STT_OBJECT, STT_FUNC, STT_GNU_IFUNC
_EXPORTED_VISIBILITY = (0, 3)  # STV_DEFAULT, STV_PROTECTED


def _read_symbols(
    elf: ELFFile, defined: list[DynamicSymbol], undefined: list[DynamicSymbol]
) -> None:
    import numpy as np  # only here: `revati record` reads ELF files before loading numpy
    from elftools.elf.gnuversions import GNUVerSymSection
    from elftools.elf.sections import SymbolTableSection

    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection) or dynsym["sh_entsize"] == 0:
        return
    order = "<" if elf.little_endian else ">"
    dtype = np.dtype([(name, order + code) for name, code in _SYM_FIELDS[elf.elfclass]])
    symbols = np.frombuffer(dynsym.data(), dtype=dtype)
    strings = dynsym.stringtable.data()
    versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
    versions = np.frombuffer(versym.data(), dtype=order + "u2") if versym is not None else None
    version_names = _version_names(elf)
    keep = np.isin(symbols["info"] >> 4, _GLOBAL_BINDS) & (symbols["name"] != 0)
    for index in np.flatnonzero(keep):
        sym = symbols[index]
        offset = int(sym["name"])
        name = strings[offset : strings.index(b"\0", offset)].decode(errors="replace")
        ndx = int(versions[index]) & 0x7FFF if versions is not None else 0
        entry = DynamicSymbol(name, version_names.get(ndx) if ndx > 1 else None,
                              _KINDS.get(int(sym["info"]) & 0xF, "other"))  # fmt: skip
        if sym["shndx"] == 0:  # SHN_UNDEF
            undefined.append(entry)
        elif int(sym["other"]) & 0x3 in _EXPORTED_VISIBILITY:
            defined.append(entry)


class LibrarySearch:
    """Resolves DT_NEEDED names to files in glibc `ld.so`'s order."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        variables = os.environ if env is None else env
        self.ld_library_path = [p for p in variables.get("LD_LIBRARY_PATH", "").split(":") if p]
        self._cache: dict[str, list[str]] | None = None

    def find(self, name: str, loader: ElfInfo) -> Path | None:
        """The file `loader`'s DT_NEEDED entry `name` resolves to, or None if none is found."""
        if "/" in name:
            return Path(name) if os.path.exists(name) else None
        origin = str(loader.path.resolve().parent)
        dirs = [] if loader.runpath else _expand(loader.rpath, origin)
        dirs += self.ld_library_path + _expand(loader.runpath, origin)
        for folder in dirs:
            candidate = Path(folder) / name
            if _loadable(candidate, loader):
                return candidate
        for cached in self.ldconfig_cache().get(name, []):
            if _loadable(Path(cached), loader):
                return Path(cached)
        for folder in DEFAULT_LIB_DIRS:
            candidate = Path(folder) / name
            if _loadable(candidate, loader):
                return candidate
        return None

    def ldconfig_cache(self) -> dict[str, list[str]]:
        """SONAME -> paths from `ldconfig -p`, in cache order (the loader takes the first fit)."""
        if self._cache is None:
            self._cache = _read_ldconfig_cache()
        return self._cache

    def closure(self, root: ElfInfo) -> tuple[list[ElfInfo], list[str]]:
        """Every library `root` loads (breadth first, each once) and the names not found."""
        loaded: dict[str, ElfInfo] = {}
        missing: list[str] = []
        queue = [(name, root) for name in root.needed]
        while queue:
            name, loader = queue.pop(0)
            if name in loaded or name in missing:
                continue
            found = self.find(name, loader)
            if found is None:
                missing.append(name)
                continue
            library = read_elf(found)
            loaded[name] = library
            queue += [(child, library) for child in library.needed]
        return list(loaded.values()), missing


def _expand(paths: list[str], origin: str) -> list[str]:
    return [p.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for p in paths]


def _loadable(candidate: Path, loader: ElfInfo) -> bool:
    """A file exists there and has the loader's ELF class and machine (ld.so skips others)."""
    if not candidate.is_file():
        return False
    try:
        with open(candidate, "rb") as f:
            header = _header(f.read(64))
    except OSError:
        return False
    if header is None:
        return False
    _order, elf_class, machine = header
    return (
        elf_class == loader.elf_class and MACHINES.get(machine, f"EM_{machine}") == loader.machine
    )


def _read_ldconfig_cache() -> dict[str, list[str]]:
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        cache: dict[str, list[str]] = {}
        for line in out.stdout.splitlines()[1:]:
            name, sep, target = line.strip().partition(" => ")
            if sep:
                cache.setdefault(name.split(" (")[0], []).append(target.strip())
        return cache
    return {}
