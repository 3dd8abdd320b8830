"""A model folder is data: it must never make synth_probe run code (issue #17, items 1, 2 and 13).

Every hostile artefact here is real: a gcc-built shared library whose constructor writes a marker
file, pickles whose ``__reduce__`` writes a marker file, planted where a cache or a weights file is
read. Each test asserts that the marker is never written and that the CLI answers with one clean
error line (exit 2), or that the work still gives the right result.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from synth_probe.cli import main
from synth_probe.errors import ModelFileError
from synth_probe.synths.base import RenderSettings

PLUGINS = Path(__file__).parent / "plugins"
SR = 16000
SETTINGS = RenderSettings(note_length=0.2, render_length=0.3, sample_rate=SR)
VARY = ["cutoff", "osc1waveform"]


def build_marker_library(out: Path, marker: Path) -> Path:
    """A shared library exporting VSTPluginMain whose constructor writes ``marker`` when loaded."""
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f"-DMARKER_PATH=\"{marker}\"", "-o", str(out),
                    str(PLUGINS / "constructor_marker.c")], check=True, capture_output=True)
    return out


class _WritesMarker:
    """Unpickling this object runs ``exec``, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def hostile_pickle(marker: Path) -> bytes:
    import pickle

    return pickle.dumps(_WritesMarker(marker))


