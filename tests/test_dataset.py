from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_probe import load_dataset
from synth_probe.dataset import GenerateOptions, decode_audio, encode_audio, generate, read_patch_table
from synth_probe.errors import DatasetError, DatasetMismatchError, UnknownParameterError
from synth_probe.sampling import render_seeds, sample_patches
from synth_probe.synths.base import RenderSettings

SETTINGS = RenderSettings(render_length=0.25, note_length=0.2, sample_rate=16000)
KW = dict(sampler="timbral", seed=5, settings=SETTINGS, shard_size=8)
ROOT = Path(__file__).resolve().parents[1]


def shard_files(path):
    return sorted(p.name for p in (Path(path) / "shards").iterdir() if not p.name.startswith("."))


def same_bytes(a, b):
    names = shard_files(a)
    assert names == shard_files(b)
    return all(filecmp.cmp(Path(a) / "shards" / n, Path(b) / "shards" / n, shallow=False) for n in names)


@pytest.fixture(scope="module")
def warm(noisemaker):
    # one render in this process fills the Faust bitcode cache, so every worker loads the same program
    noisemaker.render(render_length=0.05, note_length=0.05, sample_rate=SETTINGS.sample_rate)
    return noisemaker


@pytest.fixture(scope="module")
def ds_pair(warm, tmp_path_factory):
    base = tmp_path_factory.mktemp("ds")
    r1 = generate(warm, base / "j1", 24, jobs=1, **KW)
    r2 = generate(warm, base / "j2", 24, jobs=2, **KW)
    assert r1.ok and r2.ok and r1.renders == r2.renders == 24
    return base / "j1", base / "j2"



def test_options_object_equals_keywords(ds_pair, warm, tmp_path):
    """generate(..., GenerateOptions(...)) writes the same bytes as the same settings given as keywords."""
    a, _ = ds_pair
    opts = GenerateOptions(**KW, jobs=2)
    r = generate(warm, tmp_path / "o", 24, opts, jobs=1)  # a keyword overrides the options object
    assert r.ok and r.renders == 24 and same_bytes(a, tmp_path / "o")
    assert opts.jobs == 2  # the object given is not changed
    with pytest.raises(TypeError, match="shards"):
        generate(warm, tmp_path / "x", 8, shards=3)
    assert not (tmp_path / "x").exists()

def test_jobs_1_and_2_identical_bytes(ds_pair, warm):
    a, b = ds_pair
    assert len(shard_files(a)) == 9
    assert same_bytes(a, b)
    ds = load_dataset(a)
    assert ds.audio.shape == (24, SETTINGS.n_samples) and len(ds) == 24 and ds.failed == []
    expected = sample_patches(warm, 24, sampler="timbral", seed=5)
    pd.testing.assert_frame_equal(ds.params, expected, check_names=False, check_index_type=False)
    np.testing.assert_array_equal(ds.seeds, render_seeds(5, 0, 24))
    ref = warm.render_vector(expected.iloc[13].to_numpy(), SETTINGS, seed=int(ds.seeds[13]))
    np.testing.assert_allclose(ds.audio[13], ref, atol=np.abs(ref).max() / 30000 + 1e-5)
    both = ds.audio[[13, 2]]
    np.testing.assert_array_equal(both[0], ds.audio[13])
    assert ds.audio[5:9].shape == (4, SETTINGS.n_samples)
    batches = list(ds.iter_batches(10, shuffle=True, seed=1))
    assert [len(x) for x, _ in batches] == [10, 10, 4]
    got = sorted(i for _, p in batches for i in p.index)
    assert got == list(range(24))
    x, p = batches[0]
    np.testing.assert_array_equal(x[0], ds.audio[int(np.flatnonzero(ds.params.index == p.index[0])[0])])
    meta = ds.meta
    assert meta["synth"]["synth"] == "noisemaker" and "dsp_sha256" in meta["synth"]
    assert meta["render"]["sample_rate"] == 16000 and meta["sampling"]["sampler"] == "timbral"
    assert len(meta["params"]) == 88 and meta["complete"] and len(meta["shards"]) == 3
    assert all(len(s["sha256"]["audio"]) == 64 for s in meta["shards"])
    assert "dawdreamer" in meta["libraries"] and ds.specs[3].name == "cutoff"


def test_checksum_detects_corruption_and_resume_repairs(ds_pair, warm):
    a, b = ds_pair
    f = a / "shards" / "shard-00001.audio.npy"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="shard 1.*checksum"):
        load_dataset(a)
    r = generate(warm, a, 24, jobs=1, **KW)
    assert r.ok and r.shards_rendered == 1 and r.shards_reused == 2 and r.repaired[0]["id"] == 1
    assert same_bytes(a, b)
    load_dataset(a)


