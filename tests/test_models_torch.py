"""Tests of the torch estimators and their shared training loop (synth_probe.models._torch)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

from synth_probe.models._torch import (
    GenDropout,
    fit_loop,
    init_parameters,
    resolve_device,
    split_indices,
)
from synth_probe.models.ast import SpectrogramTransformer
from synth_probe.models.autoencoder import AutoencoderMLP
from synth_probe.models.baseline import MeanBaseline
from synth_probe.models.base import FitProgress, discrete_layout
from synth_probe.models.cnn import SpectrogramCNN
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

# tiny architectures; one thread (faster than two on a shared, busy 2-core machine)
_TINY = {
    "cnn": (SpectrogramCNN, dict(channels=(8, 16), hidden=32)),
    "cnn-residual": (SpectrogramCNN, dict(channels=(8, 16), residual=True, depth=1, hidden=32)),
    "autoencoder": (AutoencoderMLP, dict(channels=(8, 16), latent_dim=16, hidden=(32,), pretrain_epochs=2)),
    "transformer": (
        SpectrogramTransformer,
        dict(patch_size=(4, 4), d_model=32, n_layers=2, n_heads=4, dim_feedforward=64),
    ),
}


def tiny(name: str, **kw):
    cls, defaults = _TINY[name]
    return cls(**{"num_threads": 1, **defaults, **kw})


H, W = 16, 8


def bright_rows(n: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Spectrogram-like images whose bright row encodes ``cut`` and bright column a 3-way ``wave``.

    Returns X (n, H*W) float32 and Y with ``cut`` (continuous, in [0, 1]) and
    ``wave`` (unit values 0, 0.5, 1 of a 3-choice parameter).
    """
    rng = np.random.default_rng(seed)
    cut = rng.uniform(size=n)
    wave = rng.integers(0, 3, size=n)
    X = rng.normal(scale=0.5, size=(n, H, W)).astype(np.float32) - 40.0  # dB-like offset: standardized in fit
    pos = cut * (H - 1)
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    # the energy is split between two neighbouring rows so that the target is continuous, not 16 levels
    X[np.arange(n), lo, :] += (3.0 * (1 - frac))[:, None]
    X[np.arange(n), np.minimum(lo + 1, H - 1), :] += (3.0 * frac)[:, None]
    X[np.arange(n), :, 1 + 3 * wave] += 2.0
    return X.reshape(n, -1), pd.DataFrame({"cut": cut, "wave": wave / 2.0})


@pytest.fixture(scope="module")
def data():
    X, Y = bright_rows(360, seed=0)
    return X[:300], Y.iloc[:300].reset_index(drop=True), X[300:], Y.iloc[300:].reset_index(drop=True)


# --------------------------------------------------------------------------- learning, not collapsing
def test_cnn_does_not_collapse_to_the_mean(data):
    X, Y, Xt, Yt = data
    est = tiny("cnn", input_shape=(H, W), discrete={"wave": 3}, max_epochs=12, lr=3e-3, random_state=0)
    est.fit(X, Y)
    pred = est.predict(Xt)
    assert isinstance(pred, pd.DataFrame) and list(pred.columns) == ["cut", "wave"]
    base = MeanBaseline().fit(X, Y).predict(Xt)
    r2_base = r2_score(Yt["cut"], base["cut"])
    r2 = r2_score(Yt["cut"], pred["cut"])
    assert r2_base <= 0.01
    assert r2 > 0.8, est.history_
    assert pred["cut"].std() > 0.5 * Yt["cut"].std()  # spread out, not a constant 0.5
    assert (pred["wave"].values == Yt["wave"].values).mean() > 0.9  # chance is 1/3
    assert set(np.unique(pred["wave"])) <= {0.0, 0.5, 1.0}
    assert pred["cut"].between(0, 1).all()
    assert est.train_samples_per_s_ > 0 and np.isfinite(est.train_samples_per_s_)
    proba = est.predict_discrete_proba(Xt[:5])
    assert proba["wave"].shape == (5, 3) and np.allclose(proba["wave"].sum(axis=1), 1)


