"""Features of a probe's renders: one feature step applied to each render, the results side by side.

A probe dataset (:mod:`synth_probe.probe`) holds each patch's renders as ``(n_renders, n_samples)``.
Estimators keep 2-D input (the scikit-learn contract), so a pipeline reads a patch as one row of
``n_renders * n_samples`` samples, render after render, and :class:`ProbeFeatures` cuts the row
back into its renders, applies a copy of the per-render feature step to each (its note length
set to that render's, where the step reads one) and joins the outputs in render order. Tabular
features then get each render's note and velocity as columns and, with ``contrast=True``, the
difference between each render's features and the previous render's (how the sound changes from
one note or velocity to the next, which is what key-follow and the velocity routings do; a tree
model would otherwise have to learn each difference from two columns); a full spectrogram
(``context=False``) stays ``n_renders`` images one after the other, which the spectrogram models
read as input channels, ``(n_renders, bins, frames)`` (:func:`synth_probe.pipeline.input_shape`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from synth_probe.errors import ParameterValueError

__all__ = ["ProbeFeatures", "context_columns", "join_renders", "render_triples", "split_renders"]


def render_triples(renders: Sequence[Any]) -> tuple[tuple[int, int, float], ...]:
    """``(note, velocity, note_length)`` of each render of a probe (RenderSettings or triples)."""
    out = []
    for r in renders:
        if hasattr(r, "note"):
            out.append((int(r.note), int(r.velocity), float(r.note_length)))
        else:
            n, v, length = r
            out.append((int(n), int(v), float(length)))
    return tuple(out)


def context_columns(renders: Sequence[Any], n: int) -> np.ndarray:
    """The note and velocity of each render, as the columns :class:`ProbeFeatures` appends.

    Parameters
    ----------
    renders : sequence of RenderSettings or (note, velocity, note_length)
    n : int
        Rows.

    Returns
    -------
    C : np.ndarray [shape=(n, 2 * n_renders), dtype=float32]
    """
    row = np.array([[t[0], t[1]] for t in render_triples(renders)], dtype=np.float32).reshape(1, -1)
    return np.repeat(row, int(n), axis=0)


def join_renders(blocks: np.ndarray, renders: Sequence[Any], *, contrast: bool, context: bool) -> np.ndarray:
    """Per-render feature blocks as one row per patch: the columns :class:`ProbeFeatures` makes.

    Parameters
    ----------
    blocks : np.ndarray [shape=(n, n_renders, k)]
        Each render's features.
    renders : sequence of RenderSettings or (note, velocity, note_length)
    contrast : bool
        Append render r's features minus render r - 1's, for r = 1 .. n_renders - 1.
    context : bool
        Append each render's note and velocity (:func:`context_columns`).

    Returns
    -------
    F : np.ndarray [shape=(n, n_renders * k (+ (n_renders - 1) * k) (+ 2 * n_renders)), dtype=float32]
    """
    blocks = np.asarray(blocks, dtype=np.float32)
    n = len(blocks)
    out = [blocks.reshape(n, -1)]
    if contrast and blocks.shape[1] > 1:
        out.append(np.diff(blocks, axis=1).reshape(n, -1))
    if context:
        out.append(context_columns(renders, n))
    return np.concatenate(out, axis=1)


def split_renders(X: np.ndarray, n_renders: int) -> np.ndarray:
    """Rows of ``n_renders * n_samples`` samples as ``(n, n_renders, n_samples)`` (a view where possible).

    Raises
    ------
    ParameterValueError
        The row width is not a multiple of ``n_renders``.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] % int(n_renders):
        raise ParameterValueError(f"a probe of {n_renders} renders reads rows of n_renders * n_samples values; "
                                  f"got an array of shape {X.shape}")
    return X.reshape(len(X), int(n_renders), -1)


