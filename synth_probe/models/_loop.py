"""The one training loop of the torch models: mini-batches, early stopping, best-weight restore.

:func:`fit_loop` is shared by every :class:`~synth_probe.models._torch.TorchEstimator`
(the autoencoder's pretraining included); :class:`GenDropout` draws its masks from
the fit's own generator, so two fits with the same ``random_state`` are identical.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["GenDropout", "TrainResult", "split_indices", "fit_loop", "evaluate_loss"]


class GenDropout(nn.Module):
    """Dropout whose masks come from a :class:`torch.Generator` set by the training loop.

    ``nn.Dropout`` draws from the global RNG, which would make two fits with the
    same ``random_state`` differ; :func:`fit_loop` points ``generator`` at the
    fit's own generator.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in [0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        # uniform draws compared with p: ~40% faster on CPUs than bernoulli_ with a generator
        keep = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    """What :func:`fit_loop` measured.

    Attributes
    ----------
    history : list of dict
        One entry per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (None
        without a validation split), ``seconds``, ``samples_per_s``.
    best_epoch : int
        1-based epoch whose weights were kept.
    stopped_early : bool
    samples_per_s : float
        Training rows per second of optimizer steps, over all epochs.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    samples_per_s: float = float("nan")


def split_indices(
    n: int, validation_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Shuffle ``range(n)`` with ``generator`` and hold out ``validation_fraction`` of it.

    No split (``None``) when the fraction is 0 or when it would leave fewer than
    2 rows on either side.

    Returns
    -------
    train_idx : torch.Tensor [shape=(n_train,), dtype=int64]
    valid_idx : torch.Tensor [shape=(n_valid,)] or None
    """
    n_valid = int(round(n * validation_fraction))
    if validation_fraction <= 0.0 or n_valid < 2 or n - n_valid < 2:
        return torch.arange(n), None
    perm = torch.randperm(n, generator=generator)
    return perm[n_valid:].sort().values, perm[:n_valid].sort().values


def _batches(n: int, batch_size: int, perm: torch.Tensor) -> list[torch.Tensor]:
    """Split a permutation into batches; a last batch of one row joins the one before.

    (Batch norm cannot normalize a batch of one row.)
    """
    out = list(torch.split(perm, batch_size))
    if len(out) > 1 and len(out[-1]) == 1:
        out[-2] = torch.cat([out[-2], out.pop()])
    return out