def test_an_output_without_signal_shrinks_to_the_mean(data):
    X, Y, Xt, Yt = data
    rng = np.random.default_rng(5)
    Y = Y.assign(noise=rng.uniform(size=len(Y)))  # nothing in X tells it
    est = tiny("cnn", input_shape=(H, W), discrete={"wave": 3}, max_epochs=12, lr=3e-3, random_state=0).fit(X, Y)
    cut, noise = est.output_scale_
    assert cut > 0.8 and noise < 0.5, est.output_scale_
    pred = est.predict(Xt)
    # the noise column stays near the training mean, so it costs (almost) nothing against the mean predictor
    assert pred["noise"].std() < 0.5 * Y["noise"].std()
    assert r2_score(Yt["cut"], pred["cut"]) > 0.8


@pytest.mark.parametrize("name", ["cnn-residual", "autoencoder", "transformer"])
def test_other_models_beat_the_mean(data, name):
    X, Y, Xt, Yt = data
    epochs = 14 if name == "transformer" else 6  # a transformer learns positions slowly from 300 images
    est = tiny(name, input_shape=(H, W), discrete={"wave": 3}, max_epochs=epochs, lr=3e-3, random_state=0).fit(X, Y)
    pred = est.predict(Xt)
    assert (pred["wave"].values == Yt["wave"].values).mean() > 2 / 3  # twice chance
    assert r2_score(Yt["cut"], pred["cut"]) > 0.5  # measured 0.74-0.92 over seeds
    assert len(est.history_) == est.n_epochs_ and est.best_epoch_ >= 1


def test_cnn_learns_cutoff_from_real_noisemaker_renders(noisemaker):
    """48 real renders of a cutoff sweep (defaults elsewhere) -> LogMelSpectrogram -> CNN; held-out R² near 1."""
    from sklearn.pipeline import Pipeline

    from synth_probe.features import LogMelSpectrogram

    cut = np.linspace(0.02, 0.98, 48)
    audio = np.stack(
        [noisemaker.render({"cutoff": float(c)}, render_length=0.5, note_length=0.4, sample_rate=16000) for c in cut]
    )
    mel = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=256, n_mels=32)
    test = np.arange(len(cut)) % 4 == 1
    Y = pd.DataFrame({"cutoff": cut})
    model = Pipeline(
        [
            ("mel", mel),
            (
                "cnn",
                SpectrogramCNN(
                    input_shape=(mel.n_bins(), mel.n_frames(audio.shape[1])),
                    channels=(8, 16, 32),
                    hidden=32,
                    discrete={},
                    synth="noisemaker",
                    max_epochs=40,
                    patience=None,
                    validation_fraction=0.0,
                    lr=3e-3,
                    batch_size=12,
                    random_state=0,
                    num_threads=1,
                ),
            ),
        ]
    ).fit(audio[~test], Y[~test])
    pred = model.predict(audio[test])
    r2 = r2_score(cut[test], pred["cutoff"])
    r2_base = r2_score(cut[test], MeanBaseline().fit(audio[~test], Y[~test]).predict(audio[test])["cutoff"])
    assert r2_base < 0.0
    assert r2 > 0.8, (r2, pred["cutoff"].round(2).tolist())
    print(f"held-out R² {r2:.3f} (mean baseline {r2_base:.3f})")


# --------------------------------------------------------------------------- the training loop
def test_same_seed_same_predictions_and_no_global_rng(data):
    X, Y, Xt, _ = data
    state = torch.random.get_rng_state()
    a = tiny("transformer", input_shape=(H, W), max_epochs=2, dropout=0.3, random_state=3).fit(X[:80], Y[:80])
    b = clone(a).fit(X[:80], Y[:80])
    c = clone(a).set_params(random_state=4).fit(X[:80], Y[:80])
    assert torch.equal(torch.random.get_rng_state(), state), "fit touched torch's global RNG"
    pa, pb, pc = (m.predict(Xt).to_numpy() for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 32)).astype(np.float32)
    y = rng.uniform(size=120)  # pure noise: the validation loss stops improving quickly
    est = tiny("cnn", max_epochs=40, patience=2, lr=1e-2, random_state=0).fit(X, y)
    hist = est.history_
    assert est.n_epochs_ < 40
    assert est.n_epochs_ == est.best_epoch_ + 2
    valid = [h["valid_loss"] for h in hist]
    assert est.best_epoch_ == int(np.argmin(valid)) + 1
    assert all(h["train_loss"] > 0 and h["samples_per_s"] > 0 for h in hist)