def one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"synth-probe {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """8 real NoiseMaker renders (0.3 s at 16 kHz), cutoff and waveform varied."""
    from synth_probe.dataset import generate

    out = tmp_path_factory.mktemp("data") / "tiny"
    assert generate("noisemaker", out, 8, vary=VARY, settings=SETTINGS, seed=1).ok
    return out


@pytest.fixture(scope="module")
def model_dir(dataset_dir, tmp_path_factory):
    """A mean model trained by `synth-probe train` on the tiny dataset (synth: noisemaker)."""
    out = tmp_path_factory.mktemp("model") / "mean"
    assert main(["train", "mean", "--data", str(dataset_dir), "--params", ",".join(VARY), "--out", str(out)]) == 0
    return out


@pytest.fixture()
def target_wav(tmp_path):
    t = np.arange(int(0.3 * SR)) / SR
    path = tmp_path / "target.wav"
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    return path


def _edit_header(folder: Path, **changes) -> None:
    header = json.loads((folder / "model.json").read_text())
    header.update(changes)
    (folder / "model.json").write_text(json.dumps(header))


# ================================================================== 1. no plugin from a model folder
@pytest.mark.needs("gcc")
@pytest.mark.parametrize("relative", [True, False], ids=["relative-path", "absolute-path"])
def test_a_model_folder_never_loads_the_plugin_it_names(model_dir, dataset_dir, target_wav, tmp_path, relative,
                                                        monkeypatch, capsys):
    marker = tmp_path / "constructor-ran"
    evil = tmp_path / "evilmodel"
    shutil.copytree(model_dir, evil)
    lib = build_marker_library(evil / "nm_engine.so", marker)
    _edit_header(evil, synth="evilmodel/nm_engine.so" if relative else str(lib))
    monkeypatch.chdir(tmp_path)
    for argv in (["match", str(target_wav), "--model", "evilmodel", "--out", "m"],
                 ["evaluate", "evilmodel", "--data", str(dataset_dir)],
                 ["evaluate", "evilmodel", "--data", str(dataset_dir), "--audio", "2"]):
        rc = main(argv)
        assert not marker.exists(), f"{argv}: the library in the model folder was loaded"
        assert rc == 2, argv
        line = one_error_line(capsys.readouterr().err, argv[0])
        assert "--synth PATH" in line and "never loaded" in line, line
    assert not (tmp_path / "m").exists()


@pytest.mark.needs("gcc")
def test_match_through_a_real_process_refuses_the_plugin_of_a_model_folder(model_dir, target_wav, tmp_path):
    marker = tmp_path / "constructor-ran"
    evil = tmp_path / "evilmodel"
    shutil.copytree(model_dir, evil)
    build_marker_library(evil / "nm_engine.so", marker)
    _edit_header(evil, synth="evilmodel/nm_engine.so")
    res = subprocess.run([sys.executable, "-m", "synth_probe", "match", str(target_wav), "--model", "evilmodel"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "the library in the model folder was loaded"
    assert res.returncode == 2, res.stderr
    assert "--synth PATH" in one_error_line(res.stderr, "match")


def test_a_built_in_synth_may_come_from_the_header(model_dir):
    from synth_probe.models.io import choose_synth

    assert choose_synth("noisemaker") == ("noisemaker", [])
    assert choose_synth(None, "noisemaker") == ("noisemaker", [])
    with pytest.raises(ModelFileError, match="does not name its synth; pass --synth"):
        choose_synth(None)
    with pytest.raises(ModelFileError, match=r"never loaded.*--synth PATH"):
        choose_synth("amsynth_vst")  # a plugin's name, not a path: still only from the command line


@pytest.fixture(scope="module")
def plugin_model(tmp_path_factory):
    """A dataset of a gcc-built VST2 (tests/plugins/fake_vst.c) and a mean model `train` made on it with --synth."""
    from synth_probe.dataset import generate

    d = tmp_path_factory.mktemp("plugin-model")
    lib = d / "fake_vst.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(PLUGINS / "fake_vst.c"), "-lm"],
                   check=True, capture_output=True)
    assert generate(str(lib), d / "data", 6, vary=["level"], settings=SETTINGS, seed=0).ok
    assert main(["train", "mean", "--data", str(d / "data"), "--params", "level", "--synth", str(lib),
                 "--out", str(d / "model")]) == 0
    return d / "model", d / "data", lib


@pytest.mark.needs("gcc")
def test_train_records_the_plugin_sha256_and_it_is_checked(plugin_model, target_wav, tmp_path, capsys):
    from synth_probe.models.io import read_header

    model, data, lib = plugin_model
    header = read_header(model)
    sha = hashlib.sha256(lib.read_bytes()).hexdigest()
    assert header["synth"] == str(lib) and header["synth_sha256"] == sha
    assert header["metadata"]["render"]["sample_rate"] == SR  # match needs no dataset to find them
    capsys.readouterr()
    # the model names its own plugin: still only loaded when the user names it
    assert main(["evaluate", str(model), "--data", str(data)]) == 2
    line = one_error_line(capsys.readouterr().err, "evaluate")
    assert "--synth PATH" in line and sha in line, line
    assert main(["evaluate", str(model), "--data", str(data), "--synth", str(lib)]) == 0
    assert "level" in capsys.readouterr().out
    # another binary is refused before anything loads it
    marker = tmp_path / "constructor-ran"
    other = build_marker_library(tmp_path / "other.so", marker)
    assert main(["match", str(target_wav), "--model", str(model), "--synth", str(other), "--out",
                 str(tmp_path / "m")]) == 2
    line = one_error_line(capsys.readouterr().err, "match")
    assert sha in line and "--allow-other-plugin" in line, line
    assert not marker.exists() and not (tmp_path / "m").exists()
    # the override turns the refusal into a notice (the user named the file)
    from synth_probe.models.io import choose_synth

    name, notices = choose_synth(header["synth"], str(other), recorded_sha256=sha, allow_other_plugin=True)
    assert name == str(other) and len(notices) == 1 and "sha256" in notices[0]
    assert not marker.exists()


# ================================================================== 2. no cache location, no pickled caches
def _hostile_cache(cache: Path, marker: Path) -> int:
    """Replace every cache file under ``cache`` with a payload that writes ``marker`` when unpickled."""
    planted = 0
    for f in cache.rglob("*"):
        if f.name == "output.pkl":  # joblib.Memory's layout
            f.write_bytes(hostile_pickle(marker))
        elif f.suffix in (".npy", ".npz"):  # an object array: a pickle inside an .npy
            with open(f, "wb") as fh:
                np.save(fh, np.array([_WritesMarker(marker)], dtype=object), allow_pickle=True)
        else:
            continue
        planted += 1
    return planted


@pytest.mark.parametrize("make", ["logmel", "handcrafted"])
def test_feature_caches_are_arrays_and_never_unpickled(tmp_path, make):
    from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram

    rng = np.random.default_rng(0)
    X = (0.1 * rng.normal(size=(5, 4000))).astype(np.float32)

    def step(cache=None):
        if make == "logmel":
            return LogMelSpectrogram(sample_rate=SR, n_mels=16, time_pool=4, cache_dir=cache)
        return HandcraftedFeatures(sample_rate=SR, note_length=0.15, cache_dir=cache)

    ref = step().fit_transform(X)
    cache = tmp_path / "cache"
    np.testing.assert_array_equal(step(str(cache)).fit_transform(X), ref)
    marker = tmp_path / "unpickled"
    assert _hostile_cache(cache, marker) >= 1
    try:
        again = step(str(cache)).fit_transform(X)
    except Exception:  # noqa: BLE001 - today's code fails after running the payload
        again = None
    assert not marker.exists(), "a planted cache file was unpickled"
    np.testing.assert_array_equal(again, ref)  # recomputed
    files = [f for f in cache.rglob("*") if f.is_file()]
    assert len(files) == 1 and files[0].suffix == ".npy", files  # rewritten: one plain array
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False).reshape(ref.shape), ref)


def _trusted_pipeline_with_cache(dataset_dir, model: Path, cache: Path):
    """A model of trusted types only (LogMelSpectrogram + MeanBaseline) whose feature step names ``cache``."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    from synth_probe import load_dataset
    from synth_probe.features import LogMelSpectrogram
    from synth_probe.models import MeanBaseline, discrete_layout, save_model

    ds = load_dataset(dataset_dir)
    X = np.asarray(ds.audio[np.arange(len(ds.params))])
    pipe = Pipeline([("features", LogMelSpectrogram(sample_rate=SR, n_mels=16, time_pool=4)),
                     ("estimator", MeanBaseline(synth="noisemaker", discrete=discrete_layout(ds.specs, VARY)))]).fit(X, ds.params[VARY])
    save_model(pipe, model, metadata={"data": str(dataset_dir), "render": SETTINGS.to_dict()})
    pipe.steps[0][1].cache_dir = str(cache)
    sio.dump(pipe, model / "model.skops")  # what a hostile folder holds: save_model never writes one
    return X


