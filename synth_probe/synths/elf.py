"""What a plugin file is, from its bytes: ELF header and exported symbols, read with every offset checked.

:func:`inspect_binary` never raises on a malformed file: an ELF file whose
header, section table, symbol table or string table is cut short, points
outside the file or names a section that does not exist comes back with
``problem`` set (what is wrong, and where), and
:func:`synth_probe.synths.plugin.check_plugin_file` turns that into a
:class:`~synth_probe.errors.PluginError` saying the file is not a valid ELF
shared library. The file is memory-mapped, never read whole.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["BinaryInfo", "inspect_binary", "dynamic_symbols", "MalformedElf", "ELF_MACHINES", "MACHO_MAGICS",
           "VST2_ENTRY", "VST3_ENTRY"]

VST2_ENTRY = ("VSTPluginMain", "main", "main_plugin")
VST3_ENTRY = ("GetPluginFactory",)
ELF_MACHINES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86_64", 183: "aarch64", 243: "RISC-V"}
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
}
#: sizes of the 64-bit ELF header, section header and symbol
EHDR64, SHDR64, SYM64 = 64, 64, 24
SHT_STRTAB, SHT_DYNSYM = 3, 11


class MalformedElf(ValueError):
    """An ELF file whose structure points outside itself or is cut short (the message says where)."""


@dataclass(frozen=True)
class BinaryInfo:
    """What a file's first bytes say it is.

    ``kind`` is one of ``"elf"``, ``"pe"`` (Windows), ``"macho"`` (macOS), ``"text"``,
    ``"empty"`` or ``"unknown"``. For ELF files ``bits``, ``machine`` (e_machine),
    ``elf_type`` (3 = shared object) and the exported plugin entry points are filled in;
    ``problem`` says why an ELF file is malformed (empty when it is not).
    """

    kind: str
    bits: int = 0
    machine: int = 0
    elf_type: int = 0
    entry_points: tuple[str, ...] = ()
    problem: str = ""

    @property
    def machine_name(self) -> str:
        return ELF_MACHINES.get(self.machine, f"machine {self.machine}")


def inspect_binary(path: str | os.PathLike) -> BinaryInfo:
    """Identify ``path`` by its magic bytes; for a 64-bit little-endian ELF file, list its plugin entry points.

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    with open(path, "rb") as f:
        head = f.read(EHDR64)
    if not head:
        return BinaryInfo("empty")
    if head[:4] == b"\x7fELF":
        return _inspect_elf(path, head)
    if head[:2] == b"MZ":
        return BinaryInfo("pe")
    if head[:4] in MACHO_MAGICS:
        return BinaryInfo("macho")
    try:
        head.decode("utf-8")
        return BinaryInfo("text")
    except UnicodeDecodeError:
        return BinaryInfo("unknown")


def _inspect_elf(path: str | os.PathLike, head: bytes) -> BinaryInfo:
    if len(head) < 20:
        return BinaryInfo("elf", problem=f"the file ends after {len(head)} bytes, inside the ELF header")
    if head[4] not in (1, 2) or head[5] not in (1, 2):
        return BinaryInfo("elf", problem=f"its ELF header gives class {head[4]} and byte order {head[5]} "
                                         "(1 or 2 each are defined)")
    bits = 64 if head[4] == 2 else 32
    little = head[5] == 1
    elf_type, machine = struct.unpack(("<" if little else ">") + "HH", head[16:20])
    if bits != 64 or not little:  # refused for its class or machine; its symbols are not read
        return BinaryInfo("elf", bits, machine, elf_type)
    try:
        names = dynamic_symbols(path)
    except MalformedElf as e:
        return BinaryInfo("elf", bits, machine, elf_type, problem=str(e))
    entries = tuple(s for s in VST2_ENTRY + VST3_ENTRY if s in names)
    return BinaryInfo("elf", bits, machine, elf_type, entries)


def dynamic_symbols(path: str | os.PathLike) -> set[str]:
    """Names of the defined dynamic symbols of a 64-bit little-endian ELF file.

    Raises
    ------
    MalformedElf
        A header, section table, symbol or string table that lies (partly) outside the
        file, a section link to a section that does not exist, or impossible entry sizes.
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < EHDR64:
            raise MalformedElf(f"the file ends after {size} bytes, inside the 64-byte ELF header")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _symbols(data, size)


def _unpack(fmt: str, data: Any, off: int, size: int, what: str) -> tuple:
    end = off + struct.calcsize(fmt)
    if off < 0 or end > size:
        raise MalformedElf(f"{what} (bytes {off}..{end}) lies beyond the end of the file ({size} bytes)")
    return struct.unpack_from(fmt, data, off)


def _check_span(off: int, length: int, size: int, what: str) -> None:
    if off < 0 or length < 0 or off + length > size:
        raise MalformedElf(f"{what} (bytes {off}..{off + length}) lies beyond the end of the file ({size} bytes)")


def _sections(data: Any, size: int) -> list[tuple[int, int, int, int, int]]:
    """``(type, offset, size, link, entsize)`` of every section header, each checked against the file."""
    shoff, = _unpack("<Q", data, 0x28, size, "the section table offset")
    shentsize, shnum = _unpack("<HH", data, 0x3A, size, "the section table size")
    if shoff == 0:
        raise MalformedElf("it has no section header table, so its exported symbols cannot be read")
    if shentsize < SHDR64:
        raise MalformedElf(f"its section headers are {shentsize} bytes each; a 64-bit ELF file needs {SHDR64}")
    if shnum == 0:  # more than 0xff00 sections: the count is in the first header's sh_size
        shnum, = _unpack("<Q", data, shoff + 0x20, size, "the extended section count")
    _check_span(shoff, shnum * shentsize, size, f"the section header table ({shnum} entries)")
    out = []
    for k in range(shnum):
        _n, sh_type, _fl, _ad, sh_offset, sh_size, sh_link, _i, _al, sh_entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + k * shentsize)
        out.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    return out


def _symbols(data: Any, size: int) -> set[str]:
    sections = _sections(data, size)
    out: set[str] = set()
    for i, (sh_type, off, length, link, entsize) in enumerate(sections):
        if sh_type != SHT_DYNSYM:
            continue
        if entsize < SYM64:
            raise MalformedElf(f"section {i} (dynamic symbols) has {entsize}-byte entries; {SYM64} are needed")
        _check_span(off, length, size, f"section {i} (dynamic symbols)")
        if link >= len(sections):
            raise MalformedElf(f"section {i} (dynamic symbols) links to section {link}; the file has "
                               f"{len(sections)} sections")
        str_type, str_off, str_len, _l, _e = sections[link]
        if str_type != SHT_STRTAB:
            raise MalformedElf(f"section {i} (dynamic symbols) links to section {link}, which is not a string table")
        _check_span(str_off, str_len, size, f"section {link} (symbol names)")
        for k in range(length // entsize):
            st_name, _info, _other, st_shndx = struct.unpack_from("<IBBH", data, off + k * entsize)
            if st_shndx == 0 or st_name == 0:
                continue  # undefined (imported) symbol
            if st_name >= str_len:
                raise MalformedElf(f"symbol {k} of section {i} names byte {st_name} of a {str_len}-byte string table")
            end = data.find(b"\0", str_off + st_name, str_off + str_len)
            if end < 0:
                raise MalformedElf(f"symbol {k} of section {i}: its name runs past the end of its string table")
            out.add(bytes(data[str_off + st_name:end]).decode("utf-8", "replace"))
    return out
