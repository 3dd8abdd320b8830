"""`synth-probe compare`: the emulation against a small reference folder of its own renders, a synth pair,
the exact nearest-reference search, and the agreement of two sensitivity tables."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_probe.cli import main
from synth_probe.errors import ReferenceDataError
from synth_probe.fidelity import Timing, analyse_audio, compare_synths, nearest_references, own_distances
from synth_probe.rank_agreement import load_sensitivity_table, sensitivity_agreement
from synth_probe.reference import probes_from_vectors
from synth_probe.spectral import multi_resolution_log_mel_distance

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SR, NOTE_LEN, RENDER_LEN = 22050, 0.3, 0.6
# id, set, program (a text label), note, patch; p5 repeats p1's patch in another file (the folder's floor)
PROBES = [
    ("p0", "default", "Init", 60, {}),
    ("p1", "filter", "Dark", 60, {"cutoff": 0.15}),
    ("p2", "env", "Slow pad", 60, {"ampattack": 0.75}),
    ("p3", "default", "Init high", 72, {}),
    ("p4", "filter", "Squelch", 60, {"cutoff": 0.4, "resonance": 0.9}),
    ("p5", "filter", "Dark again", 60, {"cutoff": 0.15}),
]


@pytest.fixture(scope="module")
def folder(noisemaker, tmp_path_factory) -> Path:
    """A reference folder of the emulation's own renders: FLAC (stereo) and WAV (mono float) files."""
    d = tmp_path_factory.mktemp("reference")
    (d / "audio").mkdir()
    names = noisemaker.param_names
    rows = []
    for pid, group, program, note, patch in PROBES:
        audio = noisemaker.render(patch, note=note, velocity=100, note_length=NOTE_LEN, render_length=RENDER_LEN,
                                  sample_rate=SR, seed=0)
        if int(pid[1]) % 2 == 0:
            f = f"audio/{pid}.flac"
            sf.write(d / f, np.stack([audio, audio], axis=1), SR, subtype="PCM_24")
        else:
            f = f"audio/{pid}.wav"
            sf.write(d / f, audio, SR, subtype="FLOAT")
        full = noisemaker.patch_vector(patch)
        rows.append({"probe_id": pid, "set": group, "program": program, "note": note, "velocity": 100,
                     **dict(zip(names, map(float, full))), "file": f})
    _write_probes(d, rows)
    (d / "settings.json").write_text(json.dumps({"sample_rate": SR, "note_length": NOTE_LEN,
                                                 "render_length": RENDER_LEN}))
    return d


