"""Every subcommand, fed bad input through the CLI: exit status 2, one line on stderr, never a traceback.

The table holds missing, empty, truncated, wrong-type and hostile files; numbers out of range
(0, negative, NaN, 1e9); existing and unwritable output paths. Each case is refused before any
render or fit (validation comes first), so the whole table runs in seconds on a dataset of
8 renders and a mean-baseline model made once.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_probe.cli import main

AMSYNTH = Path("/usr/lib/vst/amsynth_vst.so")
SR = 8000


# ------------------------------------------------------------------------------ hostile files
def dynsym_bad_link(data: bytes) -> bytes:
    """A copy of an ELF library whose dynamic-symbol section links to section 999."""
    b = bytearray(data)
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", b, 0x3A)
    for k in range(shnum):
        off = shoff + k * shentsize
        if struct.unpack_from("<I", b, off + 4)[0] == 11:  # SHT_DYNSYM
            struct.pack_into("<I", b, off + 40, 999)
            return bytes(b)
    raise AssertionError("no dynamic symbol section")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Bad files of every kind, made once."""
    d = tmp_path_factory.mktemp("bad")
    f: dict[str, Path] = {"dir": d / "a-folder", "missing": d / "missing.json"}
    f["dir"].mkdir()
    contents: dict[str, bytes] = {
        "empty.json": b"",
        "truncated.json": b'{"cutoff": 0.',
        "list.json": b"[0.1, 0.2]",
        "deep.json": b"[" * 200_000 + b"]" * 200_000,
        "deepobj.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "latin1.json": b'{"cutoff": "\xe9t\xe9"}',
        "outside.json": b'{"cutoff": 2.0}',
        "nan.json": b'{"cutoff": NaN}',
        "unknown.json": b'{"cutof": 0.5}',
        "string.json": b'"cutoff"',
        "empty.csv": b"",
        "garbage.csv": b"\x00\xff\xfe" * 50,
        "table.txt": b"cutoff\n0.5\n",
        "text.wav": b"this is not audio\n",
        "empty.wav": b"",
        "file": b"a plain file\n",
        "empty.so": b"",
        "text.so": b"not a plugin\n",
        "elf4.so": b"\x7fELF",
        "elf12.so": b"\x7fELF\x02\x01\x01" + b"\x00" * 5,
        "elf-badclass.so": b"\x7fELF\x07\x09" + b"\x00" * 58,
    }
    for name, data in contents.items():
        f[name] = d / name
        f[name].write_bytes(data)
    if AMSYNTH.exists():
        lib = AMSYNTH.read_bytes()
        f["half.so"] = d / "half.so"
        f["half.so"].write_bytes(lib[: len(lib) // 2])
        f["badlink.so"] = d / "badlink.so"
        f["badlink.so"].write_bytes(dynsym_bad_link(lib))
    f["target.wav"] = d / "target.wav"
    t = np.arange(SR) / SR
    sf.write(str(f["target.wav"]), 0.5 * np.sin(2 * np.pi * 220 * t), SR)
    return f


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """8 real renders (8 kHz, 0.25 s): the smallest dataset train and evaluate accept."""
    from synth_probe.dataset import generate
    from synth_probe.synths.base import RenderSettings

    out = tmp_path_factory.mktemp("data") / "tiny"
    settings = RenderSettings(note=60, velocity=100, note_length=0.2, render_length=0.25, sample_rate=SR)
    result = generate("noisemaker", out, 8, sampler="timbral", seed=1, settings=settings, jobs=1, progress=False)
    assert result.ok, result.summary()
    return out


@pytest.fixture(scope="module")
def model(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "mean"
    assert main(["train", "mean", "--data", str(tiny), "--out", str(out), "--params", "cutoff,resonance"]) == 0
    return out


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def check_refused(argv: list[str], capsys, expect: str | None = None) -> str:
    rc, out, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err, err
    assert rc == 2, (argv, rc, err)
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith(f"synth-probe {argv[0]}: error: "), lines[0]
    if expect is not None:
        assert expect.lower() in lines[0].lower(), (expect, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------ the table
# (argv with {placeholders} for the files above, a piece of the expected message)
CASES: list[tuple[str, str]] = [
    # params: plugin files
    ("params {missing}", "does not exist"),
    ("params {dir}", "directory"),
    ("params {empty.so}", "empty file"),
    ("params {text.so}", "text file"),
    ("params {elf4.so}", "not a valid ELF shared library"),
    ("params {elf12.so}", "not a valid ELF shared library"),
    ("params {elf-badclass.so}", "not a valid ELF shared library"),
    ("params {half.so}", "not a valid ELF shared library"),
    ("params {badlink.so}", "links to section 999"),
    ("params /dev/zero", "not a regular file"),
    ("params nosuchsynth", None),
    ("params noisemaker --format xml", "invalid choice"),
    ("synths --dir {file}", "not a folder"),
    ("synths --dir {missing}", "not a folder"),
    # render: outputs, numbers, patch files
    ("render noisemaker -o {out}/p.txt", "extension '.txt'"),
    ("render noisemaker -o /dev/full", "no extension"),
    ("render noisemaker -o {dir}", "folder"),
    ("render noisemaker -o {file}/x.wav", "is a file, not a folder"),
    ("render noisemaker -o {out}/x.wav --render-length 1e9", "<= 120"),
    ("render noisemaker -o {out}/x.wav --render-length 0", "> 0"),
    ("render noisemaker -o {out}/x.wav --render-length -1", "> 0"),
    ("render noisemaker -o {out}/x.wav --render-length nan", "finite"),
    ("render noisemaker -o {out}/x.wav --note-length 1e9", "<= 120"),
    ("render noisemaker -o {out}/x.wav --note-length nan", "finite"),
    ("render noisemaker -o {out}/x.wav --sample-rate 0", ">= 8000"),
    ("render noisemaker -o {out}/x.wav --sample-rate 1000000000", "<= 192000"),
    ("render noisemaker -o {out}/x.wav --note 128", "<= 127"),
    ("render noisemaker -o {out}/x.wav --velocity 0", ">= 1"),
    ("render noisemaker -o {out}/x.wav --seed -1", ">= 0"),
    ("render noisemaker -o {out}/x.wav --patch {missing}", "does not exist"),
    ("render noisemaker -o {out}/x.wav --patch {dir}", "folder"),
    ("render noisemaker -o {out}/x.wav --patch {empty.json}", "not valid JSON"),
    ("render noisemaker -o {out}/x.wav --patch {truncated.json}", "not valid JSON"),
    ("render noisemaker -o {out}/x.wav --patch {list.json}", "holds a JSON array"),
    ("render noisemaker -o {out}/x.wav --patch {string.json}", "holds a JSON string"),
    ("render noisemaker -o {out}/x.wav --patch {deep.json}", "too deeply"),
    ("render noisemaker -o {out}/x.wav --patch {deepobj.json}", "too deeply"),
    ("render noisemaker -o {out}/x.wav --patch {latin1.json}", "not UTF-8"),
    ("render noisemaker -o {out}/x.wav --patch /dev/zero", "larger than"),
    ("render noisemaker -o {out}/x.wav --patch {outside.json}", "outside [0, 1]"),
    ("render noisemaker -o {out}/x.wav --patch {nan.json}", "NaN"),
    ("render noisemaker -o {out}/x.wav --patch {unknown.json}", "unknown parameter 'cutof'"),
    ("render noisemaker -o {out}/x.wav --set cutoff=loud", "not a number"),
    ("render noisemaker -o {out}/x.wav --set cutoff", "NAME=VALUE"),
    ("render noisemaker -o {out}/x.wav --set cutoff=40kHz", "cutoff=40kHz is outside 0 Hz … 22.1 kHz"),
    ("render noisemaker -o {out}/x.wav --set ampattack=5min", "unknown unit 'min'"),
    ("render noisemaker -o {out}/x.wav --set cutoff=20ms", "cutoff is in Hz"),
    ("render noisemaker -o {out}/x.wav --set filtertype=LP99", "not one of its choices"),
    ("render noisemaker -o {out}/x.wav --set cutof=0.5", "Did you mean 'cutoff'"),
    ("render noisemaker -o {out}/x.wav --set =0.5", "no name"),
    ("render noisemaker -o {out}/x.wav --set cutoff=0.4 resonance=0.2", "one NAME=VALUE each"),
    # doctor: numbers (its file checks are a report, exit 1: see test_doctor_reports_malformed_elf)
    ("doctor {half.so} --sample-rate 0", ">= 8000"),
    # generate: outputs, numbers, patch tables
    ("generate noisemaker --n 4 --out {file}", "existing file"),
    ("generate noisemaker --n 4 --out {file}/sub", "is a file, not a folder"),
    ("generate noisemaker --n 0 --out {out}/d", ">= 1"),
    ("generate noisemaker --n -5 --out {out}/d", ">= 1"),
    ("generate noisemaker --n 1e9 --out {out}/d", "whole number"),
    ("generate noisemaker --n 4 --out {out}/d --render-length 1e9", "<= 120"),
    ("generate noisemaker --n 4 --out {out}/d --note-length nan", "finite"),
    ("generate noisemaker --n 4 --out {out}/d --sample-rate 0", ">= 8000"),
    ("generate noisemaker --n 4 --out {out}/d --jobs 0", ">= 1"),
    ("generate noisemaker --n 4 --out {out}/d --jobs 1000000000", "<= 256"),
    ("generate noisemaker --n 4 --out {out}/d --shard-size 0", ">= 1"),
    ("generate noisemaker --n 4 --out {out}/d --timeout nan", "finite"),
    ("generate noisemaker --n 4 --out {out}/d --timeout -1", ">= 0"),
    ("generate noisemaker --n 4 --out {out}/d --seed -1", ">= 0"),
    ("generate noisemaker --n 4 --out {out}/d --grid 1", ">= 2"),
    ("generate noisemaker --n 4 --out {out}/d --fix cutoff=2", "outside [0, 1]"),
    ("generate noisemaker --n 4 --out {out}/d --fix ampattack=1ms", "ampattack=1ms is outside 3 ms … 25 s"),
    ("generate noisemaker --n 4 --out {out}/d --fix osc1tune=+30st", "not one of its choices"),
    ("generate noisemaker --n 4 --out {out}/d --fix cutoff=0.4 resonance=0.2", "one NAME=VALUE each"),
    ("generate noisemaker --n 4 --out {out}/d --vary nosuch", "nosuch"),
    ("generate noisemaker --out {out}/d --patches {missing}", "does not exist"),
    ("generate noisemaker --out {out}/d --patches {deep.json}", "too deeply"),
    ("generate noisemaker --out {out}/d --patches {string.json}", "holds a JSON string"),
    ("generate noisemaker --out {out}/d --patches {table.txt}", "unsupported format"),
    ("generate noisemaker --out {out}/d --patches {empty.csv}", "patch table"),
    ("generate noisemaker --out {out}/d --patches {garbage.csv}", "patch table"),
    # compare: outputs, numbers, reference folders and sensitivity tables
    ("compare noisemaker noisemaker --out {file}", "existing file"),
    ("compare noisemaker noisemaker --out {out}/r --n 0", ">= 1"),
    ("compare noisemaker noisemaker --out {out}/r --jobs 0", ">= 1"),
    ("compare noisemaker noisemaker --out {out}/r --render-length 1e9", "<= 120"),
    ("compare noisemaker noisemaker --out {out}/r --note 128", "<= 127"),
    ("compare noisemaker noisemaker --out {out}/r --report-mb 0", "> 0"),
    ("compare noisemaker nosuchsynth --out {out}/r", "nosuchsynth"),
    ("compare noisemaker {dir} --out {out}/r", "probes.csv"),
    ("compare noisemaker noisemaker --out {out}/r --sensitivity {deep.json} {missing}", "too deeply"),
    ("compare noisemaker noisemaker --out {out}/r --sensitivity {list.json} {missing}", "holds a JSON array"),
    ("compare noisemaker noisemaker --out {out}/r --patches {string.json}", "holds a JSON string"),
    # sensitivity and identifiability
    ("sensitivity noisemaker --out {file}", "existing file"),
    ("sensitivity noisemaker --out {out}/r --render-length 1e9", "<= 120"),
    ("sensitivity noisemaker --out {out}/r --bases 0", ">= 1"),
    ("sensitivity noisemaker --out {out}/r --jobs -1", ">= 1"),
    ("sensitivity noisemaker --out {out}/r --seed -1", ">= 0"),
    ("sensitivity noisemaker --out {out}/r --params nosuch", "unknown parameter 'nosuch'"),
    ("sensitivity noisemaker --out {out}/r --sampler bogus", "unknown sampler"),
    ("identifiability noisemaker --out {file}", "existing file"),
    ("identifiability noisemaker --out {out}/r --steps nan", "steps"),
    ("identifiability noisemaker --out {out}/r --tolerance -1", ">= 0"),
    ("identifiability noisemaker --out {out}/r --budget -1", ">= 0"),
    ("identifiability noisemaker --out {out}/r --render-length 1e9", "<= 120"),
    ("identifiability noisemaker --out {out}/r --params nosuch", "unknown parameter 'nosuch'"),
    # train
    ("train mean --data {missing} --out {out}/m", None),
    ("train mean --data {file} --out {out}/m", None),
    ("train mean --data {dir} --out {out}/m", None),
    ("train mean --data {tiny} --out {file}", "existing file"),
    ("train mean --data {tiny} --out {file}/m", "is a file, not a folder"),
    ("train mean --data {tiny} --out {out}/m --limit 0", ">= 1"),
    ("train mean --data {tiny} --out {out}/m --limit -3", ">= 1"),
    ("train mean --data {tiny} --out {out}/m --test-fraction 1", "< 1"),
    ("train mean --data {tiny} --out {out}/m --test-fraction nan", "finite"),
    ("train mean --data {tiny} --out {out}/m --jobs 0", ">= 1"),
    ("train mean --data {tiny} --out {out}/m --seed -1", ">= 0"),
    ("train mean --data {tiny} --out {out}/m --params nosuch", "unknown parameter 'nosuch'"),
    ("train mean --data {tiny} --out {out}/m --set nokey", "KEY=VALUE"),
    ("train mean --data {tiny} --out {out}/m --set bogus=1", "no parameter 'bogus'"),
    ("train knn --data {tiny} --out {out}/m --set n_neighbors=" + "[" * 5000, "too deeply"),
    ("train nosuchmodel --data {tiny} --out {out}/m", "invalid choice"),
    # evaluate
    ("evaluate {missing} --data {tiny}", None),
    ("evaluate {dir} --data {tiny}", "not a saved model"),
    ("evaluate {list.json} --data {tiny}", "holds a JSON array"),
    ("evaluate {deep.json} --data {tiny}", "too deeply"),
    ("evaluate {latin1.json} --data {tiny}", "not UTF-8"),
    ("evaluate {model} --data {missing}", None),
    ("evaluate {model} --data {tiny} --json {dir}", "folder"),
    ("evaluate {model} --data {tiny} --json {file}/x.json", "is a file, not a folder"),
    ("evaluate {model} --data {tiny} --limit 0", ">= 1"),
    ("evaluate {model} --data {tiny} --audio -1", ">= 0"),
    ("evaluate {model} --data {tiny} --jobs 0", ">= 1"),
    ("evaluate {model} --data {tiny} --json /dev/full", "No space left on device"),  # an OSError at the end
    # predictability
    ("predictability noisemaker --out {file}", "existing file"),
    ("predictability noisemaker --out {out}/r --cache {file}", "existing file"),
    ("predictability noisemaker --out {out}/r --n 5", ">= 20"),
    ("predictability noisemaker --out {out}/r --test-fraction 0", "> 0"),
    ("predictability noisemaker --out {out}/r --test-fraction nan", "finite"),
    ("predictability noisemaker --out {out}/r --jobs 0", ">= 1"),
    ("predictability noisemaker --out {out}/r --epochs 0", ">= 1"),
    ("predictability noisemaker --out {out}/r --set nodot=1", "MODEL.KEY=VALUE"),
    # tune (the storage URL forms are in test_storage_secrets_never_printed)
    ("tune noisemaker --param cutoff --out {file} --studies {out}/s", "existing file"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {file}", "existing file"),
    ("tune noisemaker --param cutof --out {out}/r --studies {out}/s", "unknown parameter 'cutof'"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --trials -1", ">= 0"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --timeout 0", "> 0"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --timeout nan", "finite"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --jobs 0", ">= 1"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --heartbeat 0", ">= 1"),
    ("tune noisemaker --param cutoff --out {out}/r --studies {out}/s --families nosuch", "unknown model"),
    # match
    ("match {target.wav} --model {model} --out {file}", "existing file"),
    ("match {target.wav} --model {model} --out {file}/sub", "is a file, not a folder"),
    ("match {target.wav} --model {model} --out {out}/m --refine -1", ">= 0"),
    ("match {target.wav} --model {model} --out {out}/m --note 200", "<= 127"),
    ("match {target.wav} --model {model} --out {out}/m --seed -1", ">= 0"),
    ("match {target.wav} --model {missing} --out {out}/m", "not a saved model"),
    ("match {target.wav} --model {dir} --out {out}/m", "not a saved model"),
    ("match {missing} --model {model} --out {out}/m", "does not exist"),
    ("match {empty.wav} --model {model} --out {out}/m", "cannot be read"),
    ("match {text.wav} --model {model} --out {out}/m", "cannot be read"),
    ("match {dir} --model {model} --out {out}/m", "folder"),
]


def _case(template: str, expect: str | None):
    """A row of CASES; the rows built from amsynth's file need the package (see conftest.SYSTEM_TOOLS)."""
    plugin_file = "{half.so}" in template or "{badlink.so}" in template
    return pytest.param(template, expect, marks=pytest.mark.needs("amsynth")) if plugin_file else (template, expect)


@pytest.mark.parametrize("template, expect", [_case(*c) for c in CASES], ids=[c[0][:110] for c in CASES])
def test_bad_input_is_one_clean_line(template, expect, files, tiny, model, tmp_path, capsys):
    names = {k: str(v) for k, v in files.items()}
    names.update(out=str(tmp_path), tiny=str(tiny), model=str(model))
    argv = [re.sub(r"\{([^{}]+)\}", lambda m: names[m.group(1)], part) for part in template.split()]
    before = sorted(p.name for p in tmp_path.iterdir())
    check_refused(argv, capsys, expect)
    # refused before any work: nothing new in the scratch folder the outputs would go to
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_commands_without_a_case_are_listed():
    """Every subcommand has rows in the table (a new command must add its own)."""
    import pkgutil

    import synth_probe.commands as commands

    names = {m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    covered = {c[0].split()[0] for c in CASES} | {"doctor"}
    assert names <= covered, names - covered
