"""The ELF checks of a plugin file on malformed files: crafted headers, bad section links, truncations, byte flips.

Every malformed file must end in PluginError ("not a valid ELF shared library"), never IndexError or
struct.error; the real amsynth library must still pass.
"""
from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path

import pytest

from synth_probe.cli import main
from synth_probe.errors import PluginError
from synth_probe.synths.elf import dynamic_symbols, inspect_binary
from synth_probe.synths.plugin import check_plugin_file

AMSYNTH = Path("/usr/lib/vst/amsynth_vst.so")
needs_amsynth = pytest.mark.needs("amsynth")


def _sections(b: bytes) -> tuple[int, int, int]:
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", b, 0x3A)
    return shoff, shentsize, shnum


def _dynsym_header(b: bytes) -> int:
    shoff, shentsize, shnum = _sections(b)
    for k in range(shnum):
        if struct.unpack_from("<I", b, shoff + k * shentsize + 4)[0] == 11:
            return shoff + k * shentsize
    raise AssertionError("no dynamic symbol section")


def _refused(path: Path, match: str = "not a valid ELF shared library") -> str:
    with pytest.raises(PluginError, match=match) as info:
        check_plugin_file(path)
    return str(info.value)


def test_headers_cut_short(tmp_path):
    for name, data in {"e4.so": b"\x7fELF", "e12.so": b"\x7fELF\x02\x01\x01" + b"\0" * 5,
                       "e5.so": b"\x7fELF\x02", "e63.so": b"\x7fELF\x02\x01\x01" + b"\0" * 56}.items():
        (tmp_path / name).write_bytes(data)
        _refused(tmp_path / name)
    (tmp_path / "class.so").write_bytes(b"\x7fELF\x09\x01" + b"\0" * 58)
    assert "class 9" in _refused(tmp_path / "class.so")


def test_the_cli_says_so_in_one_line(tmp_path, capsys):
    (tmp_path / "e.so").write_bytes(b"\x7fELF")
    assert main(["params", str(tmp_path / "e.so")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid ELF shared library" in err and "Traceback" not in err


@needs_amsynth
def test_real_library_passes_and_lists_its_entry_point():
    assert check_plugin_file(AMSYNTH).format == "vst2"
    assert "VSTPluginMain" in dynamic_symbols(AMSYNTH)
    assert inspect_binary(AMSYNTH).problem == ""


@needs_amsynth
@pytest.mark.parametrize("field, value, match", [
    ("link", 999, "links to section 999"),
    ("link", 0, "not a string table"),  # section 0 is SHT_NULL
    ("offset", 2**40, "beyond the end of the file"),
    ("size", 2**40, "beyond the end of the file"),
    ("entsize", 1, "1-byte entries"),
])
def test_dynamic_symbol_section_that_points_elsewhere(tmp_path, field, value, match):
    b = bytearray(AMSYNTH.read_bytes())
    h = _dynsym_header(b)
    at, fmt = {"offset": (24, "<Q"), "size": (32, "<Q"), "link": (40, "<I"), "entsize": (56, "<Q")}[field]
    struct.pack_into(fmt, b, h + at, value)
    (tmp_path / "x.so").write_bytes(bytes(b))
    _refused(tmp_path / "x.so", match)


@needs_amsynth
def test_section_table_outside_the_file(tmp_path):
    b = bytearray(AMSYNTH.read_bytes())
    struct.pack_into("<Q", b, 0x28, len(b) - 10)
    (tmp_path / "x.so").write_bytes(bytes(b))
    _refused(tmp_path / "x.so", "section header table")
    struct.pack_into("<Q", b, 0x28, 0)
    (tmp_path / "y.so").write_bytes(bytes(b))
    _refused(tmp_path / "y.so", "no section header table")
    b = bytearray(AMSYNTH.read_bytes())
    struct.pack_into("<H", b, 0x3A, 8)  # section headers of 8 bytes
    (tmp_path / "z.so").write_bytes(bytes(b))
    _refused(tmp_path / "z.so", "8 bytes each")


@needs_amsynth
def test_truncations_of_a_real_library(tmp_path):
    """Every length up to 512 bytes, then every 61st byte, and around the section table: PluginError or pass."""
    size = AMSYNTH.stat().st_size
    shoff, shentsize, shnum = _sections(AMSYNTH.read_bytes())
    lengths = set(range(513)) | set(range(0, size, 61))
    lengths |= {shoff + d for d in range(-3, shnum * shentsize + 3)} | {size - 1}
    path = tmp_path / "cut.so"
    shutil.copyfile(AMSYNTH, path)
    outcome = {"refused": 0, "passed": 0}
    for n in sorted((x for x in lengths if 0 <= x < size), reverse=True):
        os.truncate(path, n)  # in place, shorter each time
        try:
            check_plugin_file(path)
            outcome["passed"] += 1
        except PluginError:
            outcome["refused"] += 1
    assert outcome["refused"] + outcome["passed"] == len([x for x in lengths if 0 <= x < size])
    assert outcome["passed"] == 0  # the section table sits at the end: every cut loses it


@needs_amsynth
def test_byte_flips_in_the_header_and_section_table(tmp_path):
    data = AMSYNTH.read_bytes()
    shoff, shentsize, shnum = _sections(data)
    path = tmp_path / "flip.so"
    shutil.copyfile(AMSYNTH, path)
    rng = random.Random(0)
    regions = [(0, 64), (shoff, shoff + shnum * shentsize)]
    fd = os.open(path, os.O_RDWR)
    try:
        for _ in range(1500):
            lo, hi = rng.choice(regions)
            pos = rng.randrange(lo, hi)
            os.pwrite(fd, bytes([rng.randrange(256)]), pos)
            try:
                check_plugin_file(path)
            except PluginError:
                pass
            os.pwrite(fd, data[pos:pos + 1], pos)
    finally:
        os.close(fd)
    check_plugin_file(path)  # restored: passes again


def test_not_a_regular_file():
    _refused(Path("/dev/zero"), "not a regular file")


@needs_amsynth
def test_doctor_reports_malformed_elf(tmp_path, capsys):
    (tmp_path / "half.so").write_bytes(AMSYNTH.read_bytes()[:5000])
    assert main(["doctor", str(tmp_path / "half.so")]) == 1
    cap = capsys.readouterr()
    assert "[FAIL] file" in cap.out and "not a valid ELF shared library" in cap.out
    assert "Traceback" not in cap.out + cap.err
