"""A probe's renders as input channels of the spectrogram models (``input_shape=(n_renders, bins, frames)``)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from synth_probe.features import LogMelSpectrogram, ProbeFeatures
from synth_probe.models._torch import check_input_shape, image_dims, image_stats, standardize_images
from synth_probe.models.ast import SpectrogramTransformer
from synth_probe.models.autoencoder import AutoencoderMLP
from synth_probe.models.cnn import SpectrogramCNN
from synth_probe.models.io import load_model, save_model
from synth_probe.models.posterior import FlowMatchingPosterior
from synth_probe.pipeline import build_estimator, feature_step, input_shape

C, H, W = 3, 8, 6  # renders, mel bins, frames
N = 24

# tiny networks on one thread, two epochs: each fit takes well under a second
_TINY = {
    "cnn": (SpectrogramCNN, dict(channels=(4, 8), hidden=16)),
    "cnn-residual": (SpectrogramCNN, dict(channels=(4, 8), residual=True, hidden=16)),
    "autoencoder": (AutoencoderMLP, dict(channels=(4, 8), latent_dim=8, hidden=(16,), pretrain_epochs=2)),
    "transformer": (SpectrogramTransformer, dict(patch_size=(4, 3), d_model=16, n_layers=1, n_heads=2,
                                                 dim_feedforward=32)),
    "posterior": (FlowMatchingPosterior, dict(channels=(4, 8), hidden=16, context_dim=8, n_predict_samples=4,
                                              ode_steps=2)),
}


def tiny(name: str, **kw):
    cls, defaults = _TINY[name]
    return cls(**{"num_threads": 1, "max_epochs": 2, "random_state": 0, **defaults, **kw})


def probe_rows(n: int = N, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of ``C`` images (render after render, each row-major) with a different dB level per channel.

    ``a`` is the brightness of a row of channel 1 only; ``w`` a 3-way choice.
    """
    rng = np.random.default_rng(seed)
    imgs = rng.normal(size=(n, C, H, W)).astype(np.float32) + np.array([-60.0, -30.0, 0.0], np.float32)[None, :, None, None]
    a = rng.uniform(size=n)
    imgs[:, 1, 2, :] += 4.0 * a[:, None].astype(np.float32)
    w = rng.integers(0, 3, size=n)
    return imgs.reshape(n, -1), pd.DataFrame({"a": a, "w": w / 2.0})


def first_layer_in_channels(est) -> int:
    """Input channels of the network's first layer that reads the image."""
    module = est.module_
    if isinstance(est, FlowMatchingPosterior):
        module = module.trunk
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
    raise AssertionError("no convolution")


# --------------------------------------------------------------------------- the pipeline's shape
def test_input_shape_of_one_and_of_three_renders():
    renders3 = ((48, 100, 0.3), (60, 100, 0.3), (72, 100, 0.3))
    n_samples = 4000
    single = feature_step("logmel", sample_rate=8000, note_length=None)
    one = input_shape(single, n_samples)
    assert len(one) == 2 and isinstance(single, LogMelSpectrogram)
    # a probe of one render keeps the 2-tuple (saved models and datasets of single renders stay valid)
    step1 = feature_step("logmel", sample_rate=8000, note_length=None, renders=renders3[:1])
    assert isinstance(step1, ProbeFeatures) and input_shape(step1, n_samples) == one
    step3 = feature_step("logmel", sample_rate=8000, note_length=None, renders=renders3)
    shape3 = input_shape(step3, n_samples)
    assert shape3 == (3, *one)
    # the step's rows are exactly the channels' images one after the other
    X = (0.1 * np.random.default_rng(0).standard_normal((2, 3 * n_samples))).astype(np.float32)
    F = step3.fit(X).transform(X)
    assert F.shape == (2, int(np.prod(shape3)))
    np.testing.assert_allclose(F.reshape(2, *shape3)[:, 2], single.fit_transform(X[:, 2 * n_samples:]).reshape(2, *one),
                               rtol=1e-5, atol=1e-5)
    # tabular probe features are no image: no shape
    assert input_shape(feature_step("handcrafted", sample_rate=8000, note_length=0.3, renders=renders3), n_samples) \
        is None


def test_build_estimator_takes_a_three_tuple():
    est = build_estimator("cnn", input_shape=[C, H, W], seed=0)
    assert est.input_shape == (C, H, W)


