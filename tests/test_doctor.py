"""``synth-probe doctor`` and ``synth-probe synths`` on real plugins and on gcc-built libraries."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from synth_probe.cli import main
from synth_probe.synths.plugin_doctor import classify_row

pytestmark = pytest.mark.needs("amsynth", "gcc")

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SOURCE = Path(__file__).parent / "plugins" / "fake_vst.c"


def gcc(out: Path, *flags: str, source: Path = SOURCE, libs: tuple[str, ...] = ()) -> Path:
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(source), "-lm", *libs],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.delenv("DISPLAY", raising=False)
        yield


def doctor_json(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["doctor", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def checks(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


def test_doctor_reports_every_amsynth_parameter_applied(capsys):
    rc, report = doctor_json(capsys, AMSYNTH)
    assert rc == 0 and report["ok"]
    assert len(report["params"]) == 41
    assert {r["status"] for r in report["params"]} == {"applied"}
    c = checks(report)
    assert c["file"]["status"] == "ok" and c["load"]["status"] == "ok" and c["render"]["status"] == "ok"
    assert "all 41 parameters are applied" in c["parameters"]["detail"]
    cutoff = next(r for r in report["params"] if r["name"] == "filter_cutoff")
    assert cutoff["set_text"] != cutoff["default_text"]


def test_doctor_text_output(capsys):
    rc = main(["doctor", AMSYNTH, "--no-params"])
    out = capsys.readouterr().out
    assert rc == 0 and "[  ok] load" in out and "plugin OK" in out


def test_doctor_finds_a_parameter_the_plugin_ignores(capsys, tmp_path):
    lib = gcc(tmp_path / "fake_vst.so")
    rc, report = doctor_json(capsys, str(lib))
    assert rc == 1 and not report["ok"]
    status = {r["name"]: r["status"] for r in report["params"]}
    assert status == {"level": "applied", "crash": "applied", "stuck": "not applied"}
    stuck = next(r for r in report["params"] if r["name"] == "stuck")
    assert stuck["readback"] == 1.0 and stuck["set_text"] == "0.25"  # DawDreamer's value lies; the text does not
    assert "'stuck' (not applied)" in checks(report)["parameters"]["detail"]


def test_doctor_on_a_plugin_that_needs_x(capsys, tmp_path):
    lib = gcc(tmp_path / "needs_x.so", "-DEXIT_ON_LOAD")
    rc, report = doctor_json(capsys, str(lib))
    assert rc == 1
    load = checks(report)["load"]
    assert load["status"] == "FAIL" and "exited with status 1" in load["detail"]
    assert "xvfb-run -a" in load["detail"]


def test_doctor_on_missing_shared_library(capsys, tmp_path):
    dep_src = tmp_path / "dep.c"
    dep_src.write_text("int dep_value(void) { return 1; }\n")
    gcc(tmp_path / "libsynthprobedep.so", source=dep_src)
    lib = gcc(tmp_path / "needs_dep.so", "-L" + str(tmp_path), libs=("-Wl,--no-as-needed", "-lsynthprobedep"))
    (tmp_path / "libsynthprobedep.so").unlink()
    rc, report = doctor_json(capsys, str(lib))
    assert rc == 1
    libs = checks(report)["libraries"]
    assert libs["status"] == "FAIL" and "libsynthprobedep.so" in libs["detail"]
    assert "load" not in checks(report)
    from synth_probe.errors import PluginError
    from synth_probe.synths.plugin import PluginSynth

    with pytest.raises(PluginError, match=r"Missing shared libraries \(ldd\): libsynthprobedep.so"):
        PluginSynth(lib)


def test_doctor_on_foreign_and_non_plugins(capsys, tmp_path):
    dll = tmp_path / "TAL-NoiseMaker.dll"
    dll.write_bytes(b"MZ\x90\x00" + b"\x00" * 60)
    rc, report = doctor_json(capsys, str(dll))
    assert rc == 1 and "Windows binary" in checks(report)["file"]["detail"]
    macho = tmp_path / "plugin.dylib"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + b"\x00" * 60)
    rc, report = doctor_json(capsys, str(macho))
    assert rc == 1 and "macOS binary" in checks(report)["file"]["detail"]
    plain = tmp_path / "plain.c"
    plain.write_text("int answer(void) { return 42; }\n")
    rc, report = doctor_json(capsys, str(gcc(tmp_path / "libplain.so", source=plain)))
    assert rc == 1 and "not a plugin" in checks(report)["file"]["detail"]
    rc, report = doctor_json(capsys, str(tmp_path / "missing.so"))
    assert rc == 1 and "does not exist" in checks(report)["file"]["detail"]


def test_classify_row():
    base = {"default_text": "0", "set_text": "1", "after_render_text": "1", "restored_text": "0"}
    assert classify_row(base) == "applied"
    assert classify_row({**base, "set_text": "0", "after_render_text": "0"}) == "not applied"
    assert classify_row({**base, "after_render_text": "0"}) == "momentary"  # back to its default by itself
    assert classify_row({**base, "after_render_text": "0.5"}) == "reset while rendering"
    assert classify_row({**base, "restored_text": "1"}) == "not restored"


def test_doctor_notes_a_momentary_parameter_and_passes(capsys, tmp_path):
    """A button that puts itself back to its default after a write (TAL's envelope reset) is a note."""
    lib = gcc(tmp_path / "fake_momentary.so", "-DMOMENTARY")
    rc, report = doctor_json(capsys, str(lib))
    assert rc == 0 and report["ok"]
    status = {r["name"]: r["status"] for r in report["params"]}
    assert status == {"level": "applied", "crash": "applied", "trigger": "momentary"}
    trigger = next(r for r in report["params"] if r["name"] == "trigger")
    assert trigger["set_text"] == "1.00" and trigger["after_render_text"] == trigger["default_text"] == "0.00"
    c = checks(report)
    assert c["parameters"]["status"] == "ok" and "1 of them momentary" in c["parameters"]["detail"]
    assert c["momentary"]["status"] == "note" and "2 'trigger'" in c["momentary"]["detail"]
    rc = main(["doctor", str(lib), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "[note] momentary" in out and "result: plugin OK" in out


def test_synths_lists_builtin_and_found_plugins(capsys, tmp_path):
    rc = main(["synths"])
    out = capsys.readouterr().out
    assert rc == 0 and "noisemaker" in out and AMSYNTH in out  # /usr/lib/vst is a standard folder
    gcc(tmp_path / "fake_vst.so")
    (tmp_path / "notes.so").write_text("text")
    rc = main(["synths", "--dir", str(tmp_path), "--check", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rc == 0 and rows["noisemaker"]["kind"] == "builtin"
    assert rows["fake_vst"]["kind"] == "vst2" and rows["fake_vst"]["info"].startswith("3 parameters")
    assert rows["notes"]["info"].startswith("not loadable")


def test_synths_honours_vst_path_env(capsys, tmp_path, monkeypatch):
    gcc(tmp_path / "from_env.so")
    monkeypatch.setenv("LXVST_PATH", str(tmp_path))
    rc = main(["synths", "--json"])
    paths = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert rc == 0 and str(tmp_path / "from_env.so") in paths and AMSYNTH in paths
