"""Probes: the grammar, the renders, datasets, sensitivity and identifiability with several renders per patch."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from synth_probe.dataset import _identity, generate, load_dataset
from synth_probe.errors import DatasetMismatchError, ParameterValueError
from synth_probe.identifiability import IdentifiabilityConfig, _probe_table, compare_probes, probe_base
from synth_probe.matching import ProbeObjective
from synth_probe.probe import DEFAULT_PROBE, Probe, parse_probe, render_probe
from synth_probe.report.identifiability_section import probes_html
from synth_probe.sensitivity import SensitivityConfig, run_sensitivity
from synth_probe.sensitivity_analysis import combine_renders
from synth_probe.synths.base import RenderSettings

SMALL = RenderSettings(note=60, velocity=100, note_length=0.3, render_length=0.5, sample_rate=8000)


def test_parse_and_text_round_trip():
    p = parse_probe("notes=36,60,84/velocities=64,127")
    assert p.notes == (36, 60, 84) and p.velocities == (64, 127) and p.note_lengths is None
    assert p.n_renders() == 6
    assert parse_probe(p.text()) == p
    assert parse_probe("lengths=0.25,1").note_lengths == (0.25, 1.0)
    assert parse_probe("default") is DEFAULT_PROBE and parse_probe(None) is DEFAULT_PROBE
    assert parse_probe("").is_default and DEFAULT_PROBE.text() == "default"
    assert Probe.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("text, words", [
    ("notes=200", "0..127"), ("velocities=0", "1..127"), ("foo=1", "notes"), ("notes", "notes="),
    ("notes=a", "integer"), ("notes=60,60", "repeat"), ("notes=1/notes=2", "twice"), ("lengths=-1", "seconds"),
    ("notes=" + ",".join(map(str, range(20))) + "/velocities=1,2,3,4", "at most"),
])
def test_bad_probe_is_one_line_saying_what_is_allowed(text, words):
    with pytest.raises(ParameterValueError) as e:
        parse_probe(text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_renders_product_and_default_is_the_settings():
    assert DEFAULT_PROBE.renders(SMALL) == [SMALL]
    r = parse_probe("notes=36,84/velocities=64,127").renders(SMALL)
    assert [(x.note, x.velocity) for x in r] == [(36, 64), (36, 127), (84, 64), (84, 127)]
    assert all(x.render_length == SMALL.render_length and x.sample_rate == 8000 for x in r)


def test_default_identity_unchanged_and_probe_identity_records_it(noisemaker):
    base = _identity(noisemaker, SMALL, {"sampler": "all"}, 10)
    assert _identity(noisemaker, SMALL, {"sampler": "all"}, 10, DEFAULT_PROBE) == base
    assert "probe" not in base and "n_renders" not in base["storage"]
    p = _identity(noisemaker, SMALL, {"sampler": "all"}, 10, parse_probe("notes=36,84"))
    assert p["probe"]["text"] == "notes=36,84" and p["storage"]["n_renders"] == 2
    assert [r["note"] for r in p["probe"]["renders"]] == [36, 84]


def test_probe_dataset_stores_renders_together_and_refuses_another_probe(noisemaker, tmp_path):
    probe = "notes=36,84/velocities=40,127"
    out = tmp_path / "ds"
    fix = {"velocityvolume": 1.0}
    res = generate(noisemaker, out, 3, sampler="timbral", fix=fix, settings=SMALL, probe=probe, shard_size=2)
    assert res.ok
    ds = load_dataset(out)
    assert ds.audio.shape == (3, 4, SMALL.n_samples) and ds.audio.ndim == 3
    assert ds.audio[1].shape == (4, SMALL.n_samples) and ds.audio[[0, 2]].shape == (2, 4, SMALL.n_samples)
    assert ds.probe == parse_probe(probe) and ds.meta["storage"]["n_renders"] == 4
    row = ds.params.iloc[2].to_numpy()
    want = render_probe(noisemaker, row, parse_probe(probe).renders(SMALL), seed=int(ds.seeds[2]))
    got = ds.audio[2]
    peak = float(np.abs(want).max())
    assert np.abs(got - want).max() <= peak / 32767 * 1.01  # one scale per patch: int16 quantization only
    # with velocity -> volume up, velocity 40 is quieter than 127 on the same note in the stored audio
    assert np.abs(got[0]).max() < 0.9 * np.abs(got[1]).max()
    for other in ("default", "notes=36,84"):
        with pytest.raises(DatasetMismatchError, match="made with the probe 'notes=36,84/velocities=40,127'"):
            generate(noisemaker, out, 3, sampler="timbral", fix=fix, settings=SMALL, probe=other, shard_size=2)
    assert load_dataset(out).audio.shape == (3, 4, SMALL.n_samples)  # nothing lost
    # a one-note folder refuses a probe run too
    one = tmp_path / "one"
    generate(noisemaker, one, 2, sampler="timbral", settings=SMALL, shard_size=2)
    assert load_dataset(one).audio.shape == (2, SMALL.n_samples)
    with pytest.raises(DatasetMismatchError, match="made with the probe 'default'"):
        generate(noisemaker, one, 2, sampler="timbral", settings=SMALL, probe=probe, shard_size=2)


def test_combine_renders_sums_distances_and_averages_aspects():
    a = {"spread": 1.0, "neighbour": 0.5, "static": 0.2, "aspects": {"x": 1.0, "pitch": float("nan")},
         "monotonicity": 0.8}
    b = {"spread": 2.0, "neighbour": 1.5, "static": 0.4, "aspects": {"x": 3.0, "pitch": 2.0},
         "monotonicity": float("nan")}
    c = combine_renders([a, b])
    assert (c["spread"], c["neighbour"], c["static"]) == (3.0, 2.0, pytest.approx(0.6))
    assert c["aspects"] == {"x": 2.0, "pitch": 2.0} and c["monotonicity"] == 0.8


def test_sensitivity_with_a_note_probe_hears_key_follow_more(noisemaker):
    kw = dict(bases=2, steps=3, floor_seeds=2, sampler="all", params=("keyfollow",), bootstrap=20,
              note_length=0.3, render_length=0.5, sample_rate=8000)
    one = run_sensitivity(noisemaker, SensitivityConfig(**kw))
    three = run_sensitivity(noisemaker, SensitivityConfig(**kw, probe="notes=36,60,96"))
    s1, s3 = one.by_name()["keyfollow"], three.by_name()["keyfollow"]
    assert s3.score > s1.score
    assert three.to_dict()["config"]["probe"] == "notes=36,60,96" and "probe" not in one.to_dict()["config"]


def test_probe_objective_sums_the_renders(noisemaker):
    renders = parse_probe("notes=36,84").renders(SMALL)
    vec = noisemaker.patch_vector({"cutoff": 0.4})
    target = render_probe(noisemaker, vec, renders)
    obj = ProbeObjective(noisemaker, target, renders)
    moved = noisemaker.patch_vector({"cutoff": 0.8})
    parts = [obj.parts[k].distance_of(noisemaker.render_vector(moved, r)) for k, r in enumerate(renders)]
    assert obj(moved) == pytest.approx(sum(parts)) and obj(vec) == pytest.approx(0.0, abs=1e-6)
    assert obj.n_renders == 4


def test_identifiability_key_follow_needs_notes(noisemaker):
    """On one note the key-follow move is small (cutoff can undo it); across notes it is much larger."""
    base = noisemaker.patch_vector({"keyfollow": 0.2, "cutoff": 0.35, "resonance": 0.3})
    kw = dict(seed=3, compensate=["cutoff"], budget=0, tolerance_db=0.2)
    one = probe_base(noisemaker, base, "keyfollow", SMALL, **kw)
    wide = probe_base(noisemaker, base, "keyfollow", SMALL, renders=parse_probe("notes=36,96").renders(SMALL), **kw)
    assert wide["renders"] == 2 * one["renders"]
    assert wide["effect"] > 2 * one["effect"]


def test_compare_probes_table_and_section(noisemaker):
    cfg = IdentifiabilityConfig(sampler="timbral", bases=2, budget=4, steps=(0.5, 0.25), params=("keyfollow", "cutoff"),
                                note_length=0.3, render_length=0.5, sample_rate=8000)
    with pytest.raises(ParameterValueError, match="repeat"):
        compare_probes(noisemaker, cfg, ["default", "default"])
    data = compare_probes(noisemaker, cfg, ["default", "notes=36,84"])
    assert data["probes"] == ["default", "notes=36,84"] and data["n_renders"] == {"default": 1, "notes=36,84": 2}
    assert [r["parameter"] for r in data["rows"]] == ["keyfollow", "cutoff"]
    for r in data["rows"]:
        assert set(r["by_probe"]) == {"default", "notes=36,84"} and r["best_probe"] in r["by_probe"]
    run = data["runs"]["notes=36,84"]
    assert run["config"]["probe"] == "notes=36,84" and "probe" not in data["runs"]["default"]["config"]
    json.dumps(data, allow_nan=False)
    html = probes_html(json.loads(json.dumps(data)))
    assert "notes=36,84" in html and "keyfollow" in html and "Mean distinct share" in html
    # the table follows the summaries it is given (plain data)
    fake = {t: {**run, "summary": [{**s, "distinct": 1.0 if t == "b" else 0.0} for s in run["summary"]]}
            for t in ("a", "b")}
    assert all(r["best_probe"] == "b" for r in _probe_table(fake, True)["rows"])


def test_cli_probe_errors_are_one_line(tmp_path):
    for cmd in (["generate", "noisemaker", "--n", "2", "--out", str(tmp_path / "d")],
                ["sensitivity", "noisemaker", "--out", str(tmp_path / "r")],
                ["identifiability", "noisemaker", "--out", str(tmp_path / "r")]):
        p = subprocess.run([sys.executable, "-m", "synth_probe", *cmd, "--probe", "notes=300"],
                           capture_output=True, text=True)
        assert p.returncode == 2
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "0..127" in lines[0] and "--probe" in lines[0]
    assert not (tmp_path / "d").exists()
