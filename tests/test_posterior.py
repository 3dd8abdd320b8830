"""FlowMatchingPosterior and best-of-k: both modes of a symmetric target, discrete decoding, seeds, shapes.

The symmetric problems: a toy target whose sign does not reach the input, and the
emulation's LFO amount on a pitch destination, whose sign is undone by a phase
shift of half a cycle (the render of (amount, phase) equals that of
(1 - amount, phase + 0.5)). A regressor predicts the middle (0.5) for both; the
posterior's draws must sit on both sides, at the right distance from the middle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from synth_probe.best_of_k import best_of_k, sample_patches
from synth_probe.errors import AudioError, ParameterValueError
from synth_probe.features import LogMelSpectrogram
from synth_probe.models import NearestNeighbours
from synth_probe.models.posterior import FlowMatchingPosterior
from synth_probe.render import render_many
from synth_probe.spectral import multi_resolution_log_mel_distance
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.registry import get_synth

from toys import CHOICES, symmetric_toy

SMALL = dict(hidden=64, context_dim=32, num_threads=1, random_state=0)


@pytest.fixture(scope="module")
def toy():
    X, Y = symmetric_toy(1500, 0)
    est = FlowMatchingPosterior(max_epochs=100, batch_size=64, lr=2e-3, discrete={"wave": CHOICES}, **SMALL).fit(X, Y)
    return X, Y, est


XT = np.array([[0.3], [0.62], [0.9]], dtype=np.float32)


def test_toy_samples_cover_both_modes_where_regressors_predict_the_middle(toy):
    X, Y, est = toy
    S = est.sample(XT, 200, random_state=1)[:, :, 0]
    for i, x in enumerate(XT[:, 0]):
        above = float((S[i] > 0.5).mean())
        assert 0.3 <= above <= 0.7, (x, above)
        # on the modes 0.5 ± 0.4 x, not between them
        assert abs(np.median(np.abs(S[i] - 0.5)) - 0.4 * x) < 0.08, (x, np.median(np.abs(S[i] - 0.5)))
    for reg in (LinearRegression(), NearestNeighbours(n_neighbors=200, weights="uniform")):
        pred = np.asarray(reg.fit(X, Y["amount"]).predict(XT), dtype=float).reshape(-1)
        assert np.all(np.abs(pred - 0.5) < 0.08), (type(reg).__name__, pred)
    point = est.predict(XT)["amount"].to_numpy()
    assert np.all(np.abs(np.abs(point - 0.5) - 0.4 * XT[:, 0]) < 0.1), point  # predict picks a mode


def test_discrete_blocks_decode_to_their_choices(toy):
    _, _, est = toy
    S = est.sample(XT, 100, random_state=2)[:, :, 1]
    assert set(np.unique(S)) <= set(CHOICES)
    for i, want in enumerate(CHOICES):  # x = 0.3, 0.62, 0.9 -> choices 0, 1, 2
        assert np.mean(S[i] == want) >= 0.9, (want, np.unique(S[i], return_counts=True))
    proba = est.predict_discrete_proba(XT)["wave"]
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(proba.argmax(axis=1)) == [0, 1, 2]
    assert list(est.predict(XT)["wave"]) == list(CHOICES)


def test_draws_are_reproducible(toy):
    X, Y, est = toy
    a = est.sample(XT, 8, random_state=5)
    np.testing.assert_array_equal(a, est.sample(XT, 8, random_state=5))
    np.testing.assert_array_equal(a, est.sample(XT, 8, random_state=np.random.default_rng(5)))
    assert not np.array_equal(a[:, :, 0], est.sample(XT, 8, random_state=6)[:, :, 0])
    # a row's draws do not depend on the other rows of the batch
    np.testing.assert_allclose(a[1:2], est.sample(XT[1:2], 8, random_state=5), rtol=1e-10, atol=1e-12)
    pd.testing.assert_frame_equal(est.predict(XT), est.predict(XT))
    again = FlowMatchingPosterior(max_epochs=3, **SMALL).fit(X[:300], Y["amount"][:300])
    twice = FlowMatchingPosterior(max_epochs=3, **SMALL).fit(X[:300], Y["amount"][:300])
    np.testing.assert_array_equal(again.sample(XT, 4, random_state=0), twice.sample(XT, 4, random_state=0))


def test_shapes_and_bad_arguments(toy, tmp_path):
    X, Y, est = toy
    assert est.sample(XT, 1, random_state=0).shape == (3, 1, 2)
    assert est.predict(XT).shape == (3, 2)
    series = FlowMatchingPosterior(max_epochs=2, **SMALL).fit(X[:100], Y["amount"][:100])
    assert series.sample(XT, 5, random_state=0).shape == (3, 5, 1)
    assert series.predict(XT).shape == (3,)
    with pytest.raises(ValueError, match="n_samples"):
        est.sample(XT, 0)
    with pytest.raises(NotFittedError):
        FlowMatchingPosterior().sample(XT, 2)
    with pytest.raises(ValueError, match="ode_method"):
        FlowMatchingPosterior(ode_method="rk4").fit(X[:10], Y["amount"][:10])
    # the weights hooks of synth_probe.models.io give back the same draws
    est._save_torch(tmp_path)
    loaded = FlowMatchingPosterior(max_epochs=150, discrete={"wave": CHOICES}, **SMALL)
    loaded.__dict__.update({k: v for k, v in est.__dict__.items() if k.endswith("_") and k != "module_"})
    loaded._load_torch(tmp_path)
    np.testing.assert_array_equal(loaded.sample(XT, 4, random_state=0), est.sample(XT, 4, random_state=0))


# ---------------------------------------------------------------------------------------- the emulation
SETTINGS = RenderSettings(note_length=0.5, render_length=0.5, sample_rate=16000)
N_PAIRS, N_TEST = 150, 30


def _features(audio: np.ndarray) -> np.ndarray:
    """Log-mel profile: 32 bands averaged over 4 segments of the clip."""
    return LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, n_mels=32, time_pool=4).fit_transform(audio)


@pytest.fixture(scope="module")
def lfo():
    """LFO1 (sine, key-triggered) on the pitch of both oscillators; amount and phase vary.

    The training set holds each patch and its mirror (1 - amount, phase + 0.5), as a
    large random dataset holds near-mirrors: the same sound with both signs.
    """
    synth = get_synth("noisemaker")
    base = synth.default_patch()
    base.update(lfo1destination=1.0, lfo1keytrigger=1.0, lfo1waveform=0.0, lfo1rate=0.5)
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, N_PAIRS + N_TEST)
    p = rng.uniform(0.0, 1.0, N_PAIRS + N_TEST)
    amount = np.concatenate([a[:N_PAIRS], 1.0 - a[:N_PAIRS], a[N_PAIRS:]])
    phase = np.concatenate([p[:N_PAIRS], (p[:N_PAIRS] + 0.5) % 1.0, p[N_PAIRS:]])
    vectors = np.stack([synth.patch_vector({**base, "lfo1amount": x, "lfo1phase": y}) for x, y in zip(amount, phase)])
    audio = render_many(synth, vectors, SETTINGS)
    X = _features(audio)
    Y = pd.DataFrame({"lfo1amount": amount, "lfo1phase": phase})
    n = 2 * N_PAIRS
    est = FlowMatchingPosterior(max_epochs=150, validation_fraction=0.0, lr=2e-3, batch_size=64, **SMALL)
    est.fit(X[:n], Y[["lfo1amount"]][:n])
    return synth, audio, X, Y, est, n, base


@pytest.fixture(scope="module")
def lfo_joint(lfo):
    """The posterior of (amount, phase): its draws can be rendered as the whole LFO setting."""
    synth, audio, X, Y, _, n, base = lfo
    est = FlowMatchingPosterior(max_epochs=150, validation_fraction=0.0, lr=2e-3, batch_size=64, **SMALL)
    return est.fit(X[:n], Y[:n])


def test_emulation_lfo_amount_posterior_puts_mass_on_both_signs(lfo):
    synth, audio, X, Y, est, n, base = lfo
    # the premise: a patch and its mirror render the same sound
    assert multi_resolution_log_mel_distance(audio[0], audio[N_PAIRS], SETTINGS.sample_rate) < 1e-3
    truth = Y["lfo1amount"].to_numpy()[n:]
    far = np.abs(truth - 0.5) > 0.2
    assert far.sum() >= 10
    S = est.sample(X[n:], 64, random_state=1)[:, :, 0]
    above = (S[far] > 0.5).mean(axis=1)
    assert np.mean((above >= 0.3) & (above <= 0.7)) >= 0.8, np.round(above, 2)
    dev = np.median(np.abs(S[far] - 0.5))
    true_dev = np.median(np.abs(truth[far] - 0.5))
    assert dev > 0.6 * true_dev, (dev, true_dev)  # draws sit out on the modes
    knn = NearestNeighbours(n_neighbors=10).fit(X[:n], Y[["lfo1amount"]][:n]).predict(X[n:])["lfo1amount"].to_numpy()
    assert np.median(np.abs(knn[far] - 0.5)) < 0.1  # the regressor predicts the middle


def test_best_of_k_keeps_the_closest_draw(lfo, lfo_joint):
    synth, audio, X, Y, _, n, base = lfo
    est = lfo_joint
    truth = Y["lfo1amount"].to_numpy()[n:]
    rows = n + np.flatnonzero(np.abs(truth - 0.5) > 0.2)[:4]  # sounds with a deep pitch modulation
    one = best_of_k(est, synth, SETTINGS, audio[rows], k=1, X=X[rows], base=base, random_state=3)
    six = best_of_k(est, synth, SETTINGS, audio[rows], k=6, X=X[rows], base=base, random_state=3)
    assert six.all_distances.shape == (4, 6) and six.audio.shape == (4, SETTINGS.n_samples)
    np.testing.assert_array_equal(six.distances, six.all_distances.min(axis=1))
    assert np.all((six.n_renders >= 1) & (six.n_renders <= 6))
    # the first of 6 draws is the single draw of k=1 (same seed), so keeping the best never loses
    np.testing.assert_allclose(six.all_distances[:, 0], one.distances)
    assert np.all(six.distances <= one.distances)
    drawn = sample_patches(est, synth, audio[rows], 6, X=X[rows], base=base, random_state=3)
    cols = [synth.param_names.index(c) for c in ("lfo1amount", "lfo1phase")]
    for i, patch in enumerate(six.patches):
        assert set(patch) == set(synth.param_names)
        assert patch["lfo1destination"] == 1.0 and patch["lfo1rate"] == pytest.approx(0.5)
        np.testing.assert_allclose([patch["lfo1amount"], patch["lfo1phase"]], drawn[i, six.chosen[i], cols])
        rerender = synth.render_vector(synth.patch_vector(patch), SETTINGS)
        d = multi_resolution_log_mel_distance(audio[rows[i]], rerender, SETTINGS.sample_rate)
        assert d == pytest.approx(six.distances[i], abs=1e-6)
    # the regressor's middle (no pitch modulation) is farther than the best of 6 draws
    mid = synth.patch_vector({**base, "lfo1amount": 0.5})
    d_mid = [multi_resolution_log_mel_distance(audio[r], synth.render_vector(mid, SETTINGS), SETTINGS.sample_rate)
             for r in rows]
    assert np.median(six.distances) < np.median(d_mid), (six.distances, d_mid)


def test_best_of_k_refuses_bad_input(lfo):
    synth, audio, X, Y, est, n, base = lfo
    with pytest.raises(ParameterValueError, match="k must be"):
        best_of_k(est, synth, SETTINGS, audio[:1], k=0)
    with pytest.raises(AudioError, match="samples"):
        best_of_k(est, synth, SETTINGS, audio[:1, :100], k=2)
    with pytest.raises(ParameterValueError, match="sample"):
        best_of_k(NearestNeighbours().fit(X[:20], Y[:20]), synth, SETTINGS, audio[:1], k=2, X=X[:1])
    with pytest.raises(ParameterValueError, match="unnamed"):
        unnamed = FlowMatchingPosterior(max_epochs=1, **SMALL).fit(X[:20], Y.to_numpy()[:20])
        best_of_k(unnamed, synth, SETTINGS, audio[:1], k=2, X=X[:1])


def test_spectrogram_encoder_shapes_and_layout_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8 * 6)).astype(np.float32)
    Y = pd.DataFrame({"a": rng.uniform(size=40), "w": rng.integers(0, 3, size=40) / 2.0})
    est = FlowMatchingPosterior(input_shape=(8, 6), channels=(4, 8), max_epochs=2, discrete={"w": 3}, **SMALL)
    S = est.fit(X, Y).sample(X[:3], 5, random_state=0)
    assert S.shape == (3, 5, 2) and set(np.unique(S[:, :, 1])) <= {0.0, 0.5, 1.0}
    assert est.dim_ == 1 + 3
    with pytest.raises(ValueError, match="input_shape"):
        FlowMatchingPosterior(input_shape=(7, 6), max_epochs=1).fit(X, Y)