def test_split_indices_is_seeded_and_disjoint():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    tr, va = split_indices(50, 0.2, g1)
    tr2, va2 = split_indices(50, 0.2, g2)
    assert torch.equal(va, va2) and len(va) == 10 and len(tr) == 40
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert split_indices(5, 0.1, g1)[1] is None  # too few rows to hold out two
    assert split_indices(50, 0.0, g1)[1] is None


def test_fit_loop_trains_a_plain_module():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    lin = torch.nn.Linear(3, 1)
    init_parameters(lin, g)
    res = fit_loop(
        lin,
        lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
        (x, y),
        None,
        optimizer="adam",
        lr=0.05,
        weight_decay=0.0,
        batch_size=16,
        max_epochs=60,
        patience=None,
        generator=g,
        device=torch.device("cpu"),
    )
    assert res.history[-1]["train_loss"] < 0.01 * res.history[0]["train_loss"]
    assert res.samples_per_s > 0 and not res.stopped_early
    with pytest.raises(ValueError, match="optimizer must be"):
        fit_loop(lin, lambda m, b: m(b[0]).sum(), (x,), None, optimizer="sgd", lr=1, weight_decay=0,
                 batch_size=8, max_epochs=1, patience=None, generator=g, device=torch.device("cpu"))


def test_gen_dropout_uses_its_generator():
    d = GenDropout(0.5).train()
    x = torch.ones(1000)
    d.generator = torch.Generator().manual_seed(1)
    a = d(x)
    d.generator = torch.Generator().manual_seed(1)
    assert torch.equal(a, d(x))
    assert 300 < int((a == 0).sum()) < 700 and torch.allclose(a[a > 0], torch.tensor(2.0))
    assert torch.equal(d.eval()(x), x)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


# --------------------------------------------------------------------------- estimator contract
def test_autoencoder_frozen_encoder_stays_pretrained(data):
    X, Y, _, _ = data
    kw = dict(input_shape=(H, W), freeze_encoder=True, validation_fraction=0.0, random_state=0)
    a = tiny("autoencoder", max_epochs=1, **kw).fit(X[:100], Y[:100])
    b = tiny("autoencoder", max_epochs=4, **kw).fit(X[:100], Y[:100])
    assert len(a.pretrain_history_) == 2 and a.pretrain_samples_per_s_ > 0
    ea, eb = a.module_.encoder.state_dict(), b.module_.encoder.state_dict()
    assert all(torch.equal(ea[k], eb[k]) for k in ea)  # frozen: weights and batch-norm statistics
    assert not torch.equal(a.module_.heads.continuous.weight, b.module_.heads.continuous.weight)
    tuned = tiny("autoencoder", max_epochs=2, input_shape=(H, W), random_state=0).fit(X[:100], Y[:100])
    assert not all(torch.equal(ea[k], v) for k, v in tuned.module_.encoder.state_dict().items())
    none = tiny("autoencoder", max_epochs=1, input_shape=(H, W), pretrain_epochs=0, random_state=0)
    assert none.fit(X[:50], Y[:50]).pretrain_history_ == []


@pytest.mark.parametrize("name", list(_TINY))
def test_pickle_round_trip(data, name):
    X, Y, Xt, _ = data
    est = tiny(name, input_shape=(H, W), max_epochs=1, random_state=0).fit(X[:60], Y[:60])
    back = pickle.loads(pickle.dumps(est))
    assert all(p.device.type == "cpu" for p in back.module_.parameters())
    pd.testing.assert_frame_equal(est.predict(Xt), back.predict(Xt), check_exact=True)