# --------------------------------------------------------------------------- the shared shape handling
def test_shape_helpers():
    assert check_input_shape([C, H, W], C * H * W) == (C, H, W)
    assert check_input_shape((H, W), H * W) == (H, W)
    assert image_dims((H, W)) == (1, H, W) and image_dims((C, H, W)) == (C, H, W)
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        image_dims((1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"\(n_channels, n_mels, n_frames\) of positive ints"):
        check_input_shape((1, 2, 3, 4), 24)
    with pytest.raises(ValueError, match="positive ints"):
        check_input_shape((0, H, W), 0)
    X, _ = probe_rows()
    mean, std = image_stats(X.astype(np.float64), (C, H, W))
    assert mean.shape == std.shape == (C, H)
    np.testing.assert_allclose(mean.mean(axis=1), [-60.0, -30.0, 0.0], atol=0.5)
    t = standardize_images(X, (C, H, W), mean, std)
    assert t.shape == (N, C, H, W) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy().mean(axis=(0, 3)), 0.0, atol=1e-4)
    # the 2-tuple case is as before: one channel, statistics per mel band
    m2, s2 = image_stats(X[:, : H * W].astype(np.float64), (H, W))
    assert m2.shape == (H,)
    np.testing.assert_allclose(m2, mean[0], rtol=1e-6)


# --------------------------------------------------------------------------- every torch family
@pytest.mark.parametrize("name", list(_TINY))
def test_family_fits_three_channels(name):
    X, Y = probe_rows()
    est = tiny(name, input_shape=(C, H, W), discrete={"w": 3}).fit(X, Y)
    assert est.input_shape_ == (C, H, W)
    assert first_layer_in_channels(est) == C
    # per (channel, mel band) standardization: each channel keeps its own level
    assert est.x_mean_.shape == est.x_std_.shape == (C, H)
    np.testing.assert_allclose(est.x_mean_.mean(axis=1), [-60.0, -30.0, 0.0], atol=0.5)
    Xt, _ = probe_rows(5, seed=1)
    pred = est.predict(Xt)
    assert pred.shape == (5, 2) and list(pred.columns) == ["a", "w"]
    assert np.isfinite(pred.to_numpy()).all() and set(pred["w"]) <= {0.0, 0.5, 1.0}
    assert est.predict_discrete_proba(Xt)["w"].shape == (5, 3)
    if name == "autoencoder":
        assert len(est.pretrain_history_) == 2


def test_autoencoder_decoder_reconstructs_every_channel():
    from synth_probe.models.autoencoder import _Decoder, _Encoder

    enc, dec = _Encoder((4, 8), (2, 2), 8, in_channels=C), _Decoder((4, 8), (2, 2), 8, (C, H, W))
    x = torch.zeros(2, C, H, W)
    assert dec(enc(x)).shape == (2, C, H, W)
    assert _Decoder((4, 8), (2, 2), 8, (H, W))(enc.latent.weight.new_zeros(2, 8)).shape == (2, 1, H, W)


def test_one_channel_three_tuple_predicts_as_the_two_tuple():
    X, Y = probe_rows()
    X1, Xt = X[:, : H * W], probe_rows(5, seed=1)[0][:, : H * W]
    a = tiny("cnn", input_shape=(H, W)).fit(X1, Y)
    b = tiny("cnn", input_shape=(1, H, W)).fit(X1, Y)
    assert a.x_mean_.shape == (H,) and b.x_mean_.shape == (1, H)
    np.testing.assert_allclose(a.x_mean_, b.x_mean_[0])
    pd.testing.assert_frame_equal(a.predict(Xt), b.predict(Xt), check_exact=True)


# --------------------------------------------------------------------------- saving and errors
@pytest.mark.parametrize("name", ["cnn", "posterior"])
def test_save_and_load_three_channels(name, tmp_path):
    X, Y = probe_rows()
    Xt, _ = probe_rows(5, seed=1)
    est = tiny(name, input_shape=(C, H, W), discrete={"w": 3}).fit(X, Y)
    save_model(est, tmp_path / "m")
    header = json.loads((tmp_path / "m" / "model.json").read_text())
    assert header["params"]["input_shape"] == [C, H, W]  # JSON has lists ...
    back = load_model(tmp_path / "m")
    assert back.input_shape == (C, H, W) and back.input_shape_ == (C, H, W)  # ... read back as tuples
    assert back.x_mean_.shape == (C, H) and first_layer_in_channels(back) == C
    pd.testing.assert_frame_equal(est.predict(Xt), back.predict(Xt), check_exact=True)


@pytest.mark.parametrize("name", list(_TINY))
def test_wrong_row_length_names_the_expected_shape(name):
    X, Y = probe_rows()
    with pytest.raises(ValueError, match=r"input_shape=\(3, 8, 6\) holds 144 values but X has 143 features; "
                                         r"X must be spectrograms of shape \(n_channels, n_mels, n_frames\)"):
        tiny(name, input_shape=(C, H, W)).fit(X[:, :-1], Y)
    with pytest.raises(ValueError, match=r"input_shape must be None, \(n_mels, n_frames\) or "
                                         r"\(n_channels, n_mels, n_frames\)"):
        tiny(name, input_shape=(1, C, H, W)).fit(X, Y)
