"""FlowMatchingPosterior: samples of p(parameters | sound) by conditional flow matching.

Why a posterior: many patches sound alike (an LFO amount and its negative with
the phase half a cycle on, cutoff against key-follow, masked parameters), so
for one sound the knob values form several separate modes. A regressor trained
with squared error predicts the point between the modes, which sounds like
none of them. This estimator learns the whole conditional distribution and
draws patches from it; best-of-k sound matching
(:mod:`synth_probe.best_of_k`) renders the draws and keeps the closest.

The model (a short implementation of conditional flow matching with the linear
interpolation path, Lipman et al. 2023; Hayes et al. 2025 for synthesizers):

* **Target vector.** Continuous parameters are standardized (each column's
  training mean and standard deviation). Each discrete parameter with ``K``
  choices becomes a block of ``K`` values: ``+1`` for the chosen class and
  ``-1`` elsewhere, each plus uniform noise in ``(-0.5, 0.5)`` (dequantization),
  so that the block's argmax is the class. Samples are decoded by argmax.
* **Training.** With ``x1`` a target vector, ``x0 ~ N(0, I)`` and
  ``t ~ U(0, 1)``, a network ``v(x_t, t, c)`` regresses the velocity
  ``x1 - x0`` at ``x_t = (1 - t) x0 + t x1`` (mean squared error); ``c`` is an
  encoding of the features. Training goes through the suite's torch loop
  (:func:`~synth_probe.models._torch.fit_loop`: seeded batches, early stopping
  on held-out rows with fixed noise, best epoch kept).
* **Sampling.** ``x0 ~ N(0, I)`` is carried to ``t = 1`` by integrating the
  velocity with ``ode_steps`` Euler or midpoint steps (float64 on the CPU).
* **Encoder.** ``input_shape=None``: an MLP on standardized feature rows (the
  handcrafted descriptors, or any tabular features). ``input_shape=(n_mels,
  n_frames)``: the convolutional trunk of
  :class:`~synth_probe.models.cnn.SpectrogramCNN` on flattened spectrograms;
  ``input_shape=(n_channels, n_mels, n_frames)``: the same trunk with
  ``n_channels`` input channels (a probe's renders).

``predict`` returns one patch per sound: among ``n_predict_samples`` draws, the
draw whose values sit where the draws are densest (the highest sum over
parameters of the log of each parameter's kernel density among the draws; for a
discrete parameter the share of draws with its choice). It lies on one mode,
never between two. ``predict_discrete_proba`` gives the share of draws per
choice. Draws for ``predict`` use a seed fixed at ``fit``, so predictions are
reproducible; the same noise is used for every row, so a row's prediction does
not depend on the other rows of the batch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from synth_probe.models._torch import (
    LOOP_PARAMS_DOC,
    GenDropout,
    TorchBase,
    _torch_threads,
    build_module,
    check_input_shape,
    image_dims,
    image_stats,
    split_indices,
    standardization,
    standardize_images,
)
from synth_probe.models.cnn import _CNN

__all__ = ["FlowMatchingPosterior"]

#: rows x draws integrated at once when sampling (bounds memory)
_SAMPLE_CHUNK = 32768
#: times each validation row is repeated with its own fixed noise (steadier early stopping)
_VALID_REPEATS = 4


def _time_features(t: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """``[t, sin(2^k pi t), cos(2^k pi t)]`` for k < n_freqs; ``t`` of shape (n, 1) -> (n, 1 + 2 n_freqs)."""
    k = torch.arange(n_freqs, device=t.device, dtype=t.dtype)
    ang = t * (math.pi * 2.0**k)[None, :]
    return torch.cat([t, torch.sin(ang), torch.cos(ang)], dim=1)


class _FlowNet(nn.Module):
    """Feature encoder and velocity field ``v(x_t, t, c)``.

    ``context(x)`` maps standardized inputs ``(n, n_features)`` (MLP encoder) or
    ``(n, n_channels, n_mels, n_frames)`` (CNN trunk) to ``(n, context_dim)``;
    ``velocity(x_t (m, dim), t (m, 1), c (m, context_dim))`` returns ``(m, dim)``.
    """

    def __init__(
        self,
        n_features: int,
        dim: int,
        hidden: int,
        n_layers: int,
        context_dim: int,
        n_freqs: int,
        trunk: nn.Module | None,
        trunk_width: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_freqs = n_freqs
        self.trunk = trunk
        n_in = trunk_width if trunk is not None else n_features
        self.encoder = nn.Sequential(
            nn.Linear(n_in, hidden), nn.SiLU(), GenDropout(dropout), nn.Linear(hidden, context_dim), nn.SiLU(),
            GenDropout(dropout),
        )
        layers: list[nn.Module] = [nn.Linear(dim + 1 + 2 * n_freqs + context_dim, hidden), nn.SiLU()]
        for _ in range(n_layers - 1):
            layers += [GenDropout(dropout), nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        if self.trunk is not None:
            x = self.trunk.embed(x)
        return self.encoder(x)

    def velocity(self, xt: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([xt, _time_features(t, self.n_freqs), c], dim=1))


class FlowMatchingPosterior(TorchBase):
    """Conditional flow matching over the unit parameter vector: draws patches for a sound.

    Parameters
    ----------
    input_shape : tuple of (int, int), tuple of (int, int, int) or None, default=None
        None: ``X`` rows are feature vectors, encoded by an MLP. ``(n_mels,
        n_frames)``: ``X`` rows are flattened spectrograms (row-major), encoded
        by the :class:`~synth_probe.models.cnn.SpectrogramCNN` trunk.
        ``(n_channels, n_mels, n_frames)``: rows of ``n_channels`` flattened
        spectrograms (a probe's renders), the trunk's input channels.
    channels : tuple of int, default=(16, 32, 64, 128)
        Channels of the CNN trunk's stride-2 stages (only with ``input_shape``).
    hidden : int, default=256
        Width of the encoder's and the velocity network's hidden layers.
    n_layers : int, default=3
        Hidden layers of the velocity network.
    context_dim : int, default=128
        Width of the feature encoding the velocity is conditioned on.
    n_time_freqs : int, default=6
        Sine/cosine pairs encoding the flow time ``t``.
    ode_steps : int, default=10
        Integration steps from noise to a sample.
    ode_method : {{"midpoint", "euler"}}, default="midpoint"
        Midpoint takes two velocity evaluations per step, Euler one.
    n_predict_samples : int, default=32
        Draws per sound among which :meth:`predict` picks the densest.
    dropout : float, default=0.1
        Dropout after the hidden layers of the encoder and the velocity network
        (seeded masks); it keeps a small training set from being memorized.
{loop}

    Attributes
    ----------
    module_ : nn.Module
        The trained network (CPU).
    dim_ : int
        Length of the flow's vector: continuous parameters plus one block per
        discrete parameter of its number of choices.
    x_mean_, x_std_ : np.ndarray
        Input standardization: per feature (MLP encoder) or per mel band (CNN; per channel and
        mel band with a 3-tuple ``input_shape``).
    y_mean_, y_std_ : np.ndarray [shape=(n_continuous,)]
        Standardization of the continuous targets.
    predict_seed_ : int
        Seed of the draws of :meth:`predict` (from ``random_state``).
    history_ : list of dict
        Per-epoch ``train_loss`` / ``valid_loss`` (flow-matching MSE per vector entry).
    train_samples_per_s_ : float
        Training throughput of the fit (rows per second of optimizer steps).
    best_epoch_, n_epochs_ : int
    targets_, param_names_, n_features_in_ : see :class:`~synth_probe.models.base.SynthEstimator`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)).astype("float32")
    >>> Y = rng.uniform(size=(200, 2))
    >>> est = FlowMatchingPosterior(hidden=32, max_epochs=3, random_state=0).fit(X, Y)
    >>> est.sample(X[:4], 16, random_state=0).shape
    (4, 16, 2)
    >>> est.predict(X[:4]).shape
    (4, 2)
    """

    # sampling integrates the flow in float64 on the CPU
    _cpu_inference_dtype = torch.float64

    def __init__(
        self,
        *,
        input_shape: tuple[int, int] | tuple[int, int, int] | None = None,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        hidden: int = 256,
        n_layers: int = 3,
        context_dim: int = 128,
        n_time_freqs: int = 6,
        ode_steps: int = 10,
        ode_method: str = "midpoint",
        n_predict_samples: int = 32,
        dropout: float = 0.1,
        synth: str | None = None,
        discrete: Mapping[Any, Any] | None = None,
        batch_size: int = 256,
        max_epochs: int = 300,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        optimizer: str = "adamw",
        validation_fraction: float = 0.1,
        patience: int | None = 30,
        random_state: Any = None,
        device: str = "auto",
        num_threads: int | None = None,
        verbose: int = 0,
    ) -> None:
        self._store_init_args(locals())

    # ------------------------------------------------------------------ checks and layout
    def _check_params(self) -> None:
        super()._check_params()  # the loop's parameters, validated as for every torch estimator
        for name in ("hidden", "n_layers", "context_dim", "ode_steps", "n_predict_samples"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not isinstance(self.n_time_freqs, (int, np.integer)) or isinstance(self.n_time_freqs, bool) \
                or self.n_time_freqs < 0:
            raise ValueError(f"n_time_freqs must be an int >= 0, got {self.n_time_freqs!r}")
        if not (isinstance(self.dropout, (float, int)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.ode_method not in ("midpoint", "euler"):
            raise ValueError(f"ode_method must be 'midpoint' or 'euler', got {self.ode_method!r}")

    def _shape(self, n_features: int) -> tuple[int, ...] | None:
        if self.input_shape is None:
            return None
        return check_input_shape(self.input_shape, n_features)

    @property
    def _blocks(self) -> list[tuple[int, int]]:
        """(start, stop) of each discrete parameter's one-hot block in the flow vector."""
        out, start = [], len(self.y_mean_)
        for k in self.targets_.n_classes:
            out.append((start, start + int(k)))
            start += int(k)
        return out

    def _inputs(self, X: np.ndarray) -> torch.Tensor:
        """Standardized float32 inputs: (n, n_features), or (n, n_channels, n_mels, n_frames) with ``input_shape``."""
        if self.input_shape_ is None:
            Z = (X - self.x_mean_) / self.x_std_
            return torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))
        return standardize_images(X, self.input_shape_, self.x_mean_, self.x_std_)

    def _standardize_inputs(self, X: np.ndarray) -> None:
        if self.input_shape_ is not None:
            self.x_mean_, self.x_std_ = image_stats(X, self.input_shape_)
            return
        self.x_mean_, self.x_std_ = standardization(X.astype(np.float64), 0)

    def _build(self, n_features: int) -> nn.Module:
        trunk, width = None, 0
        if self.input_shape_ is not None:
            channels = tuple(int(c) for c in self.channels)
            if not channels or min(channels) < 1:
                raise ValueError(f"channels must be a non-empty tuple of positive ints, got {self.channels!r}")
            trunk = _CNN(channels, 1, False, (4, 4), 0, 0.0, 0, [], in_channels=image_dims(self.input_shape_)[0])
            width = channels[-1] * 16
        return _FlowNet(n_features, self.dim_, int(self.hidden), int(self.n_layers), int(self.context_dim),
                        int(self.n_time_freqs), trunk, width, float(self.dropout))

    # ------------------------------------------------------------------ training
    def _x1(self, yc: torch.Tensor, yd: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Flow targets: standardized continuous values, then dequantized ±1 one-hot blocks (``u`` in [0, 1))."""
        parts = [yc]
        for k, n_k in enumerate(self.targets_.n_classes):
            parts.append(2.0 * nn.functional.one_hot(yd[:, k], int(n_k)).to(yc.dtype) - 1.0)
        x1 = torch.cat(parts, dim=1)
        n_c = yc.shape[1]
        if x1.shape[1] > n_c:
            x1 = torch.cat([x1[:, :n_c], x1[:, n_c:] + u - 0.5], dim=1)
        return x1

    def _noise(self, n: int, generator: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        """(x0, t, u) for ``n`` rows: Gaussian start, flow time, dequantization noise."""
        x0 = torch.randn((n, self.dim_), generator=generator)
        t = torch.rand((n, 1), generator=generator)
        u = torch.rand((n, self.dim_ - len(self.y_mean_)), generator=generator)
        return [x0.to(device), t.to(device), u.to(device)]

    def _loss(self, module: nn.Module, batch: Sequence[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        x, yc, yd = batch[:3]
        x0, t, u = batch[3:] if len(batch) > 3 else self._noise(len(x), generator, x.device)
        x1 = self._x1(yc, yd, u)
        xt = (1.0 - t) * x0 + t * x1
        v = module.velocity(xt, t, module.context(x))
        return ((v - (x1 - x0)) ** 2).mean()

    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray, callbacks: Sequence[Any] = ()) -> None:
        device = self._begin_fit(X, Yc)
        self.input_shape_ = self._shape(X.shape[1])
        self._standardize_inputs(X)
        self.dim_ = int(Yc.shape[1] + sum(int(k) for k in self.targets_.n_classes))
        rng = self._check_random_state()
        seed, self.predict_seed_ = (int(v) for v in rng.integers(0, 2**62, size=2))
        generator = torch.Generator().manual_seed(seed)

        with _torch_threads(self.num_threads):
            xt = self._inputs(X)
            yc, yd = self._target_tensors(Yc, Yd)
            train_idx, valid_idx = split_indices(len(X), float(self.validation_fraction), generator)
            module = build_module(lambda: self._build(X.shape[1]), generator).to(device)
            train = [t[train_idx].to(device) for t in (xt, yc, yd)]
            valid = None
            if valid_idx is not None:
                rep = valid_idx.repeat(_VALID_REPEATS)
                valid = [t[rep].to(device) for t in (xt, yc, yd)] + self._noise(len(rep), generator, device)
            self._train(module, lambda m, b: self._loss(m, b, generator), train, valid, generator, device, callbacks)

    # ------------------------------------------------------------------ sampling
    def _flow(self, X: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Integrate the flow from ``noise`` (m, dim) for every row of ``X``; returns (n, m, dim) float64."""
        m = len(noise)
        steps = int(self.ode_steps)
        dt = 1.0 / steps
        rows = max(1, _SAMPLE_CHUNK // max(m, 1))
        out = np.empty((len(X), m, self.dim_), dtype=np.float64)
        with self._inference() as (module, device, dtype):
            z0 = torch.from_numpy(noise).to(device, dtype)
            inputs = self._inputs(X)
            for start in range(0, len(X), rows):
                x_in = inputs[start : start + rows].to(device, dtype)
                n = len(x_in)
                c = module.context(x_in).repeat_interleave(m, dim=0)
                z = z0.repeat(n, 1)
                for i in range(steps):
                    t = torch.full((n * m, 1), i * dt, device=device, dtype=dtype)
                    v = module.velocity(z, t, c)
                    if self.ode_method == "midpoint":
                        v = module.velocity(z + 0.5 * dt * v, t + 0.5 * dt, c)
                    z = z + dt * v
                out[start : start + n] = z.reshape(n, m, self.dim_).cpu().numpy()
        return out

    def _decode(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow vectors (..., dim) -> (continuous target values (..., n_cont), classes (..., n_disc))."""
        n_c = len(self.y_mean_)
        Yc = z[..., :n_c] * self.y_std_ + self.y_mean_
        blocks = [z[..., a:b].argmax(axis=-1) for a, b in self._blocks]
        Yd = np.stack(blocks, axis=-1) if blocks else np.zeros(z.shape[:-1] + (0,), dtype=np.int64)
        return Yc, Yd.astype(np.int64)

    def _draws(self, X: np.ndarray, n_samples: int, random_state: Any) -> tuple[np.ndarray, np.ndarray]:
        rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
        noise = rng.standard_normal((int(n_samples), self.dim_))
        return self._decode(self._flow(X, noise))

    def sample(self, X: Any, n_samples: int = 16, *, random_state: Any = None) -> np.ndarray:
        """Draw patches from the posterior of each row of ``X``.

        Parameters
        ----------
        X : array-like [shape=(n, n_features)]
        n_samples : int, default=16
            Draws per row.
        random_state : int, numpy Generator or None, default=None
            Seeds the draws (the same seed gives the same draws); None draws fresh noise.
            Every row starts from the same ``n_samples`` noise vectors, so a row's
            draws do not depend on the other rows passed with it.

        Returns
        -------
        samples : np.ndarray [shape=(n, n_samples, n_params), dtype=float64]
            Unit values in the column order of the fitted ``Y``: continuous values
            clipped to their range, discrete ones their choice's canonical value.
        """
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
        X = self._prepare_predict(X)
        Yc, Yd = self._draws(X, int(n_samples), random_state)
        n, m = Yc.shape[:2]
        flat = self.targets_.inverse_transform(Yc.reshape(n * m, -1), Yd.reshape(n * m, -1))
        return flat.reshape(n, m, -1)

    def _densest(self, Yc: np.ndarray, Yd: np.ndarray) -> np.ndarray:
        """Index (n,) of the draw with the highest sum of per-parameter log densities among the draws.

        ``Yc`` (n, m, n_cont): Gaussian kernel density per parameter, half of Scott's bandwidth (a narrower kernel
        keeps a draw between two modes from collecting the density of both);
        ``Yd`` (n, m, n_disc): share of draws with the same choice.
        """
        n, m = Yc.shape[:2]
        score = np.zeros((n, m))
        if Yc.shape[2]:
            z = (Yc - self.y_mean_) / self.y_std_
            bw = np.maximum(0.5 * 1.06 * z.std(axis=1, keepdims=True) * m ** (-0.2), 1e-3)  # (n, 1, n_cont)
            for j in range(z.shape[2]):
                d = (z[:, :, None, j] - z[:, None, :, j]) / bw[:, :, None, j]
                score += np.log(np.exp(-0.5 * d * d).mean(axis=2))
        for k in range(Yd.shape[2]):
            same = Yd[:, :, None, k] == Yd[:, None, :, k]
            score += np.log(same.mean(axis=2))
        return score.argmax(axis=1)

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Yc, Yd = self._draws(X, int(self.n_predict_samples), self.predict_seed_)
        best = self._densest(Yc, Yd)
        rows = np.arange(len(X))
        return Yc[rows, best], Yd[rows, best]

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        _, Yd = self._draws(X, int(self.n_predict_samples), self.predict_seed_)
        out = []
        for k, n_k in enumerate(self.targets_.n_classes):
            counts = np.stack([(Yd[:, :, k] == c).mean(axis=1) for c in range(int(n_k))], axis=1)
            out.append(counts)
        return out

    # ------------------------------------------------------------------ saving (synth_probe.models.io)
    _JSON_STATE = ("input_shape_", "dim_", "predict_seed_", "history_", "best_epoch_", "n_epochs_",
                   "train_samples_per_s_", "device_")

    def _new_module(self) -> nn.Module:
        return self._build(int(self.n_features_in_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # a sampler, and few epochs on the checks' tiny data
        tags.non_deterministic = False
        return tags


FlowMatchingPosterior.__doc__ = FlowMatchingPosterior.__doc__.format(
    loop=LOOP_PARAMS_DOC.replace("default=64", "default=256").format(
        max_epochs=300, lr=1e-3, weight_decay=1e-5, patience=30
    )
)
