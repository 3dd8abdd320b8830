"""The one training loop of the torch estimators, and their shared base class.

Every torch model of :mod:`synth_probe.models` (:class:`~synth_probe.models.cnn.SpectrogramCNN`,
:class:`~synth_probe.models.autoencoder.AutoencoderMLP`,
:class:`~synth_probe.models.ast.SpectrogramTransformer`) derives from
:class:`TorchEstimator`, and :class:`~synth_probe.models.posterior.FlowMatchingPosterior`
from its base :class:`TorchBase` (hyperparameter checks, fit set-up, the call of
:func:`fit_loop`, batched inference, saving); all train through :func:`fit_loop`. The conventions:

* **Explicit hyperparameters.** Every knob is a keyword-only constructor
  argument (no ``module__x`` routing), so ``get_params``/``set_params``,
  ``clone`` and grid search see all of them.
* **Seeded, local randomness.** ``random_state`` becomes one
  :class:`torch.Generator` inside ``fit``; it draws the weight initialization
  (:func:`init_parameters`), the validation split, the batch order and the
  dropout masks (:class:`GenDropout`). Global torch/numpy seeds are never set,
  so two fits with the same ``random_state`` give identical CPU predictions.
* **Device.** ``device="auto"`` trains on CUDA when available, else on the CPU.
  The fitted module is kept on the CPU between calls and pickles from there.
* **Early stopping.** ``validation_fraction`` of the rows is held out; training
  stops after ``patience`` epochs without a better validation loss and the best
  epoch's weights are restored.
* **Inputs.** ``X`` is 2-D: flattened spectrograms of ``input_shape=(n_mels,
  n_frames)`` (row-major, as ``LogMelSpectrogram`` flattens them), a probe's
  renders as input channels with ``input_shape=(n_channels, n_mels, n_frames)``
  (each row the channels' images one after the other, as
  :class:`~synth_probe.features.ProbeFeatures` joins them), or, with
  ``input_shape=None``, any feature rows treated as ``(1, n_features)``
  images. :func:`check_input_shape` validates the shape and :func:`image_dims`
  gives the network's ``(channels, height, width)``. ``X`` is standardized
  inside ``fit`` per image row (mel band), and per channel with three dimensions
  (:func:`image_stats`).
* **Targets.** Continuous parameters are regressed in standardized units (each
  column's training mean and standard deviation), which weights every
  parameter equally in the loss; discrete parameters get one cross-entropy head
  each. See :class:`TorchEstimator` for why the continuous head is linear.
* **Shrinkage to the mean.** After early stopping, each continuous output is
  scaled toward the training mean by the least-squares factor in [0, 1] that
  fits the validation rows best (``output_scale_``). A parameter the network
  learned keeps a factor near 1; one it cannot hear gets a factor near 0 and
  predicts the mean, instead of the noise that would score below the mean
  (negative R²) on new rows.
* **Measured speed.** ``train_samples_per_s_`` (training rows per second of
  optimizer steps) and ``history_`` (per-epoch losses) are kept for reports.
"""
from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from synth_probe.models._heads import LEVEL_SMOOTHING_DOC, ParamHeads, level_targets, softmax
from synth_probe.models._loop import GenDropout, TrainResult, fit_loop, split_indices
from synth_probe.models.base import SYNTH_PARAMS_DOC, FitProgress, SynthEstimator, nearest_level

__all__ = [
    "GenDropout",
    "LEVEL_SMOOTHING_DOC",
    "ParamHeads",
    "TorchBase",
    "TorchEstimator",
    "TrainResult",
    "build_module",
    "check_input_shape",
    "fit_loop",
    "image_dims",
    "image_stats",
    "init_parameters",
    "resolve_device",
    "split_indices",
    "standardization",
    "standardize_images",
]


# --------------------------------------------------------------------------- devices, threads
def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; other strings as torch reads them.

    Raises
    ------
    ValueError
        For a device string torch does not know, or CUDA requested where there is none.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it), then restore."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- seeded init and dropout