class ProbeFeatures(TransformerMixin, BaseEstimator):
    """Apply a feature step to each render of a probe row and join the results.

    Parameters
    ----------
    step : transformer or None, default=None
        The per-render feature step (audio rows ``(n, n_samples)`` in, 2-D features out), cloned for
        each render; None passes each render's samples through.
    renders : tuple of (int, int, float), default=((60, 100, 1.0),)
        ``(note, velocity, note_length)`` of each render, in the order the row holds them.
    context : bool, default=True
        Append each render's note and velocity as two columns per render, after the features
        (tabular features); False for a spectrogram whose images the models read as input channels.
    contrast : bool, default=False
        Also append, for each render after the first, its features minus the previous render's
        (``n_renders - 1`` blocks, after the renders' own features and before the context
        columns). Nothing is added for a one-render probe.

    Attributes
    ----------
    steps_ : list of transformer
        The fitted copy of ``step`` of each render.
    n_features_in_ : int
        ``n_renders * n_samples``.
    n_features_per_render_ : int
        Output width of one render's features.

    Examples
    --------
    >>> import numpy as np
    >>> from synth_probe.features import LogMelSpectrogram
    >>> X = np.zeros((2, 2 * 4096), dtype=np.float32)
    >>> f = ProbeFeatures(LogMelSpectrogram(n_mels=8, time_pool=2), renders=((48, 100, 0.1), (72, 100, 0.1)))
    >>> f.fit_transform(X).shape  # 2 renders x 8 bands x 2 segments, and (note, velocity) of each
    (2, 36)
    """

    def __init__(self, step: Any = None, *, renders: Sequence[Sequence[float]] = ((60, 100, 1.0),),
                 context: bool = True, contrast: bool = False) -> None:
        self.step = step
        self.renders = renders
        self.context = context
        self.contrast = contrast

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a ProbeFeatures saved before ``contrast`` existed reads as it was written: without the differences
        state = dict(state)
        state.setdefault("contrast", False)
        super().__setstate__(state)

    def _triples(self) -> tuple[tuple[int, int, float], ...]:
        triples = render_triples(self.renders)
        if not triples:
            raise ParameterValueError("ProbeFeatures needs at least one render")
        return triples

    def _copy_for(self, note_length: float) -> Any:
        """A fresh copy of ``step`` with every ``note_length`` parameter (nested ones too) set to the render's."""
        if self.step is None:
            return None
        step = clone(self.step)
        keys = [k for k in step.get_params(deep=True) if k == "note_length" or k.endswith("__note_length")]
        if keys:
            step.set_params(**{k: float(note_length) for k in keys})
        return step

    def fit(self, X: Any, y: Any = None) -> ProbeFeatures:
        """Fit one copy of ``step`` on each render's samples.

        Parameters
        ----------
        X : array-like [shape=(n, n_renders * n_samples)]
        y : ignored
        """
        triples = self._triples()
        X = validate_data(self, X, dtype=np.float32)
        parts = split_renders(X, len(triples))
        self.steps_ = []
        width = None
        for r, (_, _, length) in enumerate(triples):
            step = self._copy_for(length)
            if step is not None:
                step.fit(parts[:, r])
                w = int(np.asarray(step.transform(parts[:1, r])).shape[1])
            else:
                w = int(parts.shape[2])
            width = w if width is None else width
            self.steps_.append(step)
        self.n_features_per_render_ = int(width)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of each render, in render order, their differences (``contrast``), then (note, velocity).

        Parameters
        ----------
        X : array-like [shape=(n, n_renders * n_samples)]

        Returns
        -------
        F : np.ndarray [shape=(n, n_renders * n_features_per_render_ (+ (n_renders - 1) * n_features_per_render_) (+ 2 * n_renders)), dtype=float32]
        """
        check_is_fitted(self, "steps_")
        triples = self._triples()
        X = validate_data(self, X, dtype=np.float32, reset=False)
        parts = split_renders(X, len(triples))
        blocks = np.stack([np.asarray(parts[:, r] if s is None else s.transform(parts[:, r]), dtype=np.float32)
                           for r, s in enumerate(self.steps_)], axis=1)
        return join_renders(blocks, triples, contrast=self.contrast, context=self.context)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``r<i>_<name>`` of each render's features (the step's names, or ``f<j>``), with ``contrast``
        ``d<i>_<name>`` (render i minus render i - 1), then ``r<i>_note``, ``r<i>_velocity``."""
        check_is_fitted(self, "steps_")
        names = []
        per_render = []
        for s in self.steps_:
            inner = getattr(s, "feature_names_", None)
            if inner is None or len(inner) != self.n_features_per_render_:
                inner = [f"f{j}" for j in range(self.n_features_per_render_)]
            per_render.append(list(inner))
        for r, inner in enumerate(per_render):
            names += [f"r{r}_{n}" for n in inner]
        if self.contrast:
            for r in range(1, len(per_render)):
                names += [f"d{r}_{n}" for n in per_render[r]]
        if self.context:
            names += [f"r{r}_{k}" for r in range(len(self.steps_)) for k in ("note", "velocity")]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # output is always float32
        return tags