def _write_probes(d: Path, rows: list[dict]) -> None:
    with (d / "probes.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _read_probes(d: Path) -> list[dict]:
    with (d / "probes.csv").open() as f:
        return list(csv.DictReader(f))


def _compare(a: str, b: str | Path, out: Path, *extra: str) -> int:
    return main(["compare", a, str(b), "--out", str(out), "--quiet", *extra])


def _load(out: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((out / "fidelity.json").read_text())
    with (out / "fidelity.csv").open() as f:
        rows = list(csv.DictReader(f))
    return summary, rows


def test_emulation_against_its_own_renders_is_identical_and_retrieved(folder, tmp_path, capsys):
    out = tmp_path / "reports"
    assert _compare("noisemaker", folder, out) == 0
    printed = capsys.readouterr().out
    assert "retrieval 100.0 % (6 of 6)" in printed
    summary, rows = _load(out)
    o = summary["overall"]
    assert o["n"] == 6 and o["median_db"] < 0.02 and o["max_db"] < 0.05  # only the files' quantization
    assert o["retrieval"] == 1.0 and o["b_sounds_a_silent"] == 0 and o["a_sounds_b_silent"] == 0
    assert summary["b"]["settings"] == "settings.json" and summary["settings"]["sample_rate"] == SR
    assert summary["b"]["render_length"] == RENDER_LEN and summary["b"]["note_length"] == NOTE_LEN
    # p1 and p5: the same patch in two files, the folder's own floor
    assert summary["floor"]["measurable"] and summary["floor"]["n"] == 1 and summary["floor"]["max_db"] < 0.05
    assert {s["name"] for s in summary["by_set"]} == {"default", "filter", "env"}
    assert {g["name"] for g in summary["by_group"]} >= {"filter", "(default patch)"}
    # the text column is kept as a label, in the CSV and on the page
    assert [r["program"] for r in rows] == [p[2] for p in PROBES]
    assert summary["probes"]["labels"] == ["program"]
    page = (out / "fidelity.html").read_text()
    assert "Slow pad" in page and ">program<" in page
    assert {r["id"]: int(r["note"]) for r in rows}["p3"] == 72


def test_a_swapped_file_is_found_by_distance_and_retrieval(folder, tmp_path):
    bad = tmp_path / "swapped"
    shutil.copytree(folder, bad)
    rows = _read_probes(bad)
    rows[2]["file"], rows[4]["file"] = rows[4]["file"], rows[2]["file"]  # p2 and p4 hear each other's audio
    _write_probes(bad, rows)
    out = tmp_path / "reports"
    assert _compare("noisemaker", bad, out, "--jobs", "2") == 0  # rendering and reading in worker processes
    summary, got = _load(out)
    by_id = {r["id"]: r for r in got}
    for pid, other in (("p2", "p4"), ("p4", "p2")):
        assert float(by_id[pid]["distance_db"]) > 3.0
        assert by_id[pid]["retrieved"] == "False" and by_id[pid]["nearest_other"] == other
    assert summary["overall"]["retrieval"] == pytest.approx(4 / 6)
    assert summary["worst"][0]["id"] in ("p2", "p4")


def test_bad_folders_get_one_line_errors(folder, tmp_path, capsys):
    missing = tmp_path / "missing"
    shutil.copytree(folder, missing)
    rows = _read_probes(missing)
    rows[1]["file"] = "audio/p1.wv"
    _write_probes(missing, rows)
    assert _compare("noisemaker", missing, tmp_path / "r1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-probe compare: error:") and len(err.splitlines()) == 1
    assert "'audio/p1.wv'" in err and "closest: audio/p1.wav" in err

    unknown = tmp_path / "unknown"
    shutil.copytree(folder, unknown)
    rows = [{**r, "cutof": 0.5} for r in _read_probes(unknown)]
    _write_probes(unknown, rows)
    assert _compare("noisemaker", unknown, tmp_path / "r2") == 2
    err = capsys.readouterr().err
    assert "column 'cutof' names no parameter of noisemaker" in err and "Did you mean 'cutoff'" in err

    assert _compare("noisemaker", folder, tmp_path / "r3", "--sampler", "timbral") == 2
    assert "apply to a synth B" in capsys.readouterr().err
    (unknown / "settings.json").write_text(json.dumps({"sample_rat": 22050}))
    assert _compare("noisemaker", unknown, tmp_path / "r4") == 2
    assert "Did you mean 'sample_rate'" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_report_is_self_contained_and_within_its_budget(folder, tmp_path):
    out = tmp_path / "reports"
    sens = tmp_path / "sens"
    sens.mkdir()
    _write_sensitivity_pair(sens)
    assert _compare("noisemaker", folder, out, "--audio-pairs", "2", "--report-mb", "1",
                    "--sensitivity", str(sens / "sensitivity.json"), str(sens / "real.csv")) == 0
    page = (out / "fidelity.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page and "http://" not in page and "https://" not in page
    # the 2 worst probes plus the worst of each of the 3 sets (some coincide), two players each
    n_audio = page.count("data:audio/wav;base64,")
    assert n_audio % 2 == 0 and 4 <= n_audio <= 10
    assert page.count("data:image/png;base64,") == n_audio // 2
    assert len(page.encode()) < 1.5e6
    assert 'id="rho-all"' in page and 'id="rank-disagreements"' in page
    index = (out / "index.html").read_text()
    assert 'href="fidelity.html"' in index and 'href="fidelity.csv"' in index


def test_synth_pair_noisemaker_against_itself(noisemaker):
    probes = probes_from_vectors(np.array([noisemaker.patch_vector({"cutoff": c, "vintagenoise": 0.6})
                                           for c in (0.2, 0.5, 0.8)]), noisemaker.param_names)
    res = compare_synths(noisemaker, noisemaker, probes, Timing(16000, 0.3, 0.5), floor_n=3)
    o = res.summary["overall"]
    assert o["median_db"] == 0.0 and o["max_db"] == 0.0 and o["retrieval"] == 1.0
    fl = res.summary["floor"]
    # seed 1 draws other vintage noise: the floor is measured and is above zero
    assert fl["measurable"] and fl["n"] == 3 and fl["max_db"] > 0.0
    assert res.summary["mode"] == "synth" and res.summary["b"]["params"] == 88


@pytest.mark.needs("amsynth")
def test_synth_pair_on_amsynth_and_names_that_do_not_match(tmp_path, capsys):
    out = tmp_path / "reports"
    assert _compare(AMSYNTH, AMSYNTH, out, "--n", "4", "--floor-n", "2", "--sample-rate", "16000",
                    "--render-length", "0.5", "--note-length", "0.3") == 0
    summary, rows = _load(out)
    assert len(rows) == 4 and summary["probes"]["source"].startswith("sampler all")  # no TAL names: 'all'
    assert summary["overall"]["retrieval"] == 1.0 and summary["floor"]["measurable"]
    assert _compare("noisemaker", AMSYNTH, tmp_path / "r2", "--n", "2") == 2
    assert "compare needs two synths with the same parameter names" in capsys.readouterr().err


def test_nearest_reference_search_equals_the_full_matrix():
    rng = np.random.default_rng(3)
    n = 60
    # spectra with a shape per patch: a level per band, an envelope over time, a little detail
    base = [(rng.normal(-40, 15, size=(n, m, 1)) + rng.normal(0, 8, size=(n, 1, t))
             + rng.normal(0, 1, size=(n, m, t))).astype(np.float32) for m, t in ((8, 40), (16, 20), (32, 10))]
    base = [np.maximum(b, -80.0) for b in base]
    # B: A moved a little; a few patches repeated (same key) and a few B renders close to other patches
    fb = [b + rng.normal(0, 2, size=b.shape).astype(np.float32) for b in base]
    for f, b in zip(fb, base):
        f[5] = b[6] + 0.1
        f[10] = f[11]
    keys = np.array([str(i) for i in range(n)], dtype=object)
    keys[21] = keys[20]
    own = own_distances(base, fb)
    res = nearest_references(base, fb, keys, own)
    full = np.array([[np.mean([np.abs(a[i] - b[j]).mean() for a, b in zip(base, fb)]) for j in range(n)]
                     for i in range(n)])
    assert np.allclose(np.diag(full), own, atol=1e-5)
    for i in range(n):
        other = keys != keys[i]
        assert res["closer"][i] == np.sum(full[i, other] < own[i] - 1e-4)
        if res["closer"][i]:
            assert res["nearest_db"][i] == pytest.approx(full[i, other].min(), abs=1e-5)
            assert res["nearest"][i] == np.flatnonzero(other)[np.argmin(full[i, other])]
        else:
            assert res["nearest"][i] == -1
    assert res["closer"][6] > 0 and res["closer"][20] == 0  # 6 hears patch 5's reference better than its own
    assert res["exact"] < n * n / 4  # the lower bound spared most of the matrix


def test_own_distance_is_the_projects_distance():
    rng = np.random.default_rng(0)
    t = np.arange(11025) / 22050
    a = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t) + 0.01 * rng.standard_normal(len(t)))[None]
    b = (0.2 * np.sign(np.sin(2 * np.pi * 330 * t)) + 0.01 * rng.standard_normal(len(t)))[None]
    fa, fb = analyse_audio(a, 22050), analyse_audio(b, 22050)
    d = own_distances(fa["features"], fb["features"])[0]
    assert d == pytest.approx(multi_resolution_log_mel_distance(a[0], b[0], 22050), abs=1e-3)
    assert fa["f0"][0] == pytest.approx(57.0, abs=0.1) and fb["f0"][0] == pytest.approx(64.02, abs=0.1)
    assert 0.3 < fa["length"][0] <= 0.5 and fa["clips"].dtype == np.int16


def _write_sensitivity_pair(d: Path) -> None:
    a = {"params": [{"name": "cutoff", "score": 9.0, "classification": "strong", "rank": 1},
                    {"name": "resonance", "score": 5.0, "classification": "strong", "rank": 2},
                    {"name": "delaywet", "score": 0.8, "classification": "weak", "rank": 3},
                    {"name": "envelopeeditorspeed", "score": 4.0, "classification": "strong", "rank": 4},
                    {"name": "unused", "score": 0.0, "classification": "inaudible", "rank": 5}]}
    (d / "sensitivity.json").write_text(json.dumps(a))
    (d / "real.csv").write_text("rank,param,score_db,class\n1,cutoff,10.0,strong\n2,resonance,4.0,strong\n"
                                "3,delaywet,6.0,strong\n4,envelopeeditorspeed,0.05,inaudible\n"
                                "5,unused,-0.01,inaudible\n6,midilock,0.0,inaudible\n")


def test_sensitivity_agreement_of_two_tables(tmp_path):
    from scipy.stats import spearmanr

    _write_sensitivity_pair(tmp_path)
    a = load_sensitivity_table(tmp_path / "sensitivity.json")
    b = load_sensitivity_table(tmp_path / "real.csv")
    ag = sensitivity_agreement(a, b)
    assert ag["n"] == 5 and ag["only_b"] == ["midilock"] and ag["only_a"] == []
    assert ag["spearman_all"] == pytest.approx(spearmanr([9, 5, 0.8, 4, 0], [10, 4, 6, 0.05, -0.01]).statistic)
    # above the floor in either: all but 'unused'
    assert ag["n_audible"] == 4
    assert ag["spearman_audible"] == pytest.approx(spearmanr([9, 5, 0.8, 4], [10, 4, 6, 0.05]).statistic)
    assert ag["class_agree"] == 3 and ag["confusion"]["strong/inaudible"] == 1 and ag["confusion"]["weak/strong"] == 1
    top = ag["disagreements"][0]
    assert top["name"] == "delaywet" and (top["rank_a"], top["rank_b"]) == (4, 2)
    (tmp_path / "bad.csv").write_text("param,score_db\ncutoff,1.0\n")
    with pytest.raises(ReferenceDataError, match="needs a name"):
        load_sensitivity_table(tmp_path / "bad.csv")
    with pytest.raises(ReferenceDataError, match="does not exist"):
        load_sensitivity_table(tmp_path / "nope.json")