def fit_loop(
    module: nn.Module,
    loss_fn: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor],
    train: Sequence[torch.Tensor],
    valid: Sequence[torch.Tensor] | None,
    *,
    optimizer: str,
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int | None,
    generator: torch.Generator,
    device: torch.device,
    verbose: int = 0,
    desc: str = "train",
    parameters: Sequence[nn.Parameter] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``module`` with mini-batches, early stopping and best-weight restore.

    Parameters
    ----------
    module : nn.Module
        Already on ``device``.
    loss_fn : callable
        ``loss_fn(module, batch) -> scalar tensor``, the mean loss over the
        batch; ``batch`` holds one slice of each tensor of ``train``.
    train, valid : sequence of torch.Tensor
        Tensors with the same first dimension (rows), on ``device``. ``valid``
        may be None: then the training loss is monitored.
    optimizer : {"adamw", "adam"}
    lr, weight_decay : float
    batch_size, max_epochs : int
    patience : int or None
        Epochs without improvement of the monitored loss before stopping;
        None trains all ``max_epochs`` (the best epoch is still restored).
    generator : torch.Generator
        CPU generator for batch order and dropout masks.
    device : torch.device
    verbose : int, default=0
        > 0 shows a tqdm bar over epochs with the losses.
    desc : str
        Label of the progress bar.
    parameters : sequence of nn.Parameter, optional
        What the optimizer updates (default: all parameters that require grad).
    on_epoch : callable, optional
        Called after each epoch with that epoch's history entry (``epoch``,
        ``train_loss``, ``valid_loss``...); an exception it raises (e.g.
        ``optuna.TrialPruned``) stops training and propagates.

    Returns
    -------
    TrainResult

    Raises
    ------
    FloatingPointError
        When the training loss becomes NaN or infinite (lower ``lr``).
    """
    params = [p for p in (module.parameters() if parameters is None else parameters) if p.requires_grad]
    opt = _optimizer(optimizer, params, lr, weight_decay)
    _set_dropout_generators(module, _dropout_generator(generator, device))
    n = int(train[0].shape[0])
    result = TrainResult()
    best, best_state, bad_epochs, seen, train_seconds = math.inf, None, 0, 0, 0.0
    bar = tqdm(total=max_epochs, desc=desc, unit="epoch", disable=verbose <= 0, leave=False)
    for epoch in range(1, max_epochs + 1):
        train_loss, count, seconds = _train_epoch(module, loss_fn, train, opt, n, batch_size, generator, device,
                                                  f"{desc}: the training loss became {{}} in epoch {epoch}; "
                                                  f"lower lr (now {lr})")
        train_seconds += seconds
        seen += count
        valid_loss = evaluate_loss(module, loss_fn, valid, batch_size) if valid is not None else None
        monitored = valid_loss if valid_loss is not None else train_loss
        result.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                               "seconds": seconds, "samples_per_s": count / seconds if seconds > 0 else float("nan")})
        bar.set_postfix(
            train=f"{train_loss:.4f}", valid="-" if valid_loss is None else f"{valid_loss:.4f}", refresh=False
        )
        bar.update(1)
        if on_epoch is not None:
            on_epoch(dict(result.history[-1]))
        if monitored < best:
            best, result.best_epoch, bad_epochs = monitored, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            bad_epochs += 1
            if patience is not None and bad_epochs >= patience:
                result.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    _set_dropout_generators(module, None)  # generators do not pickle
    result.samples_per_s = seen / train_seconds if train_seconds > 0 else float("nan")
    return result


def _optimizer(name: str, params: Sequence[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adamw' or 'adam', got {name!r}")


def _dropout_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """Where dropout masks are drawn: on the training device, from a generator seeded from ``generator``."""
    if device.type == "cpu":
        return generator
    drop_gen = torch.Generator(device=device)
    drop_gen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
    return drop_gen


def _set_dropout_generators(module: nn.Module, generator: torch.Generator | None) -> None:
    for m in module.modules():
        if isinstance(m, GenDropout):
            m.generator = generator


def _train_epoch(module: nn.Module, loss_fn: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor],
                 train: Sequence[torch.Tensor], opt: torch.optim.Optimizer, n: int, batch_size: int,
                 generator: torch.Generator, device: torch.device, nan_message: str) -> tuple[float, int, float]:
    """One pass over the training rows in a fresh order; returns ``(mean loss, rows, seconds)``.

    Raises
    ------
    FloatingPointError
        The loss became NaN or infinite (``nan_message`` with ``{}`` for the value).
    """
    module.train()
    perm = torch.randperm(n, generator=generator).to(device)
    t0 = time.perf_counter()
    total, count = 0.0, 0
    for idx in _batches(n, batch_size, perm):
        batch = [t[idx] for t in train]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(module, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(nan_message.format(loss.item()))
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return total / max(count, 1), count, time.perf_counter() - t0


@torch.no_grad()
def evaluate_loss(
    module: nn.Module,
    loss_fn: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor],
    data: Sequence[torch.Tensor],
    batch_size: int,
) -> float:
    """Row-weighted mean of ``loss_fn`` over ``data`` in eval mode."""
    module.eval()
    n = int(data[0].shape[0])
    total = 0.0
    for start in range(0, n, batch_size):
        batch = [t[start : start + batch_size] for t in data]
        total += float(loss_fn(module, batch)) * len(batch[0])
    return total / max(n, 1)


# --------------------------------------------------------------------------- heads
