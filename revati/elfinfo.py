"""What the dynamic loader would see in an ELF file, read with pyelftools.

`read_elf(path)` gathers the dynamic section (SONAME, DT_NEEDED, DT_RPATH, DT_RUNPATH), the
dynamic symbols a file defines and the ones it leaves undefined (with their GNU symbol
versions), and its section names. `LibrarySearch` resolves DT_NEEDED names the way glibc's
`ld.so` does: DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the
`ldconfig` cache, then the default directories. `revati doctor` and the entry-point generator
build on these; nothing here runs the program.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from revati.errors import RevatiRunError

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
    defined: list[DynamicSymbol] = field(default_factory=list)
    undefined: list[DynamicSymbol] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)

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
        with open(path, "rb") as f:
            elf = ELFFile(f)
            info = ElfInfo(path, elf["e_machine"], elf.elfclass)
            info.sections = [section.name for section in elf.iter_sections()]
            _read_dynamic(elf, info)
            _read_symbols(elf, info)
    except OSError as e:
        raise RevatiRunError(f"cannot read {path}: {e.strerror}") from e
    except ELFError as e:
        raise RevatiRunError(f"{path} is not a readable ELF file ({e})") from e
    return info


# Dynamic tags that carry a string, and the pyelftools attribute holding it.
_STRING_TAGS = {
    "DT_NEEDED": "needed",
    "DT_SONAME": "soname",
    "DT_RPATH": "rpath",
    "DT_RUNPATH": "runpath",
}


def _read_dynamic(elf: ELFFile, info: ElfInfo) -> None:
    for section in elf.iter_sections():
        if not isinstance(section, DynamicSection):
            continue
        for tag in section.iter_tags():
            attribute = _STRING_TAGS.get(tag.entry.d_tag)
            if attribute is None:
                continue
            text = str(getattr(tag, attribute))
            if attribute == "needed":
                info.needed.append(text)
            elif attribute == "soname":
                info.soname = text
            elif attribute == "rpath":
                info.rpath += [p for p in text.split(":") if p]
            else:
                info.runpath += [p for p in text.split(":") if p]


def _version_names(elf: ELFFile) -> dict[int, str]:
    """Version index -> name, from both the definitions and the requirements sections."""
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


def _read_symbols(elf: ELFFile, info: ElfInfo) -> None:
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
            info.undefined.append(entry)
        elif int(sym["other"]) & 0x3 in _EXPORTED_VISIBILITY:
            info.defined.append(entry)


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
    if not candidate.is_file() or not is_elf(candidate):
        return False
    try:
        with open(candidate, "rb") as f:
            elf = ELFFile(f)
            return elf.elfclass == loader.elf_class and elf["e_machine"] == loader.machine
    except (OSError, ELFError):
        return False


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