def test_a_loaded_model_never_uses_a_cache_it_names(dataset_dir, tmp_path, capsys):
    from synth_probe.features import LogMelSpectrogram

    marker = tmp_path / "unpickled"
    model, cache = tmp_path / "evilmodel", tmp_path / "evilmodel" / "cache"
    X = _trusted_pipeline_with_cache(dataset_dir, model, cache)
    # plant the payload where the step's cache would be read for exactly evaluate's input
    LogMelSpectrogram(sample_rate=SR, n_mels=16, time_pool=4, cache_dir=str(cache)).fit(X).transform(X)
    assert _hostile_cache(cache, marker) >= 1
    try:
        rc = main(["evaluate", str(model), "--data", str(dataset_dir)])
    except Exception as e:  # noqa: BLE001 - today's code fails after running the payload
        rc = e
    err = capsys.readouterr().err
    assert not marker.exists(), "evaluate unpickled a planted cache file"
    assert rc == 2
    assert "cache_dir" in one_error_line(err, "evaluate")
    with pytest.raises(ModelFileError, match="cache_dir"):
        from synth_probe.models import load_model

        load_model(model)
    assert not marker.exists()


def test_a_header_that_sets_a_cache_is_refused_and_save_drops_it(dataset_dir, tmp_path):
    import skops.io as sio

    from synth_probe.models import load_model, save_model

    model = tmp_path / "m"
    _trusted_pipeline_with_cache(dataset_dir, model, tmp_path / "cache")
    pipe = sio.load(model / "model.skops", trusted=sio.get_untrusted_types(file=model / "model.skops"))
    pipe_path = tmp_path / "clean"
    # a user's own cache_dir (set for training) is not saved: the model loads without it
    assert pipe.steps[0][1].cache_dir == str(tmp_path / "cache")
    save_model(pipe, pipe_path)
    assert pipe.steps[0][1].cache_dir == str(tmp_path / "cache")  # the caller's object is left as it was
    header = json.loads((pipe_path / "model.json").read_text())
    assert header["feature_steps"][0]["params"]["cache_dir"] is None
    loaded = load_model(pipe_path)
    assert loaded.steps[0][1].cache_dir is None
    header["feature_steps"][0]["params"]["cache_dir"] = str(tmp_path / "elsewhere")
    (pipe_path / "model.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="cache_dir"):
        load_model(pipe_path)


# ================================================================== 13. weights.pt
@pytest.fixture()
def torch_model(tmp_path):
    from synth_probe.models.cnn import SpectrogramCNN
    from synth_probe.models.io import save_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8 * 8)).astype(np.float32)
    Y = pd.DataFrame({"cut": rng.uniform(size=40)})
    est = SpectrogramCNN(input_shape=(8, 8), channels=(4, 4), hidden=8, max_epochs=1, num_threads=1,
                         random_state=0).fit(X, Y)
    save_model(est, tmp_path / "cnn")
    return tmp_path / "cnn"


@pytest.mark.parametrize("damage", ["missing", "truncated", "truncated-header", "pickle"])
def test_a_bad_weights_file_is_a_model_file_error(torch_model, tmp_path, damage, capsys):
    import torch

    from synth_probe.models import load_model

    weights = torch_model / "weights.pt"
    marker = tmp_path / "unpickled"
    if damage == "missing":
        weights.unlink()
    elif damage.startswith("truncated"):  # cut inside the tensors, or inside the zip's first header
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2 if damage == "truncated" else 20])
    else:
        torch.save({"module": _WritesMarker(marker)}, weights)
    with pytest.raises(ModelFileError, match="weights.pt"):
        load_model(torch_model)
    assert main(["evaluate", str(torch_model), "--data", str(tmp_path / "no-data")]) == 2
    assert "weights.pt" in one_error_line(capsys.readouterr().err, "evaluate")
    assert not marker.exists()
    if damage == "pickle":  # the artefact is real: an unsafe load would have run it
        torch.load(weights, weights_only=False)
        assert marker.exists()
