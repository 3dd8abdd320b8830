"""AutoencoderMLP: a convolutional autoencoder's encoder feeding an MLP.

The research log's second plan: "train a convolutional autoencoder, throw out
the decoder, and train a simple MLP". ``fit`` does exactly that, in two stages
of the one training loop (:func:`synth_probe.models._loop.fit_loop`):

1. **Pretraining** — encoder and decoder learn to reconstruct the standardized
   spectrogram (MSE), with early stopping on the same seeded validation rows
   that the second stage uses.
2. **Supervised** — the decoder is dropped; an MLP on the latent vector
   predicts the parameters (linear z-scored values and cross-entropy heads, as
   :class:`~synth_probe.models.cnn.SpectrogramCNN`). The encoder is fine-tuned
   with it, or frozen (``freeze_encoder=True``: its weights and batch-norm
   statistics stay as pretrained, so the latent is purely unsupervised).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from synth_probe.models._heads import LEVEL_SMOOTHING_DOC, ParamHeads
from synth_probe.models._torch import (
    LOOP_PARAMS_DOC,
    GenDropout,
    TorchEstimator,
    build_module,
    fit_loop,
    image_dims,
)
from synth_probe.models.base import LEVELS_DOC
from synth_probe.models.cnn import _conv_bn

__all__ = ["AutoencoderMLP"]


def _stage_sizes(input_shape: tuple[int, int], n_stages: int) -> list[tuple[int, int]]:
    """Spatial size after each stride-2, padding-1, 3x3 convolution (input first)."""
    sizes = [tuple(input_shape)]
    for _ in range(n_stages):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes  # type: ignore[return-value]


class _Encoder(nn.Module):
    """Strided conv stages -> adaptive pool grid -> linear latent of ``latent_dim``."""

    def __init__(self, channels: Sequence[int], pool: tuple[int, int], latent_dim: int, in_channels: int = 1) -> None:
        super().__init__()
        layers, c = [], int(in_channels)
        for c_out in channels:
            layers.append(_conv_bn(c, c_out, 2))
            c = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.latent = nn.Linear(c * pool[0] * pool[1], latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()  # NCHW: see the note on layouts in _torch.TorchEstimator._fit_encoded
        return self.latent(torch.flatten(self.pool(self.features(x)), 1))


class _Decoder(nn.Module):
    """Latent -> pool grid -> (upsample, conv) per stage, mirrored -> image of the input's channels and size.

    Stage k (from the deepest) works at the size the encoder had after its
    stage K-k; the output layer predicts 2x2 pixel blocks from the
    half-resolution map (pixel shuffle) and crops to the input size.
    """

    def __init__(
        self, channels: Sequence[int], pool: tuple[int, int], latent_dim: int, input_shape: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.pool = tuple(pool)
        self.c_last = int(channels[-1])
        n_out, h, w = image_dims(input_shape)
        self.sizes = _stage_sizes((h, w), len(channels))
        self.expand = nn.Linear(latent_dim, self.c_last * pool[0] * pool[1])
        rev = list(channels)[::-1]
        self.stages = nn.ModuleList(_conv_bn(c_in, c_out, 1) for c_in, c_out in zip(rev, rev[1:] + [rev[-1]]))
        # the last layer works at half resolution: 4 channels per output channel -> pixel shuffle -> the
        # input's channels at full size (a 3x3 convolution to 1 channel at full resolution is the slowest
        # layer on CPUs by far)
        self.out = nn.Conv2d(rev[-1], 4 * n_out, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.expand(z).view(len(z), self.c_last, *self.pool)
        # stage k (from the deepest) works at the encoder's size after stage K-k
        for stage, size in zip(self.stages, self.sizes[::-1][:-1]):
            x = stage(F.interpolate(x, size=size, mode="nearest"))
        h, w = self.sizes[0]
        return F.pixel_shuffle(self.out(x), 2)[:, :, :h, :w]


class _Autoencoder(nn.Module):
    def __init__(self, encoder: _Encoder, decoder: _Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class _EncoderMLP(nn.Module):
    """Pretrained encoder -> MLP -> :class:`ParamHeads`; a frozen encoder stays in eval mode."""

    def __init__(
        self,
        encoder: _Encoder,
        hidden: Sequence[int],
        dropout: float,
        n_continuous: int,
        n_classes: Sequence[int],
        freeze_encoder: bool,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder
        layers: list[nn.Module] = []
        n = encoder.latent.out_features
        for width in hidden:
            layers += [nn.Linear(n, int(width)), nn.ReLU(inplace=True), GenDropout(dropout)]
            n = int(width)
        self.mlp = nn.Sequential(*layers)
        self.heads = ParamHeads(n, n_continuous, n_classes)

    def train(self, mode: bool = True) -> _EncoderMLP:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        return self.heads(self.mlp(self.encoder(x)))


class AutoencoderMLP(TorchEstimator):
    """Convolutional autoencoder pretrained on the spectrograms; an MLP on its latent predicts parameters.

    Parameters
    ----------
    input_shape : tuple of (int, int), tuple of (int, int, int) or None, default=None
        ``(n_mels, n_frames)`` of the flattened spectrogram rows of ``X``, or
        ``(n_channels, n_mels, n_frames)`` for rows of ``n_channels`` spectrograms
        (a probe's renders): the encoder reads them as input channels and the
        decoder reconstructs every channel. None treats each row as a
        ``(1, n_features)`` image.
    channels : tuple of int, default=(16, 32, 64, 128)
        Encoder stages (stride 2 each); the decoder mirrors them.
    pool : tuple of (int, int), default=(4, 4)
        Pooling grid between the last encoder stage and the latent layer.
    latent_dim : int, default=128
        Size of the latent vector the MLP reads.
    hidden : tuple of int, default=(256,)
        Hidden layer widths of the MLP head (empty: heads directly on the latent).
    dropout : float, default=0.1
        Dropout in the MLP head.
    pretrain_epochs : int, default=20
        Maximum epochs of reconstruction training (early-stopped with ``patience``);
        0 skips pretraining (the encoder then starts from random weights).
    freeze_encoder : bool, default=False
        Keep the pretrained encoder fixed and train only the MLP head.
{levels}
{loop}

    Attributes
    ----------
    module_ : nn.Module
        Encoder + MLP head (CPU); the decoder is dropped after pretraining.
    pretrain_history_ : list of dict
        Per-epoch reconstruction losses (MSE on standardized spectrograms).
    pretrain_samples_per_s_ : float
        Throughput of pretraining (nan without it).
    history_, train_samples_per_s_, best_epoch_, n_epochs_ :
        Of the supervised stage, as for :class:`~synth_probe.models.cnn.SpectrogramCNN`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8 * 8)).astype("float32")
    >>> y = rng.uniform(size=40)
    >>> est = AutoencoderMLP(input_shape=(8, 8), channels=(4, 8), latent_dim=8, hidden=(16,),
    ...                      pretrain_epochs=2, max_epochs=2, random_state=0).fit(X, y)
    >>> len(est.pretrain_history_), est.predict(X[:3]).shape
    (2, (3,))
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int] | tuple[int, int, int] | None = None,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        pool: tuple[int, int] = (4, 4),
        latent_dim: int = 128,
        hidden: tuple[int, ...] = (256,),
        dropout: float = 0.1,
        pretrain_epochs: int = 20,
        freeze_encoder: bool = False,
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

    # ------------------------------------------------------------------ pieces
    def _arch(self) -> tuple[tuple[int, ...], tuple[int, int], int, tuple[int, ...]]:
        channels = tuple(int(c) for c in self.channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got {self.channels!r}")
        pool = tuple(int(p) for p in self.pool)
        if len(pool) != 2 or min(pool) < 1:
            raise ValueError(f"pool must be (n_freq, n_time) positive ints, got {self.pool!r}")
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be an int >= 1, got {self.latent_dim!r}")
        hidden = tuple(int(h) for h in self.hidden)
        if hidden and min(hidden) < 1:
            raise ValueError(f"hidden must be a tuple of positive ints, got {self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.pretrain_epochs, int) or isinstance(self.pretrain_epochs, bool) or self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be an int >= 0, got {self.pretrain_epochs!r}")
        return channels, pool, int(self.latent_dim), hidden  # type: ignore[return-value]

    def _pretrain(self, X_train: torch.Tensor, X_valid: torch.Tensor | None,
                  generator: torch.Generator, device: torch.device) -> None:
        channels, pool, latent, _ = self._arch()
        self.pretrain_history_: list[dict[str, Any]] = []
        self.pretrain_samples_per_s_ = float("nan")
        self._pretrained_encoder: dict[str, torch.Tensor] | None = None
        if self.pretrain_epochs == 0:
            return
        ae = build_module(
            lambda: _Autoencoder(_Encoder(channels, pool, latent, image_dims(self.input_shape_)[0]),
                                 _Decoder(channels, pool, latent, self.input_shape_)),
            generator,
        )
        ae = ae.to(device)

        def recon_loss(module: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
            return F.mse_loss(module(batch[0]), batch[0])

        result = fit_loop(
            ae,
            recon_loss,
            (X_train,),
            None if X_valid is None else (X_valid,),
            max_epochs=int(self.pretrain_epochs),
            desc=f"{type(self).__name__} pretrain",
            **self._loop_settings(generator, device),
        )
        self.pretrain_history_ = result.history
        self.pretrain_samples_per_s_ = result.samples_per_s
        self._pretrained_encoder = {k: v.detach().clone() for k, v in ae.encoder.state_dict().items()}

    def _build_module(self, input_shape: tuple[int, ...], n_continuous: int, n_classes: list[int]) -> nn.Module:
        channels, pool, latent, hidden = self._arch()
        return _EncoderMLP(
            _Encoder(channels, pool, latent, image_dims(input_shape)[0]),
            hidden,
            float(self.dropout),
            n_continuous,
            n_classes,
            bool(self.freeze_encoder),
        )

    def _after_load(self, module: nn.Module) -> None:
        if self.freeze_encoder:
            for p in module.encoder.parameters():
                p.requires_grad_(False)

    def _after_init(self, module: nn.Module) -> None:
        state = self.__dict__.pop("_pretrained_encoder", None)
        if state is not None:
            module.encoder.load_state_dict(state)
        if self.freeze_encoder:
            for p in module.encoder.parameters():
                p.requires_grad_(False)


AutoencoderMLP.__doc__ = AutoencoderMLP.__doc__.format(
    levels=LEVELS_DOC + "\n" + LEVEL_SMOOTHING_DOC,
    loop=LOOP_PARAMS_DOC.format(max_epochs=40, lr=1e-3, weight_decay=1e-4, patience=6)
)
