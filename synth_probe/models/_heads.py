"""The output heads of the torch point estimators, and what their outputs mean.

:class:`ParamHeads` maps a feature vector to linear values (the regressed continuous targets) and one
set of logits per class target: each discrete parameter, then each continuous parameter learned as a
class over the levels of its grid (``levels=``), whose training target :func:`level_targets` can
spread over the neighbouring levels.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ParamHeads", "level_targets", "softmax", "LEVEL_SMOOTHING_DOC"]


class ParamHeads(nn.Module):
    """Output layer: linear values for the regressed continuous targets, logits per class target.

    Parameters
    ----------
    n_in : int
        Width of the feature vector.
    n_continuous : int
    n_classes : sequence of int
        Number of classes of each class target: the discrete parameters' choices, then the levels of
        each gridded continuous parameter.

    ``forward(h)`` returns ``(values (n, n_continuous), [logits (n, k_j), ...])``.
    """

    def __init__(self, n_in: int, n_continuous: int, n_classes: Sequence[int]) -> None:
        super().__init__()
        self.continuous = nn.Linear(n_in, n_continuous) if n_continuous else None
        self.discrete = nn.ModuleList(nn.Linear(n_in, int(k)) for k in n_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        values = self.continuous(h) if self.continuous is not None else None
        return values, [head(h) for head in self.discrete]


def level_targets(index: torch.Tensor, n_levels: int, width: float, dtype: torch.dtype) -> torch.Tensor:
    """``(n, n_levels)`` class targets spread over the levels next to each true ``index``: a Gaussian of
    standard deviation ``width`` levels, normalized (neighbouring levels of a grid sound alike, unlike
    the choices of a discrete parameter)."""
    j = torch.arange(n_levels, device=index.device, dtype=dtype)
    q = torch.exp(-0.5 * ((j[None, :] - index[:, None].to(dtype)) / width) ** 2)
    return q / q.sum(dim=1, keepdim=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` logits, in float64."""
    lg = np.asarray(logits, dtype=np.float64)
    e = np.exp(lg - lg.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


#: numpydoc text of ``level_smoothing``, the torch point estimators' parameter after ``levels``
LEVEL_SMOOTHING_DOC = """\
    level_smoothing : float, default=0.0
        0 trains a gridded parameter's class head (``levels``) on one-hot targets, as InverSynth
        does; a width w > 0 spreads the target as a Gaussian over the levels, w levels wide
        (standard deviation) around the true one, since neighbouring levels of a grid sound alike."""