def test_extend_and_refuse_other_settings(ds_pair, warm):
    a, b = ds_pair
    r = generate(warm, b, 28, jobs=1, **KW)
    assert r.ok and r.renders == 4 and r.shards_reused == 3
    ds = load_dataset(b)
    assert len(ds) == 28
    pd.testing.assert_frame_equal(ds.params.iloc[24:], sample_patches(warm, 4, sampler="timbral", seed=5, start=24),
                                  check_names=False, check_index_type=False)
    with pytest.raises(DatasetMismatchError, match="render.sample_rate.*16000.*22050"):
        generate(warm, b, 28, jobs=1, **dict(KW, settings=RenderSettings(render_length=0.25, note_length=0.2, sample_rate=22050)))
    with pytest.raises(DatasetMismatchError, match="sampling.sampler"):
        generate(warm, b, 28, jobs=1, **dict(KW, sampler="all"))


def test_patches_table(tmp_path, warm):
    table = tmp_path / "presets.csv"
    pd.DataFrame({"cutoff": [0.2, 0.5, 0.9, 0.4, 0.7], "osc1waveform": [0, 0.5, 1, 0, 0.5]}).to_csv(table, index=False)
    from synth_probe.cli import main

    rc = main(["generate", "noisemaker", "--patches", str(table), "--out", str(tmp_path / "p"), "--render-length",
               "0.25", "--note-length", "0.2", "--sample-rate", "16000", "--shard-size", "2", "--no-progress"])
    assert rc == 0
    ds = load_dataset(tmp_path / "p")
    assert len(ds) == 5 and ds.meta["sampling"]["patches"]["rows"] == 5
    np.testing.assert_array_equal(ds.params["cutoff"], [0.2, 0.5, 0.9, 0.4, 0.7])
    assert (ds.params["resonance"] == warm.spec("resonance").default).all()
    js = tmp_path / "presets.json"
    js.write_text(json.dumps([{"params": {"cutoff": 0.3}}, {"cutof": 0.1}]))
    with pytest.raises(UnknownParameterError, match="cutof.*Did you mean 'cutoff'"):
        read_patch_table(js, warm)


def test_nonfinite_render_retried_then_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    sys.path.insert(0, str(Path(__file__).parent))
    from faulty_synth import FlakyNoiseMaker

    synth = FlakyNoiseMaker()
    patches = pd.DataFrame({"unused": [0.0, 0.6, 0.0, 1.0, 0.0], "cutoff": [0.5] * 5})
    r = generate(synth, tmp_path / "f", patches=patches, settings=SETTINGS, shard_size=5)
    assert r.ok
    assert [f["index"] for f in r.failed_patches] == [3]
    assert "non-finite" in r.failed_patches[0]["reason"]
    ds = load_dataset(tmp_path / "f")
    assert list(ds.params.index) == [0, 1, 2, 4]  # patch 1 recovered after a fresh instance, 3 never stored
    assert np.isfinite(ds.audio[:]).all() and np.abs(ds.audio[:]).max(axis=1).min() > 0
    assert ds.meta["failed_patches"][0]["index"] == 3


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_resume_after_kill_9_of_main(tmp_path, warm, ds_pair):
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "synth_probe", "generate", "noisemaker", "--n", "96", "--out", str(out),
           "--sampler", "timbral", "--seed", "5", "--render-length", "0.25", "--note-length", "0.2",
           "--sample-rate", "16000", "--shard-size", "8", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "shards" / "shard-00000.json").exists():
        assert proc.poll() is None and time.time() < deadline, "generate ended before the kill"
        time.sleep(0.005)
    workers = _children(proc.pid)
    assert workers, "the run renders on worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.time() + 10  # the orphaned workers end by themselves, mid-shard, writing nothing more
    while any(Path(f"/proc/{w}").exists() and _state(w) != "Z" for w in workers):
        assert time.time() < gone_by, f"workers {workers} outlived the killed run"
        time.sleep(0.05)
    records = list((out / "shards").glob("*.json"))
    assert 1 <= len(records) < 12, "the kill should land mid-way"
    part = load_dataset(out, allow_incomplete=True)  # whatever is there verifies
    assert len(part) == 8 * len(records)
    with pytest.raises(DatasetError, match="incomplete"):
        load_dataset(out)
    r = generate(warm, out, 96, jobs=2, **KW)
    assert r.ok and r.shards_reused >= 1
    ds = load_dataset(out)
    assert len(ds) == 96
    ref = load_dataset(ds_pair[0])
    np.testing.assert_array_equal(ds.audio[:24], ref.audio[:24])


def test_dask_backend(tmp_path, warm, ds_pair):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = generate(warm, tmp_path / "d", 24, backend="dask", scheduler=cluster.scheduler_address, **KW)
    assert r.ok and r.renders == 24
    assert same_bytes(tmp_path / "d", ds_pair[0])  # ds_pair[1] was extended to 28 by an earlier test


def test_storage_codec_error():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 1000)) * [[0.01], [1.0], [4.0]]).astype(np.float32)
    x[2, :] = 0
    q, s = encode_audio(x)
    assert q.dtype == np.int16 and s.shape == (3,)
    y = decode_audio(q, s)
    assert np.all(np.abs(y - x).max(axis=1) <= np.abs(x).max(axis=1) / 32767 * 0.51 + 1e-12)
