"""Tabular probe features with the differences between neighbouring renders (ProbeFeatures ``contrast``)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram, ProbeFeatures
from synth_probe.features.probe import join_renders
from synth_probe.pipeline import PROBE_CONTRAST, feature_step
from synth_probe.probe import parse_probe
from synth_probe.synths.base import RenderSettings

SMALL = RenderSettings(note=60, velocity=100, note_length=0.3, render_length=0.5, sample_rate=8000)
RENDERS = ((36, 64, 0.1), (60, 100, 0.2), (84, 127, 0.1))


@parametrize_with_checks([
    ProbeFeatures(HandcraftedFeatures(n_fft=64, hop_length=16, n_mfcc=4), renders=((60, 100, 1.0),), contrast=True),
])
def test_contrast_probe_features_sklearn_compatible(estimator, check):
    check(estimator)


def _step():
    return LogMelSpectrogram(sample_rate=8000, n_fft=256, hop_length=128, n_mels=8, time_pool=2)


def test_contrast_appends_each_renders_features_minus_the_previous_renders():
    rng = np.random.default_rng(1)
    X = (0.3 * rng.standard_normal((4, 3, 2000))).astype(np.float32)
    rows = X.reshape(4, -1)
    plain = ProbeFeatures(_step(), renders=RENDERS).fit(rows)
    f = ProbeFeatures(_step(), renders=RENDERS, contrast=True).fit(rows)
    P, F = plain.transform(rows), f.transform(rows)
    k = f.n_features_per_render_
    assert F.shape == (4, 3 * k + 2 * k + 6) and F.dtype == np.float32
    np.testing.assert_array_equal(F[:, :3 * k], P[:, :3 * k])            # the renders' own features first
    np.testing.assert_allclose(F[:, 3 * k:4 * k], P[:, k:2 * k] - P[:, :k], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F[:, 4 * k:5 * k], P[:, 2 * k:3 * k] - P[:, k:2 * k], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(F[:, -6:], P[:, -6:])                   # then each render's note and velocity
    names = list(f.get_feature_names_out())
    assert len(names) == F.shape[1] and names[3 * k] == "d1_f0" and names[4 * k] == "d2_f0"
    assert names[-1] == "r2_velocity"


def test_contrast_adds_nothing_for_one_render():
    X = np.random.default_rng(2).standard_normal((3, 2000)).astype(np.float32)
    a = ProbeFeatures(_step(), renders=RENDERS[:1]).fit_transform(X)
    b = ProbeFeatures(_step(), renders=RENDERS[:1], contrast=True).fit_transform(X)
    np.testing.assert_array_equal(a, b)


def test_join_renders_without_context_or_contrast_is_the_blocks_side_by_side():
    blocks = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(join_renders(blocks, RENDERS, contrast=False, context=False), blocks.reshape(2, -1))
    J = join_renders(blocks, RENDERS, contrast=True, context=False)
    assert J.shape == (2, 12 + 8) and np.all(J[:, 12:] == 4)            # each render's block is 4 above the last


@pytest.mark.parametrize("kind", ["handcrafted", "combined", "logmel-stats", "logmel"])
def test_the_builder_sets_contrast_on_tabular_probe_features_only(kind):
    renders = parse_probe("notes=48,72").renders(SMALL)
    step = feature_step(kind, sample_rate=8000, note_length=0.3, renders=renders)
    tabular = kind != "logmel"
    assert step.contrast == (tabular and PROBE_CONTRAST) and step.context == tabular


def test_a_probe_features_step_saved_before_contrast_loads_without_the_differences(tmp_path):
    import skops.io as sio

    rng = np.random.default_rng(3)
    rows = (0.3 * rng.standard_normal((3, 2 * 2000))).astype(np.float32)
    f = ProbeFeatures(_step(), renders=RENDERS[:2]).fit(rows)
    expected = f.transform(rows)
    del f.__dict__["contrast"]  # the object as a model folder of the previous version holds it
    path = tmp_path / "old.skops"
    sio.dump(f, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert loaded.contrast is False
    np.testing.assert_array_equal(loaded.transform(rows), expected)