def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialize every parameter of ``module`` from ``generator`` (no global RNG).

    Convolutions and linear layers get torch's default scheme (Kaiming-uniform
    weights with ``a=sqrt(5)``, biases uniform in ``±1/sqrt(fan_in)``); norm
    layers ones and zeros; attention projections Xavier-uniform; any other
    parameter (positional embeddings, class tokens) a truncated normal with
    standard deviation 0.02. A module may override the scheme for its own
    parameters with a ``reset_parameters_with(generator)`` method.

    Raises
    ------
    TypeError
        If a parameter is left that no rule covers (a new layer type).
    """
    done: set[int] = set()
    for mod in module.modules():
        own = list(mod.parameters(recurse=False))
        if not own:
            continue
        if hasattr(mod, "reset_parameters_with"):
            mod.reset_parameters_with(generator)
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_uniform_(mod.weight, a=math.sqrt(5), generator=generator)
            if mod.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(mod.weight)
                if isinstance(mod, nn.ConvTranspose2d):
                    fan_in = mod.weight.shape[1] * mod.weight[0, 0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(mod.bias, -bound, bound, generator=generator)
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.reset_running_stats()
            if getattr(mod, "weight", None) is not None:
                nn.init.ones_(mod.weight)
            if getattr(mod, "bias", None) is not None:
                nn.init.zeros_(mod.bias)
        else:
            for p in own:
                with torch.no_grad():
                    nn.init.trunc_normal_(p, std=0.02, generator=generator)
        done.update(id(p) for p in own)
    left = [n for n, p in module.named_parameters() if id(p) not in done]
    if left:  # pragma: no cover - guards future layer types
        raise TypeError(f"init_parameters has no rule for parameters {left}")


def build_module(factory: Callable[[], nn.Module], generator: torch.Generator) -> nn.Module:
    """Construct ``factory()`` without touching torch's global RNG, initialized from ``generator``.

    Layers draw their default initialization from the global RNG in their
    constructors; building on the ``meta`` device skips that, then the module
    is materialized on the CPU and :func:`init_parameters` fills it.

    Returns
    -------
    nn.Module
        On the CPU, in training mode.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    init_parameters(module, generator)
    return module



# --------------------------------------------------------------------------- image shapes
def check_input_shape(input_shape: Any, n_features: int) -> tuple[int, ...]:
    """``input_shape`` as a tuple of ints, checked against rows of ``n_features`` values.

    Parameters
    ----------
    input_shape : sequence of int
        ``(n_mels, n_frames)`` of one spectrogram, or ``(n_channels, n_mels, n_frames)`` of
        ``n_channels`` spectrograms read as input channels (a probe's renders).
    n_features : int
        Length of a row of ``X``.

    Returns
    -------
    tuple of int
        The 2- or 3-tuple (a list read from JSON comes back as a tuple).

    Raises
    ------
    ValueError
        For anything other than 2 or 3 positive ints, or a shape whose product is not ``n_features``
        (the message names the expected row length).
    """
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(
            "input_shape must be None, (n_mels, n_frames) or (n_channels, n_mels, n_frames) of positive ints, "
            f"got {input_shape!r}"
        )
    size = int(np.prod(shape))
    if size != int(n_features):
        layout = "(n_mels, n_frames)" if len(shape) == 2 else "(n_channels, n_mels, n_frames)"
        raise ValueError(
            f"input_shape={shape} holds {size} values but X has {n_features} features; "
            f"X must be spectrograms of shape {layout} = {shape} flattened row-major "
            f"({' * '.join(str(v) for v in shape)} = {size} values per row)"
        )
    return shape


