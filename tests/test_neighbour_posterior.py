"""NeighbourPosterior: draws are training patches (both modes of a symmetric target), seeds, shapes;
closest_stored: retrieval of stored renders by the matching distance; the builder and sample_patches on the emulation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from synth_probe.errors import ParameterValueError
from synth_probe.matching import closest_stored, sample_patches
from synth_probe.models import NearestNeighbours, NeighbourPosterior
from synth_probe.pipeline import build_pipeline
from synth_probe.spectral import multi_resolution_log_mel_distance
from synth_probe.training import target_layout

from toys import CHOICES, symmetric_toy

XT = np.array([[0.3], [0.62], [0.9]])


@pytest.fixture(scope="module")
def toy():
    X, Y = symmetric_toy(1500, 0)
    return X, Y, NeighbourPosterior(n_neighbors=64, discrete={"wave": CHOICES}).fit(X, Y)


def test_draws_cover_both_modes_where_the_neighbours_mean_sits_in_the_middle(toy):
    X, Y, est = toy
    S = est.sample(XT, 48, random_state=1)
    for i, x in enumerate(XT[:, 0]):
        above = float((S[i, :, 0] > 0.5).mean())
        assert 0.3 <= above <= 0.7, (x, above)
        # on the modes 0.5 ± 0.4 x: every draw is a training patch of a sound like this one
        assert np.all(np.abs(np.abs(S[i, :, 0] - 0.5) - 0.4 * x) < 0.03), (x, S[i, :, 0])
        assert set(np.unique(S[i, :, 1])) <= set(CHOICES)
    # every draw is one of the training rows
    train = {tuple(r) for r in Y.to_numpy().round(12)}
    assert all(tuple(r) in train for r in S.reshape(-1, 2).round(12))
    mean = NearestNeighbours(n_neighbors=64, weights="uniform").fit(X, Y).predict(XT)["amount"].to_numpy()
    assert np.all(np.abs(mean - 0.5) < 0.2 * XT[:, 0]), mean  # between the modes, nearer the middle
    # predict: the posterior mean (continuous) and mode (discrete) of the same neighbours, as the kNN regression
    point = est.predict(XT)
    pd.testing.assert_frame_equal(point, NearestNeighbours(n_neighbors=64, discrete={"wave": CHOICES}).fit(X, Y)
                                  .predict(XT))
    assert list(point["wave"]) == list(CHOICES)
    proba = est.predict_discrete_proba(XT)["wave"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(proba.argmax(axis=1)) == [0, 1, 2]


def test_draws_follow_the_weights_and_the_neighbours_are_the_training_rows(toy):
    X, Y, est = toy
    dist, rows = est.neighbours(XT)
    assert rows.shape == (3, 64) and np.all(np.diff(dist, axis=1) >= 0)
    # the same rows as the regression's neighbours, nearest first
    _, knn_rows = NearestNeighbours(n_neighbors=64).fit(X, Y).index_.kneighbors(est.scaler_.transform(XT), n_neighbors=64)
    np.testing.assert_array_equal(rows, knn_rows)
    # without replacement up to n_neighbors: 64 draws are the 64 neighbours, each once
    S = est.sample(XT, 64, random_state=0)
    for i in range(3):
        np.testing.assert_allclose(np.sort(S[i, :, 0]), np.sort(Y["amount"].to_numpy()[rows[i]]))
    # more draws than neighbours: with replacement, still only neighbours
    many = est.sample(XT, 200, random_state=0)
    assert many.shape == (3, 200, 2)
    assert set(np.round(many[0, :, 0], 12)) <= set(np.round(Y["amount"].to_numpy()[rows[0]], 12))
    # uniform weights draw the neighbours about equally; distance weights favour the nearest
    near = NeighbourPosterior(n_neighbors=8).fit(np.arange(100.0)[:, None], pd.DataFrame({"a": np.arange(100) / 99}))
    first = [near.sample([[50.2]], 1, random_state=s)[0, 0, 0] for s in range(300)]
    assert np.mean(np.isclose(first, 50 / 99)) > 0.25  # the nearest neighbour (distance 0.2) is drawn first most


def test_draws_are_reproducible_and_bad_arguments_are_refused(toy):
    X, Y, est = toy
    a = est.sample(XT, 8, random_state=5)
    np.testing.assert_array_equal(a, est.sample(XT, 8, random_state=5))
    np.testing.assert_array_equal(a, est.sample(XT, 8, random_state=np.random.default_rng(5)))
    assert not np.array_equal(a, est.sample(XT, 8, random_state=6))
    np.testing.assert_array_equal(a[1:2], est.sample(XT[1:2], 8, random_state=5))  # rows do not interact
    series = NeighbourPosterior(n_neighbors=5).fit(X[:100], Y["amount"][:100])
    assert series.sample(XT, 3, random_state=0).shape == (3, 3, 1)
    assert series.predict(XT).shape == (3,)
    with pytest.raises(ValueError, match="n_samples"):
        est.sample(XT, 0)
    with pytest.raises(NotFittedError):
        NeighbourPosterior().sample(XT, 2)
    with pytest.raises(ParameterValueError, match="n_neighbors"):
        NeighbourPosterior(n_neighbors=0).fit(X[:10], Y[:10])


def _tones(freqs, sr=8000, n=4000, seed=0):
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    return np.stack([np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * t / t[-1]) for f in freqs]).astype(np.float32) \
        + 1e-4 * rng.standard_normal((len(freqs), n)).astype(np.float32)


def test_closest_stored_ranks_candidates_by_the_matching_distance():
    library = _tones([200, 300, 450, 600, 900, 1300])
    targets = _tones([450, 880], seed=1)
    rows = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    best = closest_stored(targets, library, rows, 8000, 3)
    assert best.shape == (2, 3)
    for i, t in enumerate(targets):
        d = [multi_resolution_log_mel_distance(t, library[j], 8000) for j in rows[i]]
        np.testing.assert_array_equal(best[i], rows[i][np.argsort(d, kind="stable")[:3]])
    assert best[0, 0] == 2 and best[1, 0] == 4
    np.testing.assert_array_equal(closest_stored(targets, library, rows, 8000, 3, n_jobs=2), best)
    assert closest_stored(targets, library, rows[:, :2], 8000, 5).shape == (2, 2)
    with pytest.raises(ParameterValueError, match="rows"):
        closest_stored(targets, library, rows[:1], 8000, 2)
    with pytest.raises(ParameterValueError, match="k must"):
        closest_stored(targets, library, rows, 8000, 0)


@pytest.fixture(scope="module")
def emulation():
    """40 NoiseMaker renders (cutoff and oscillator 1's waveform vary), a neighbours pipeline on the first 32."""
    from synth_probe.render import render_many
    from synth_probe.synths.base import RenderSettings
    from synth_probe.synths.registry import get_synth

    synth = get_synth("noisemaker")
    settings = RenderSettings(note_length=0.3, render_length=0.4, sample_rate=16000)
    rng = np.random.default_rng(0)
    base = synth.default_patch()
    Y = pd.DataFrame({"cutoff": rng.uniform(0.2, 1.0, 40), "osc1waveform": rng.choice([0.0, 0.5], 40)})
    vectors = np.stack([synth.patch_vector({**base, **r}) for r in Y.to_dict("records")])
    audio = render_many(synth, vectors, settings)
    pipe = build_pipeline("neighbours", features="logmel-stats", synth="noisemaker", sample_rate=16000,
                          note_length=0.3, n_samples=audio.shape[1], overrides={"n_neighbors": 4},
                          discrete=target_layout(list(Y.columns), synth=synth))
    pipe.fit(audio[:32], Y[:32])
    return synth, base, Y, audio, pipe


def test_the_builder_makes_a_neighbours_pipeline_whose_draws_fill_whole_patches(emulation):
    """Through the one builder and sample_patches, on the emulation: draws are full synth vectors."""
    synth, base, Y, audio, pipe = emulation
    assert type(pipe[-1]).__name__ == "NeighbourPosterior"
    drawn = sample_patches(pipe, synth, audio[32:], 3, random_state=0)
    assert drawn.shape == (8, 3, len(synth.param_names))
    j = synth.param_names.index("cutoff")
    assert set(np.round(drawn[:, :, j].ravel(), 9)) <= set(np.round(Y["cutoff"][:32], 9))
    assert np.allclose(np.delete(drawn[0, 0], [j, synth.param_names.index("osc1waveform")]),
                       np.delete(synth.patch_vector(base), [j, synth.param_names.index("osc1waveform")]))


def test_match_eval_starts_from_the_retrieved_neighbours(emulation):
    """The amsynth benchmark's --posterior-rerank: the start patches are the neighbours ranked by stored audio."""
    from synth_probe.bench.match_eval import _posterior_vectors

    synth, base, Y, audio, pipe = emulation
    targets = audio[32:]
    vecs = _posterior_vectors(pipe, synth, targets, 2, seed=0, rerank=True, audio=audio[:32], Y=Y[:32],
                              sample_rate=16000)
    _, rows = pipe[-1].neighbours(pipe[:-1].transform(targets))
    best = closest_stored(targets, audio[:32], rows, 16000, 2)
    j = synth.param_names.index("cutoff")
    assert vecs.shape == (8, 2, len(synth.param_names))
    np.testing.assert_allclose(vecs[:, :, j], Y["cutoff"].to_numpy()[best])
    # without rerank: the posterior's own draws
    np.testing.assert_array_equal(
        _posterior_vectors(pipe, synth, targets, 3, seed=1, rerank=False, audio=audio[:32], Y=Y[:32],
                           sample_rate=16000),
        sample_patches(pipe, synth, targets, 3, random_state=1))


def test_the_last_neighbour_query_is_reused_but_never_saved(toy):
    """predict, then the class and level probabilities of the same rows search the training set once."""
    from sklearn.base import clone

    X, Y, est = toy
    dist, rows = est.neighbours(XT)
    from synth_probe.models.knn import _LAST_QUERY

    assert _LAST_QUERY[est][1][1].shape == rows.shape  # kept beside the estimator, not in it
    rows[:] = -1  # a caller's changes do not reach the kept answer
    again = est.neighbours(XT)[1]
    assert again.min() >= 0
    moved = est.neighbours(XT + 0.05)[1]  # other rows: searched again
    assert not np.array_equal(moved, again)
    np.testing.assert_array_equal(est.neighbours(XT)[1], again)
    refit = clone(est).fit(X, Y)
    refit.neighbours(XT)
    refit.fit(X[::-1], Y[::-1])  # the same sounds in reverse order: the answer must name the new rows
    np.testing.assert_array_equal(refit.neighbours(XT)[1], len(X) - 1 - again)
    fewer = clone(est).set_params(n_neighbors=8).fit(X, Y)
    assert fewer.neighbours(XT)[1].shape == (3, 8)
    np.testing.assert_array_equal(fewer.neighbours(XT)[1], again[:, :8])