@pytest.mark.parametrize("name", list(_TINY))
def test_save_and_load_with_models_io(data, name, tmp_path):
    from synth_probe.models.io import load_model, save_model

    X, Y, Xt, _ = data
    est = tiny(name, input_shape=(H, W), discrete={"wave": 3}, max_epochs=1, random_state=0).fit(X[:60], Y[:60])
    save_model(est, tmp_path / "m")
    # the weights file holds only tensors: it loads with weights_only=True on its own
    raw = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert set(raw) == {"module", "x_mean", "x_std", "y_mean", "y_std", "output_scale"}
    back = load_model(tmp_path / "m")
    assert type(back) is type(est) and back.input_shape_ == (H, W)
    assert back.history_ == est.history_ and back.train_samples_per_s_ == est.train_samples_per_s_
    pd.testing.assert_frame_equal(est.predict(Xt), back.predict(Xt), check_exact=True)
    np.testing.assert_array_equal(
        est.predict_discrete_proba(Xt)["wave"], back.predict_discrete_proba(Xt)["wave"]
    )


def test_single_target_array_and_synth_discrete_columns(data):
    X, Y, Xt, _ = data
    est = tiny("cnn", input_shape=(H, W), max_epochs=1, random_state=0).fit(X, Y["cut"].to_numpy())
    assert est.predict(Xt).shape == (len(Xt),)
    # with the synth's layout, discrete columns are classes (osc1waveform has 3 choices)
    Ys = pd.DataFrame({"cutoff": Y["cut"], "osc1waveform": Y["wave"]})
    lay = discrete_layout(NOISEMAKER_SPECS, list(Ys.columns))
    est = tiny("cnn", input_shape=(H, W), synth="noisemaker", discrete=lay, max_epochs=1, random_state=0).fit(X, Ys)
    assert est.targets_.n_classes == [3]
    assert list(est.module_.heads.discrete[0].weight.shape) == [3, 32]


def test_fit_callbacks_see_every_epoch_and_are_not_kept(data):
    # the progress hook is a fit argument (as LightGBM's and skorch's callbacks): clone and pickle never see it
    X, Y, _, _ = data
    seen: list[FitProgress] = []
    est = tiny("cnn", input_shape=(H, W), max_epochs=3, patience=None, random_state=0)
    est.fit(X, Y, callbacks=[seen.append])
    assert [p.step for p in seen] == [1, 2, 3] and {p.budget for p in seen} == {3}
    assert all(p.unit == "epoch" and np.isfinite(p.loss) for p in seen)
    assert [h["valid_loss"] if h.get("valid_loss") is not None else h["train_loss"] for h in est.history_] == [
        p.loss for p in seen]
    assert clone(est).get_params() == est.get_params()
    pickle.dumps(est)


def test_bad_input_shape_and_params_are_named(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match=r"input_shape=\(16, 9\) holds 144 values but X has 128 features"):
        tiny("cnn", input_shape=(16, 9), max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="max_epochs must be an int >= 1"):
        tiny("cnn", max_epochs=0).fit(X, Y)
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        tiny("cnn", validation_fraction=1.0).fit(X, Y)
    with pytest.raises(ValueError, match="n_heads=3 must divide d_model=32"):
        tiny("transformer", n_heads=3, max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="at least 2 samples"):
        tiny("cnn", max_epochs=1).fit(X[:1], Y[:1])


