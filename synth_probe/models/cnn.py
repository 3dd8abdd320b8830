"""SpectrogramCNN: the research log's plain CNN, and a deeper residual variant.

The log's first model was "a plain CNN with no activation at the end" that
regressed all 88 parameters with MSE and collapsed to 0.50 everywhere. This
estimator keeps that shape (strided convolutions, a linear output) and fixes
what made it collapse: standardized inputs, standardized per-parameter targets
(every parameter weighs the same in the loss), classes with cross-entropy for
discrete parameters, batch norm, AdamW and early stopping. ``residual=True``
swaps the plain stages for ResNet basic blocks (the log's "ResNet?").

Speed on 2 CPU cores: the default (four stride-2 stages of 16-32-64-128
channels, channels-last memory) trains at well over 500 spectrograms of
64 x 65 per second; ``python -m synth_probe.bench.train`` measures it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from synth_probe.models._heads import LEVEL_SMOOTHING_DOC, ParamHeads
from synth_probe.models._torch import LOOP_PARAMS_DOC, GenDropout, TorchEstimator, image_dims
from synth_probe.models.base import LEVELS_DOC

__all__ = ["SpectrogramCNN"]


def _conv_bn(c_in: int, c_out: int, stride: int, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c_in, c_out, stride), _conv_bn(c_out, c_out, 1, relu=False))
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class _CNN(nn.Module):
    """Stages of stride-2 convolutions -> adaptive pooling -> MLP -> parameter heads.

    Input ``(n, in_channels, n_mels, n_frames)``; output as :class:`ParamHeads`.
    """

    def __init__(
        self,
        channels: Sequence[int],
        depth: int,
        residual: bool,
        pool: tuple[int, int],
        hidden: int,
        dropout: float,
        n_continuous: int,
        n_classes: Sequence[int],
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = int(in_channels)
        for c_out in channels:
            for j in range(depth):
                stride = 2 if j == 0 else 1
                layers.append(_BasicBlock(c, c_out, stride) if residual else _conv_bn(c, c_out, stride))
                c = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        n_flat = c * pool[0] * pool[1]
        if hidden > 0:
            self.mlp: nn.Module = nn.Sequential(
                nn.Flatten(), GenDropout(dropout), nn.Linear(n_flat, hidden), nn.ReLU(inplace=True), GenDropout(dropout)
            )
            n_out = hidden
        else:
            self.mlp = nn.Sequential(nn.Flatten(), GenDropout(dropout))
            n_out = n_flat
        self.heads = ParamHeads(n_out, n_continuous, n_classes)  # linear: "no activation at the end"

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()  # NCHW: see the note on layouts in _torch.TorchEstimator._fit_encoded
        return self.mlp(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        return self.heads(self.embed(x))


class SpectrogramCNN(TorchEstimator):
    """Convolutional network on log-mel spectrograms, predicting all target parameters at once.

    Parameters
    ----------
    input_shape : tuple of (int, int), tuple of (int, int, int) or None, default=None
        ``(n_mels, n_frames)`` of the flattened spectrogram rows of ``X``, or
        ``(n_channels, n_mels, n_frames)`` for rows of ``n_channels`` spectrograms
        (a probe's renders) read as input channels of the first convolution; None
        treats each row as a ``(1, n_features)`` image.
    channels : tuple of int, default=(16, 32, 64, 128)
        Output channels of each stage; each stage halves both axes (stride 2).
    depth : int, default=1
        Layers per stage: plain 3x3 convolutions, or residual blocks when
        ``residual=True``.
    residual : bool, default=False
        Use ResNet basic blocks (two convolutions and a shortcut) per layer.
    pool : tuple of (int, int), default=(4, 4)
        Adaptive average pooling grid (frequency, time) before the MLP; keeping
        a grid rather than a global average keeps where energy sits in frequency.
    hidden : int, default=256
        Width of the hidden layer before the heads (0: heads on the pooled features).
    dropout : float, default=0.1
{levels}
{loop}

    Attributes
    ----------
    module_ : nn.Module
        The trained network (CPU).
    history_ : list of dict
        Per-epoch ``train_loss`` / ``valid_loss`` (mean per target: z-scored MSE
        for continuous, cross-entropy for discrete parameters).
    train_samples_per_s_ : float
        Training throughput of the fit.
    best_epoch_, n_epochs_ : int
    targets_, param_names_, n_features_in_ : see :class:`~synth_probe.models.base.SynthEstimator`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8 * 8)).astype("float32")
    >>> y = rng.uniform(size=40)
    >>> est = SpectrogramCNN(input_shape=(8, 8), channels=(4, 8), max_epochs=2, random_state=0).fit(X, y)
    >>> est.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int] | tuple[int, int, int] | None = None,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        depth: int = 1,
        residual: bool = False,
        pool: tuple[int, int] = (4, 4),
        hidden: int = 256,
        dropout: float = 0.1,
        levels: Mapping[str, Sequence[float]] | None = None,
        level_smoothing: float = 0.0,
        synth: str | None = None,
        discrete: Mapping[Any, Any] | None = None,
        batch_size: int = 64,
        max_epochs: int = 40,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: str = "adamw",
        validation_fraction: float = 0.1,
        patience: int | None = 6,
        random_state: Any = None,
        device: str = "auto",
        num_threads: int | None = None,
        verbose: int = 0,
    ) -> None:
        self._store_init_args(locals())

    def _build_module(self, input_shape: tuple[int, ...], n_continuous: int, n_classes: list[int]) -> nn.Module:
        channels = tuple(int(c) for c in self.channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got {self.channels!r}")
        if int(self.depth) < 1:
            raise ValueError(f"depth must be an int >= 1, got {self.depth!r}")
        pool = tuple(int(p) for p in self.pool)
        if len(pool) != 2 or min(pool) < 1:
            raise ValueError(f"pool must be (n_freq, n_time) positive ints, got {self.pool!r}")
        if int(self.hidden) < 0:
            raise ValueError(f"hidden must be an int >= 0, got {self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        return _CNN(
            channels,
            int(self.depth),
            bool(self.residual),
            pool,  # type: ignore[arg-type]
            int(self.hidden),
            float(self.dropout),
            n_continuous,
            n_classes,
            in_channels=image_dims(input_shape)[0],
        )


SpectrogramCNN.__doc__ = SpectrogramCNN.__doc__.format(
    levels=LEVELS_DOC + "\n" + LEVEL_SMOOTHING_DOC,
    loop=LOOP_PARAMS_DOC.format(max_epochs=40, lr=1e-3, weight_decay=1e-4, patience=6)
)
