"""The ``matching`` feature set: rows whose L1 distance is the match distance, and the neighbour posterior on them
(retrieval of the training renders the match distance ranks closest), on real emulation renders."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_probe.errors import ParameterValueError
from synth_probe.features import MatchingSpectrogram
from synth_probe.matching import MatchObjective
from synth_probe.pipeline import build_pipeline
from synth_probe.synths.base import RenderSettings
from synth_probe.training import target_layout

SR = 16000
SETTINGS = RenderSettings(note_length=0.3, render_length=0.4, sample_rate=SR)


@pytest.fixture(scope="module")
def renders():
    """36 NoiseMaker renders in which cutoff, resonance and oscillator 1's waveform vary."""
    from synth_probe.render import render_many
    from synth_probe.synths.registry import get_synth

    synth = get_synth("noisemaker")
    rng = np.random.default_rng(3)
    base = synth.default_patch()
    Y = pd.DataFrame({"cutoff": rng.uniform(0.2, 1.0, 36), "resonance": rng.uniform(0, 0.8, 36),
                      "osc1waveform": rng.choice([0.0, 0.5], 36)})
    vectors = np.stack([synth.patch_vector({**base, **r}) for r in Y.to_dict("records")])
    return synth, Y, vectors, render_many(synth, vectors, SETTINGS)


def test_the_l1_distance_of_two_rows_is_the_match_distance(renders):
    synth, _, _, audio = renders
    F = MatchingSpectrogram(sample_rate=SR).fit_transform(audio)
    assert F.dtype == np.float32 and F.shape[0] == len(audio)
    for i in range(4):
        objective = MatchObjective(synth, audio[i], SETTINGS)
        for j in (i + 1, i + 5, 20):
            assert np.abs(F[i].astype(np.float64) - F[j]).sum() == pytest.approx(objective.distance_of(audio[j]),
                                                                                 rel=1e-4)
    # pooled frames: a smaller row whose L1 distance never exceeds the match distance
    P = MatchingSpectrogram(sample_rate=SR, time_pool=4).fit_transform(audio)
    assert P.shape[1] < F.shape[1] / 3
    exact = np.abs(F[:, None, :].astype(np.float64) - F[None]).sum(-1)
    pooled = np.abs(P[:, None, :].astype(np.float64) - P[None]).sum(-1)
    assert np.all(pooled <= exact + 1e-6)
    assert np.corrcoef(pooled[np.triu_indices(len(F), 1)], exact[np.triu_indices(len(F), 1)])[0, 1] > 0.9


def test_bad_settings_are_refused():
    X = np.zeros((2, 4000), np.float32)
    X[:, ::40] = 0.5
    for bad, match in (({"resolutions": [(512,)]}, "resolutions"), ({"resolutions": "x"}, "resolutions"),
                       ({"time_pool": 0}, "time_pool"), ({"resolutions": []}, "resolutions")):
        with pytest.raises(ParameterValueError, match=match):
            MatchingSpectrogram(**bad).fit(X)


def test_the_neighbour_posterior_on_them_retrieves_the_renders_the_match_distance_ranks_closest(renders, tmp_path):
    from synth_probe.models import load_model
    from synth_probe.models.io import save_model

    synth, Y, _, audio = renders
    kw = dict(features="matching", synth="noisemaker", sample_rate=SR, note_length=0.3, n_samples=audio.shape[1],
              discrete=target_layout(list(Y.columns), synth=synth))
    pipe = build_pipeline("neighbours", overrides={"n_neighbors": 5}, **kw)
    est = pipe[-1]
    assert (est.metric, est.standardize) == ("manhattan", False)  # the builder's choice for these features
    pipe.fit(audio[:30], Y[:30])
    dist, rows = est.neighbours(pipe[:-1].transform(audio[30:]))
    for i, t in enumerate(audio[30:]):
        objective = MatchObjective(synth, t, SETTINGS)
        d = np.array([objective.distance_of(a) for a in audio[:30]])
        np.testing.assert_array_equal(rows[i], np.argsort(d, kind="stable")[:5])
        np.testing.assert_allclose(dist[i], np.sort(d)[:5], rtol=1e-4)
    # saved and loaded: the feature step is a trusted type, the neighbours the same
    save_model(pipe, tmp_path / "m", metadata={"render": SETTINGS.to_dict()})
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again[-1].neighbours(again[:-1].transform(audio[30:]))[1], rows)
    # an explicit setting wins over the builder's
    assert build_pipeline("knn", overrides={"metric": "euclidean"}, **kw)[-1].metric == "euclidean"
    assert build_pipeline("knn", **kw)[-1].standardize is False