def test_bench_train_prints_samples_per_second(capsys):
    from synth_probe.bench.train import main

    assert main(["--n", "48", "--n-mels", "16", "--n-frames", "16", "--epochs", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("cnn", "cnn-residual", "autoencoder", "transformer"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert float(line.split()[1]) > 0


# --------------------------------------------------------------------------- gridded targets as classes
def _gridded(data):
    """``data`` with ``cut`` snapped to 8 levels (as the inversynth sampler draws it) and a free column."""
    X, Y, Xt, Yt = data
    lv = np.linspace(0.0, 1.0, 8)
    snap = lambda v: lv[np.abs(v.to_numpy()[:, None] - lv[None, :]).argmin(axis=1)]  # noqa: E731
    rng = np.random.default_rng(3)
    Y = Y.assign(cut=snap(Y["cut"]), free=rng.uniform(size=len(Y)))
    Yt = Yt.assign(cut=snap(Yt["cut"]), free=rng.uniform(size=len(Yt)))
    return X, Y, Xt, Yt, lv


@pytest.mark.parametrize("name", ["cnn", "autoencoder", "transformer"])
def test_torch_models_learn_a_gridded_parameter_as_classes(data, name, tmp_path):
    from synth_probe.metrics import parameter_report
    from synth_probe.models.io import load_model, save_model

    X, Y, Xt, Yt, lv = _gridded(data)
    epochs = {"cnn": 12, "autoencoder": 8, "transformer": 25}[name]  # a transformer's 8-way head learns slowly
    # one mapping serves every subset: the discrete and absent columns named in it are ignored
    est = tiny(name, input_shape=(H, W), discrete={"wave": 3}, max_epochs=epochs, lr=3e-3, random_state=0,
               levels={"cut": list(lv), "wave": [0.0, 0.5, 1.0], "absent": [0.0, 1.0]}).fit(X, Y)
    assert est.level_values_ == {"cut": list(lv)}
    # a class head of 8 levels after the discrete head; the linear head regresses only the free column
    heads = est.module_.heads
    assert [h.out_features for h in heads.discrete] == [3, 8] and heads.continuous.out_features == 1
    assert est.y_mean_.shape == (1,) and est.output_scale_.shape == (1,)
    proba = est.predict_level_proba(Xt)
    assert list(proba) == ["cut"] and proba["cut"].shape == (len(Xt), 8)
    np.testing.assert_allclose(proba["cut"].sum(axis=1), 1.0)
    pred = est.predict(Xt)
    np.testing.assert_allclose(pred["cut"], proba["cut"] @ lv)  # the mean of the levels
    assert list(est.predict_discrete_proba(Xt)) == ["wave"]
    # predict_with_proba gives the three in one forward pass
    calls = []
    hook = est.module_.register_forward_hook(lambda *_: calls.append(1))
    both, together = est.predict_with_proba(Xt)
    hook.remove()
    n_batches = -(-len(Xt) // est.batch_size)
    assert len(calls) == n_batches
    pd.testing.assert_frame_equal(both, pred, check_exact=True)
    assert list(together) == ["wave", "cut"]
    np.testing.assert_array_equal(together["cut"], proba["cut"])
    np.testing.assert_array_equal(together["wave"], est.predict_discrete_proba(Xt)["wave"])
    rep = parameter_report(Yt, pred, discrete={"wave": 3}, levels={"cut": lv}, proba={**proba})
    assert rep.loc["cut", "mpr"] > 85, rep  # chance 50; measured 91-99 over seeds 0 and 1
    assert (pred["wave"] == Yt["wave"]).mean() > 2 / 3
    # a saved model keeps its levels and its heads
    back = load_model(save_model(est, tmp_path / "m"))
    assert back.level_values_ == est.level_values_
    pd.testing.assert_frame_equal(back.predict(Xt), pred, check_exact=True)
    # without levels the column is regressed by the linear head, as before
    plain = tiny(name, input_shape=(H, W), discrete={"wave": 3}, max_epochs=1, random_state=0).fit(X, Y)
    assert plain.level_values_ == {} and plain.predict_level_proba(Xt) == {}
    assert plain.module_.heads.continuous.out_features == 2


def test_level_smoothing_spreads_the_target_over_neighbouring_levels(data):
    from synth_probe.models._heads import level_targets

    q = level_targets(torch.tensor([0, 3]), 8, 1.0, torch.float64)
    assert torch.allclose(q.sum(dim=1), torch.ones(2, dtype=torch.float64))
    assert q.argmax(dim=1).tolist() == [0, 3]
    assert q[1, 2] == q[1, 4] and q[1, 2] > q[1, 1] > q[1, 0] > 0  # symmetric, falling off with distance
    X, Y, Xt, Yt, lv = _gridded(data)
    kw = dict(input_shape=(H, W), discrete={"wave": 3}, levels={"cut": list(lv)}, max_epochs=8, lr=3e-3,
              random_state=0)

    def entropy(est):
        p = est.predict_level_proba(Xt)["cut"]
        return float(-(p * np.log(np.maximum(p, 1e-12))).sum(axis=1).mean())

    # one-hot targets (0) give sharper level probabilities than targets spread over two levels each side
    assert entropy(tiny("cnn", level_smoothing=0, **kw).fit(X, Y)) < entropy(tiny("cnn", level_smoothing=2, **kw).fit(X, Y))
    with pytest.raises(ValueError, match="level_smoothing must be a number >= 0"):
        tiny("cnn", level_smoothing=-1, **kw).fit(X, Y)