def image_dims(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a network's input: ``(1, h, w)`` for ``(h, w)``, a 3-tuple as it is."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    raise ValueError(f"input_shape must have 2 or 3 dimensions, got {input_shape!r}")


def standardization(rows: np.ndarray, axis: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``rows`` over ``axis``, as float32, computed in ``rows``' dtype.

    A standard deviation that is zero up to rounding (below ``1e-8`` of the largest magnitude) becomes 1,
    so a constant input standardizes to 0 instead of dividing by zero.
    """
    mean = rows.mean(axis=axis)
    std = rows.std(axis=axis)
    std = np.where(std > 1e-8 * max(1.0, float(np.abs(rows).max())), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def image_stats(X: np.ndarray, input_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per mel band (2-tuple) or per (channel, mel band) (3-tuple) mean and std of the rows of ``X``.

    Computed as :func:`standardization` does (in ``X``'s dtype, a zero spread becomes 1).

    Returns
    -------
    mean, std : np.ndarray [shape=(n_mels,) or (n_channels, n_mels), dtype=float32]
    """
    c, h, w = image_dims(input_shape)
    mean, std = standardization(X.reshape(len(X), c, h, w), (0, 3))
    if len(tuple(input_shape)) == 2:
        mean, std = mean[0], std[0]
    return mean, std


def standardize_images(X: np.ndarray, input_shape: Sequence[int], mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Rows of ``X`` as a standardized float32 tensor ``(n, channels, n_mels, n_frames)`` on the CPU.

    ``mean`` and ``std`` are :func:`image_stats`'s (per band, or per channel and band).
    """
    c, h, w = image_dims(input_shape)
    img = X.reshape(len(X), c, h, w)
    img = (img - np.reshape(mean, (1, c, h, 1))) / np.reshape(std, (1, c, h, 1))
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))


# --------------------------------------------------------------------------- estimator base
def _epoch_hook(callbacks: Sequence[Callable[[FitProgress], None]], budget: int
                ) -> Callable[[dict[str, Any]], None] | None:
    """A :func:`fit_loop` ``on_epoch`` that passes each epoch's monitored loss to ``callbacks``, or None."""
    if not callbacks:
        return None

    def on_epoch(rec: dict[str, Any]) -> None:
        loss = rec.get("valid_loss")
        loss = rec["train_loss"] if loss is None else loss
        progress = FitProgress(step=int(rec["epoch"]), budget=budget, loss=float(loss), unit="epoch")
        for cb in callbacks:
            cb(progress)

    return on_epoch


class TorchBase(SynthEstimator):
    """What every torch estimator of the suite shares: the loop's hyperparameters, fit set-up, inference, saving.

    :class:`TorchEstimator` (the point regressors) and
    :class:`~synth_probe.models.posterior.FlowMatchingPosterior` derive from it.
    A subclass stores its constructor arguments with
    :meth:`~synth_probe.models.base.SynthEstimator._store_init_args` and
    builds its network in :meth:`_new_module` (used when a saved model is loaded).

    Attributes
    ----------
    module_ : nn.Module
        The trained network, on the CPU.
    x_mean_, x_std_ : np.ndarray
        Standardization of the input (per feature, or per mel band of a spectrogram, per channel
        and mel band for ``input_shape=(n_channels, n_mels, n_frames)``).
    y_mean_, y_std_ : np.ndarray [shape=(n_continuous,)]
        Standardization of the continuous targets.
    history_ : list of dict
        Per-epoch ``train_loss`` and ``valid_loss`` (see :class:`TrainResult`).
    best_epoch_, n_epochs_ : int
    train_samples_per_s_ : float
        Training throughput measured during ``fit``.
    device_ : str
        Device the model was trained on.
    """

    _X_dtype = np.float32
    #: dtype of inference on the CPU; float64 where float32 results depend on the batch's size
    _cpu_inference_dtype: torch.dtype = torch.float32
    _WEIGHTS_FILE = "weights.pt"
    #: fitted attributes written to the model header as JSON
    _JSON_STATE: tuple[str, ...] = ()

    # -- validation of the shared hyperparameters
    def _check_params(self) -> None:
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")

        positive_int("batch_size")
        positive_int("max_epochs")
        if self.patience is not None:
            positive_int("patience")
        if self.num_threads is not None:
            positive_int("num_threads")
        if not (isinstance(self.lr, (float, int)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (float, int)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.validation_fraction, (float, int)) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        resolve_device(self.device)

    # -- fitting
    def _begin_fit(self, X: np.ndarray, Yc: np.ndarray) -> torch.device:
        """Check the hyperparameters and ``X`` (n, n_features), standardize ``Yc`` (n, n_continuous), pick the device.

        Sets ``y_mean_``, ``y_std_`` and ``device_``.

        Raises
        ------
        ValueError
            For a bad hyperparameter, or fewer than 2 rows.
        """
        self._check_params()
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples to fit, got n_samples={len(X)}")
        self.y_mean_ = Yc.mean(axis=0) if Yc.shape[1] else np.zeros(0)
        ystd = Yc.std(axis=0) if Yc.shape[1] else np.zeros(0)
        self.y_std_ = np.where(ystd > 1e-12, ystd, 1.0)
        device = resolve_device(self.device)
        self.device_ = str(device)
        return device

    def _target_tensors(self, Yc: np.ndarray, Yd: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardized continuous targets (n, n_continuous) float32 and classes (n, n_discrete) int64."""
        yc = torch.from_numpy(((Yc - self.y_mean_) / self.y_std_).astype(np.float32))
        return yc, torch.from_numpy(Yd.astype(np.int64))

    def _loop_settings(self, generator: torch.Generator, device: torch.device) -> dict[str, Any]:
        """The :func:`fit_loop` arguments every training phase (pretraining included) takes from the hyperparameters."""
        return dict(
            optimizer=self.optimizer,
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            batch_size=int(self.batch_size),
            patience=None if self.patience is None else int(self.patience),
            generator=generator,
            device=device,
            verbose=int(self.verbose),
        )

    def _train(
        self,
        module: nn.Module,
        loss_fn: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor],
        train: Sequence[torch.Tensor],
        valid: Sequence[torch.Tensor] | None,
        generator: torch.Generator,
        device: torch.device,
        callbacks: Sequence[Callable[[FitProgress], None]],
        **extra: Any,
    ) -> None:
        """Run the supervised :func:`fit_loop` for ``max_epochs`` and keep its result.

        ``callbacks`` get each epoch's monitored loss (set only for the length of one fit, by
        :mod:`synth_probe.tuning`, which reports epochs to Optuna); ``extra`` goes to :func:`fit_loop`.
        Sets ``module_`` (on the CPU, in eval mode), ``history_``, ``best_epoch_``, ``n_epochs_``
        and ``train_samples_per_s_``.
        """
        result = fit_loop(
            module,
            loss_fn,
            train,
            valid,
            max_epochs=int(self.max_epochs),
            desc=type(self).__name__,
            on_epoch=_epoch_hook(callbacks, int(self.max_epochs)),
            **extra,
            **self._loop_settings(generator, device),
        )
        self.module_ = module.to("cpu").eval()
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_epochs_ = len(result.history)
        self.train_samples_per_s_ = result.samples_per_s

    # -- inference
    @contextlib.contextmanager
    def _inference(self) -> Iterator[tuple[nn.Module, torch.device, torch.dtype]]:
        """``(module, device, dtype)`` for inference, under ``num_threads`` and ``torch.no_grad``.

        The dtype is :attr:`_cpu_inference_dtype` on the CPU and float32 on CUDA; for a dtype other
        than float32 the module is a copy, else ``module_`` itself, moved back to the CPU afterwards.
        """
        device = resolve_device(self.device)
        dtype = self._cpu_inference_dtype if device.type == "cpu" else torch.float32
        module = self.module_.to(device).eval()
        if dtype != torch.float32:
            module = copy.deepcopy(module).to(dtype)
        try:
            with _torch_threads(self.num_threads), torch.no_grad():
                yield module, device, dtype
        finally:
            self.module_.to("cpu")

    # -- saving (synth_probe.models.io): JSON facts + a weights file loaded with weights_only=True
    def _torch_state(self) -> dict[str, Any]:
        """JSON-able fitted facts (shapes, learning curves, speed) for the model header."""
        return {k: getattr(self, k) for k in self._JSON_STATE if hasattr(self, k)}

    def _set_torch_state(self, state: dict[str, Any]) -> None:
        for k in self._JSON_STATE:
            if k in state:
                setattr(self, k, state[k])
        if self.input_shape_ is not None:
            self.input_shape_ = tuple(int(v) for v in self.input_shape_)

    def _extra_weights(self) -> dict[str, torch.Tensor]:
        """Further fitted arrays for the weights file (default: none)."""
        return {}

    def _restore_extra(self, state: dict[str, torch.Tensor]) -> None:
        """Read back :meth:`_extra_weights`'s arrays from the loaded ``state`` (default: nothing)."""

    def _new_module(self) -> nn.Module:
        """The untrained network for the fitted shapes (``n_features_in_``, ``y_mean_``, ``targets_``)."""
        raise NotImplementedError

    def _after_load(self, module: nn.Module) -> None:
        """Hook after :meth:`_load_torch` restored the weights (default: nothing)."""

    def _save_torch(self, directory: Any) -> None:
        """Write the weights and the standardization arrays to ``directory / "weights.pt"``.

        Only tensors (from the CPU) and plain containers are written, so
        :meth:`_load_torch` reads them with ``torch.load(..., weights_only=True)``.
        """
        state = {
            "module": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "x_mean": torch.from_numpy(np.asarray(self.x_mean_)),
            "x_std": torch.from_numpy(np.asarray(self.x_std_)),
            "y_mean": torch.from_numpy(np.asarray(self.y_mean_, dtype=np.float64)),
            "y_std": torch.from_numpy(np.asarray(self.y_std_, dtype=np.float64)),
            **self._extra_weights(),
        }
        torch.save(state, Path(directory) / self._WEIGHTS_FILE)

    def _load_torch(self, directory: Any) -> None:
        """Rebuild ``module_`` from :meth:`_save_torch`'s file (``weights_only=True``, onto the CPU).

        Expects ``targets_`` and :meth:`_set_torch_state`'s attributes to be restored first.
        """
        state = torch.load(Path(directory) / self._WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.x_mean_ = state["x_mean"].numpy()
        self.x_std_ = state["x_std"].numpy()
        self.y_mean_ = state["y_mean"].numpy()
        self.y_std_ = state["y_std"].numpy()
        self._restore_extra(state)
        # the generator's draws are overwritten by the saved weights just below
        module = build_module(self._new_module, torch.Generator().manual_seed(0))
        module.load_state_dict(state["module"], strict=True)
        self._after_load(module)
        self.module_ = module.eval()


class TorchEstimator(TorchBase):
    """Base of the torch estimators: input shaping, target coding, device, the loop.

    Subclasses store their hyperparameters in ``__init__`` (all of this class's
    as well, with :meth:`~synth_probe.models.base.SynthEstimator._store_init_args`) and implement
    :meth:`_build_module`, which returns an ``nn.Module`` mapping a standardized batch
    ``(n, n_channels, n_mels, n_frames)`` (``n_channels`` 1 for a 2-tuple ``input_shape``) to
    :class:`ParamHeads` outputs. :meth:`_pretrain` is an optional hook run
    before supervised training (the autoencoder uses it).

    Why the continuous head is linear on standardized targets: the research
    log's plain CNN collapsed to predicting 0.50 for every parameter. With MSE
    on raw unit targets each parameter's gradient is proportional to its
    variance, the initial output already sits at the mean, and a sigmoid would
    add vanishing gradients near 0 and 1. Standardizing each continuous target
    (z = (y - mean) / std) gives every parameter a loss of 1 at the mean
    predictor, so a model that stays there is visibly not learning, and the
    head has full gradient everywhere. Predictions are mapped back and clipped
    to [0, 1] (by :class:`~synth_probe.models.base.ParamTargets`).

    A continuous column named in ``levels`` (drawn from a grid) gets a class head over its
    levels instead, trained with cross-entropy like a discrete column (against targets spread
    over the neighbouring levels, ``level_smoothing``); its prediction is the mean of the levels
    under the head's softmax.

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(n_mels, n_frames)`` or ``(n_channels, n_mels, n_frames)`` used.
    x_mean_, x_std_ : np.ndarray [shape=(n_mels,) or (n_channels, n_mels)]
        Per-row (mel band) standardization of the input, per channel for a 3-tuple ``input_shape``.
    level_values_ : dict of str -> list of float
        The sorted levels of each continuous column learned as classes (empty without ``levels``).
    y_mean_, y_std_ : np.ndarray [shape=(n_regressed,)]
        Standardization of the continuous columns the linear head regresses (those not learned as levels).
    output_scale_ : np.ndarray [shape=(n_regressed,)]
        Shrinkage of each standardized regressed output toward the mean, fitted
        on the validation rows (all 1 without a validation split).
    module_, history_, best_epoch_, n_epochs_, train_samples_per_s_, device_ :
        As for :class:`TorchBase`.
    """

    # -- subclass hooks
    def _build_module(
        self, input_shape: tuple[int, ...], n_continuous: int, n_classes: list[int]
    ) -> nn.Module:
        """The network for ``input_shape`` (2- or 3-tuple; :func:`image_dims` gives its channels)."""
        raise NotImplementedError

    def _pretrain(self, X_train: torch.Tensor, X_valid: torch.Tensor | None,
                  generator: torch.Generator, device: torch.device) -> None:
        """Optional unsupervised stage before :meth:`_build_module` (default: none).

        ``X_train``, ``X_valid``: standardized images (n, n_channels, n_mels, n_frames) on ``device``, of shape
        ``input_shape_``.
        """

    def _trainable_parameters(self, module: nn.Module) -> list[nn.Parameter]:
        return [p for p in module.parameters() if p.requires_grad]

    def _new_module(self) -> nn.Module:
        shape = tuple(int(v) for v in self.input_shape_)
        return self._build_module(shape, len(self.y_mean_), self._head_classes())  # type: ignore[arg-type]

    def _input_shape(self, n_features: int) -> tuple[int, ...]:
        if self.input_shape is None:
            return (1, int(n_features))
        return check_input_shape(self.input_shape, n_features)

    def _images(self, X: np.ndarray) -> torch.Tensor:
        """Standardized float32 tensor (n, n_channels, n_mels, n_frames) on the CPU (one channel for a 2-tuple)."""
        return standardize_images(X, self.input_shape_, self.x_mean_, self.x_std_)

    # -- loss
    def _loss(self, module: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x, yc, yd = batch
        values, logits = module(x)
        # mean over targets of (per-column MSE in z units | cross-entropy): each parameter weighs the same
        total = x.new_zeros(())
        n_targets = len(logits)
        if values is not None:
            total = total + F.mse_loss(values, yc, reduction="none").mean(dim=0).sum()
            n_targets += values.shape[1]
        n_disc = len(self.targets_.n_classes)
        for k, lg in enumerate(logits):
            if k >= n_disc and self.level_smoothing > 0:  # a gridded parameter's levels: a soft, ordinal target
                total = total - (level_targets(yd[:, k], lg.shape[1], float(self.level_smoothing), lg.dtype)
                                 * F.log_softmax(lg, dim=1)).sum(dim=1).mean()
            else:
                total = total + F.cross_entropy(lg, yd[:, k])
        return total / max(n_targets, 1)

    # -- SynthEstimator hooks
    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray, callbacks: Sequence[Any] = ()) -> None:
        # a gridded continuous column (``levels``) is learned as one more class head, after the discrete ones
        width = self.level_smoothing
        if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) or not width >= 0:
            raise ValueError(f"level_smoothing must be a number >= 0 (levels; 0: one-hot targets), got {width!r}")
        self.level_values_ = self._grids()
        levels = self._level_columns()
        free = self._free_columns(Yc.shape[1])
        Yl = np.stack([nearest_level(Yc[:, k], grid) for k, _, grid in levels], axis=1) if levels else None
        Yc = Yc[:, free]
        if Yl is not None:
            Yd = np.concatenate([Yd, Yl], axis=1)
        device = self._begin_fit(X, Yc)
        self.input_shape_ = self._input_shape(X.shape[1])
        self.x_mean_, self.x_std_ = image_stats(X.astype(np.float64), self.input_shape_)
        seed = int(self._check_random_state().integers(0, 2**62))
        generator = torch.Generator().manual_seed(seed)

        with _torch_threads(self.num_threads):
            xt = self._images(X)
            yc, yd = self._target_tensors(Yc, Yd)
            train_idx, valid_idx = split_indices(len(X), float(self.validation_fraction), generator)
            x_tr, x_va = xt[train_idx].to(device), (None if valid_idx is None else xt[valid_idx].to(device))
            self._pretrain(x_tr, x_va, generator, device)
            module = build_module(self._new_module, generator)
            self._after_init(module)
            # NCHW (contiguous) layout. channels-last would be oneDNN's faster layout on CPUs, but oneDNN's
            # convolution backward-weights corrupts the heap with it on small feature maps (torch 2.13 CPU:
            # "double free or corruption" / segfaults inside mkldnn_convolution_backward_weights).
            module = module.to(device)
            train = (x_tr, yc[train_idx].to(device), yd[train_idx].to(device))
            valid = None if valid_idx is None else (x_va, yc[valid_idx].to(device), yd[valid_idx].to(device))
            self._train(module, self._loss, train, valid, generator, device, callbacks,
                        parameters=self._trainable_parameters(module))
        if valid_idx is None:
            self.output_scale_ = self._fit_output_scale(None, None)
        else:
            self.output_scale_ = self._fit_output_scale(X[valid_idx.numpy()], Yc[valid_idx.numpy()])

    def _free_columns(self, n_continuous: int) -> list[int]:
        """Positions in ``Yc`` of the continuous columns regressed by the linear head (not learned as levels)."""
        gridded = {k for k, _, _ in self._level_columns()}
        return [k for k in range(n_continuous) if k not in gridded]

    def _head_classes(self) -> list[int]:
        """Choices per class head: the discrete columns', then the levels of each gridded continuous column."""
        return list(self.targets_.n_classes) + [len(grid) for _, _, grid in self._level_columns()]

    def _fit_output_scale(self, X_valid: np.ndarray | None, Yc_valid: np.ndarray | None) -> np.ndarray:
        """Per regressed continuous output, the factor ``a`` in [0, 1] minimizing ``sum((a * z_pred - z_true)^2)``.

        ``z_pred`` are the fitted module's standardized outputs on the validation rows, as :meth:`predict` computes
        them; all ones without validation rows.
        """
        n_cont = len(self.y_mean_)
        if X_valid is None or n_cont == 0:
            return np.ones(n_cont)
        p = self._forward_all(X_valid)[0].astype(np.float64)
        y = (np.asarray(Yc_valid, dtype=np.float64) - self.y_mean_) / self.y_std_
        den = (p * p).sum(axis=0)
        a = np.where(den > 0, (p * y).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)
        return np.clip(a, 0.0, 1.0)

    def _after_init(self, module: nn.Module) -> None:
        """Hook after :func:`init_parameters` (the autoencoder loads its encoder here)."""

    def _forward_all(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Run the module over ``X`` in batches; ``(z-scored values, [logits...])`` as numpy."""
        values, logits = [], []
        with self._inference() as (module, device, dtype):
            xt = self._images(X)
            for start in range(0, len(xt), int(self.batch_size)):
                v, lg = module(xt[start : start + int(self.batch_size)].to(device, dtype))
                values.append(None if v is None else v.cpu().numpy())
                logits.append([g.cpu().numpy() for g in lg])
        n_cont = len(self.y_mean_)
        vals = np.concatenate(values) if n_cont else np.zeros((len(X), 0), dtype=np.float32)
        lgs = [np.concatenate([b[k] for b in logits]) for k in range(len(self._head_classes()))]
        return vals, lgs

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._decode(*self._forward_all(X))[:2]

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        return self._decode(*self._forward_all(X))[2]

    def _predict_level_proba(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return self._decode(*self._forward_all(X))[3]

    def _predict_all(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], dict[str, np.ndarray]]:
        return self._decode(*self._forward_all(X))  # one forward pass for the values and both probabilities

    def _decode(self, z: np.ndarray, logits: list[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], dict[str, np.ndarray]]:
        """The module's outputs as ``(Yc, Yd, discrete probabilities, level probabilities)``."""
        scale = np.asarray(getattr(self, "output_scale_", np.ones(len(self.y_mean_))), dtype=np.float64)
        n_disc = len(self.targets_.n_classes)
        levels = self._level_columns()
        Yc = np.empty((len(z), len(self.targets_.continuous_index)))
        Yc[:, self._free_columns(Yc.shape[1])] = z.astype(np.float64) * scale * self.y_std_ + self.y_mean_
        level_proba = {name: softmax(logits[n_disc + i]) for i, (_, name, _) in enumerate(levels)}
        for k, name, grid in levels:  # the mean of the levels under their probabilities
            Yc[:, k] = level_proba[name] @ np.asarray(grid)
        Yd = (
            np.stack([lg.argmax(axis=1) for lg in logits[:n_disc]], axis=1)
            if n_disc
            else np.zeros((len(z), 0), dtype=np.int64)
        )
        return Yc, Yd, [softmax(lg) for lg in logits[:n_disc]], level_proba

    # -- saving: TorchBase's file plus the output shrinkage
    _JSON_STATE = (
        "input_shape_",
        "level_values_",
        "history_",
        "best_epoch_",
        "n_epochs_",
        "train_samples_per_s_",
        "device_",
        "pretrain_history_",
        "pretrain_samples_per_s_",
    )

    def _extra_weights(self) -> dict[str, torch.Tensor]:
        return {"output_scale": torch.from_numpy(np.asarray(self.output_scale_, dtype=np.float64))}

    def _restore_extra(self, state: dict[str, torch.Tensor]) -> None:
        # files saved before the shrinkage existed predict unscaled
        self.output_scale_ = state["output_scale"].numpy() if "output_scale" in state else np.ones(len(self.y_mean_))


    def _expected_failed_checks(self) -> dict[str, str]:
        """scikit-learn estimator checks expected to fail, with reasons: none.

        With the tiny settings of ``tests/test_common.py`` every check passes,
        ``check_fit_idempotent`` and the pickling checks included (one seeded
        generator per fit, weights pickled from the CPU). ``poor_score`` is set
        in the tags: a few epochs on the checks' tabular data are not meant to
        reach the scores a regressor should reach there.
        """
        return {}

    # -- pickling: weights always from the CPU
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
            state["module_"] = copy.deepcopy(module).to("cpu")
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # few epochs on the checks' tiny tabular data
        return tags


#: numpydoc text of the constructor parameters every torch estimator shares
LOOP_PARAMS_DOC = SYNTH_PARAMS_DOC + """
    batch_size : int, default=64
    max_epochs : int, default={max_epochs}
    lr : float, default={lr}
        Learning rate.
    weight_decay : float, default={weight_decay}
    optimizer : {{"adamw", "adam"}}, default="adamw"
    validation_fraction : float, default=0.1
        Rows held out (seeded) for early stopping; 0 trains on all rows and
        monitors the training loss.
    patience : int or None, default={patience}
        Epochs without a better validation loss before stopping; None runs all
        ``max_epochs``. The best epoch's weights are kept either way.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the one ``torch.Generator`` of a fit (init, split, batches, dropout).
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    num_threads : int or None, default=None
        ``torch.set_num_threads`` during fit and predict (restored after); None
        leaves torch's setting.
    verbose : int, default=0
        1 shows a progress bar over epochs with train/valid losses."""
