"""The estimator base: targets in unit space, discrete parameters as classes.

Every estimator of :mod:`synth_probe.models` follows scikit-learn's contract
(``fit(X, Y)`` returns ``self``; ``predict(X)``; ``get_params``/``set_params``;
``clone``) and shares one target convention:

* ``X`` is 2-D, shape ``(n_samples, n_features)``: handcrafted features,
  flattened spectrograms or raw audio rows. Any shape information (``n_mels``,
  ``n_frames``, ``sample_rate``) is a constructor parameter of the estimator.
* ``Y`` holds unit values in [0, 1]: a DataFrame (one column per synth
  parameter), a named Series (one parameter), or a 1-D / 2-D array.
* Continuous parameters are regressed and predicted as values clipped to
  [0, 1]; discrete parameters are classified and predicted as the canonical unit
  value of the predicted choice.

:class:`ParamTargets` does the bookkeeping: which columns are discrete (read
from the synth's :class:`~synth_probe.synths.base.ParamSpec` or from a
``discrete=`` mapping), how a unit value becomes a class index and back, and
how a prediction is shaped like the ``Y`` that was fit.

:class:`SynthEstimator` is the base class. A subclass implements two hooks::

    def _fit_encoded(self, X, Yc, Yd, callbacks): ...  # returns nothing
    def _predict_encoded(self, X): ...            # returns (Yc_hat, Yd_hat)

and optionally ``_predict_discrete_proba(X)`` (returns a list of
``(n_samples, n_choices)`` arrays, one per discrete column), which enables
:meth:`SynthEstimator.predict_discrete_proba` and ranking-based metrics; a model whose one
pass gives the values and every probability (the torch models) overrides ``_predict_all`` so
that :meth:`SynthEstimator.predict_with_proba` runs it once.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from synth_probe.errors import ParameterValueError, UnknownParameterError
from synth_probe.synths.registry import get_synth

__all__ = ["ParamTargets", "SynthEstimator", "discrete_columns_of", "discrete_layout", "FitProgress", "SYNTH_PARAMS_DOC",
           "LEVELS_DOC", "nearest_level"]

#: numpydoc text of the ``synth`` and ``discrete`` constructor parameters every estimator takes
SYNTH_PARAMS_DOC = """\
    synth : str or None, default=None
        The synth the model is for (name or plugin path), recorded with the model; never opened.
    discrete : mapping or None, default=None
        The targets' discrete layout: column -> :func:`~synth_probe.models.base.discrete_layout` entry,
        number of choices, or the choices' unit values. Columns not named are continuous."""

#: numpydoc text of the ``levels`` constructor parameter of the estimators that learn a grid as classes
LEVELS_DOC = """\
    levels : mapping of str -> sequence of float, or None, default=None
        Continuous target columns drawn from a grid, with the grid's unit values (for example
        :func:`synth_probe.metrics.grid_levels` of the training targets): each is learned as a
        class over its levels (two or more), as InverSynth learns its parameters; its prediction
        is the mean of the levels under the class probabilities, and
        :meth:`~synth_probe.models.base.SynthEstimator.predict_level_proba` gives the probabilities.
        Entries for discrete or absent columns are ignored, so one mapping serves every subset of
        a dataset's parameters."""


def nearest_level(y: Any, grid: Sequence[float]) -> np.ndarray:
    """Index of the level of ``grid`` nearest each value of ``y`` (int64, shape of ``y`` flattened)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return np.abs(y[:, None] - np.asarray(grid, dtype=np.float64)[None, :]).argmin(axis=1).astype(np.int64)


def _n_choices_and_values(spec_like: Any) -> tuple[int, tuple[float, ...]]:
    """(n_choices, choice unit values) from an int, a sequence of unit values, a layout entry or a ParamSpec."""
    if hasattr(spec_like, "choice_values"):
        return int(spec_like.n_choices), tuple(float(v) for v in spec_like.choice_values)
    if isinstance(spec_like, Mapping) and "values" in spec_like:
        return _n_choices_and_values(list(spec_like["values"]))
    if isinstance(spec_like, (int, np.integer)) and not isinstance(spec_like, bool):
        n = int(spec_like)
        if n < 2:
            raise ParameterValueError(f"a discrete parameter needs at least 2 choices, got {n}")
        return n, tuple(float(v) for v in np.linspace(0.0, 1.0, n))
    if isinstance(spec_like, Sequence) and not isinstance(spec_like, str):
        vals = tuple(float(v) for v in spec_like)
        if len(vals) < 2 or not all(0.0 <= v <= 1.0 for v in vals):
            raise ParameterValueError(
                f"choice values must be at least 2 unit values in [0, 1], got {list(vals)}"
            )
        return len(vals), vals
    raise ParameterValueError(
        f"a discrete entry must be a number of choices (int >= 2), a sequence of unit choice values or a "
        f"layout entry {{'values', 'rule', 'bounds'}}, got {spec_like!r}"
    )


def _choice_bounds(spec: Any) -> list[float]:
    """Where a discrete spec's chooser steps up: ``bounds[k]`` is the least unit value that selects choice k+1.

    The chooser of a spec is monotone (a value selects the same or a later choice than any smaller value),
    so ``bisect_right(bounds, v)`` is the choice of ``v``; each bound is found by bisection to the float.
    """
    out = []
    for k in range(1, int(spec.n_choices)):
        lo, hi = 0.0, 1.0
        if spec.choice_index(lo) >= k:
            out.append(0.0)
            continue
        if spec.choice_index(hi) < k:
            out.append(float(np.nextafter(1.0, 2.0)))  # never selected by a unit value
            continue
        while np.nextafter(lo, hi) < hi:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if spec.choice_index(mid) >= k:
                hi = mid
            else:
                lo = mid
        out.append(hi)
    return out


def discrete_layout(specs: Sequence[Any], columns: Sequence[Any] | None = None) -> dict[str, dict[str, Any]]:
    """The discrete target layout of parameter specs, as plain data an estimator takes (``discrete=``).

    Parameters
    ----------
    specs : sequence of ParamSpec
        A synth's or a dataset's parameter specs.
    columns : sequence of str, optional
        Only these parameters (default: all).

    Returns
    -------
    dict
        Parameter name -> ``{"values": [unit value of each choice], "rule": "round" | "gt0" | "bounds",
        "bounds": [least unit value of choice 1, 2, ...]}`` (bounds only for the ``"bounds"`` rule), for
        each discrete parameter. Lists and floats only: it pickles, serializes and survives ``clone``.
    """
    keep = None if columns is None else {str(c) for c in columns}
    out: dict[str, dict[str, Any]] = {}
    for sp in specs:
        if not sp.is_discrete or (keep is not None and sp.name not in keep):
            continue
        entry: dict[str, Any] = {"values": [float(v) for v in sp.choice_values]}
        if getattr(sp, "chooser", None) is not None:
            entry.update(rule="bounds", bounds=_choice_bounds(sp))
        else:
            entry["rule"] = "gt0" if sp.rounding == "gt0" else "round"
        out[sp.name] = entry
    return out


def discrete_columns_of(synth: str | None, columns: Sequence[Any]) -> dict[Any, Any]:
    """Discrete columns among ``columns`` according to ``synth``'s specs.

    Parameters
    ----------
    synth : str or None
        A synth name (``"noisemaker"``) or plugin path; None gives no discrete columns.
    columns : sequence of str
        Parameter names.

    Returns
    -------
    dict
        Column -> :class:`~synth_probe.synths.base.ParamSpec` of each discrete column.

    Raises
    ------
    UnknownParameterError
        A column that the synth does not have (the message lists the closest names).
    """
    if synth is None:
        return {}
    s = get_synth(synth)
    out = {}
    for col in columns:
        spec = s.spec(str(col))  # raises UnknownParameterError with suggestions
        if spec.is_discrete:
            out[col] = spec
    return out


class ParamTargets:
    """How the columns of ``Y`` split into continuous values and discrete classes.

    Built once per fit with :meth:`fit`; holds only plain data (lists, tuples,
    floats), so it pickles and serializes with skops.

    Parameters
    ----------
    synth : str or None, default=None
        Synth whose specs say which columns are discrete (columns must then be
        its parameter names; an unnamed array must have one column per
        parameter, in host order).
    discrete : mapping or None, default=None
        Column (name, or position for arrays) -> number of choices (int >= 2,
        choices evenly spaced on [0, 1], chosen by rounding) or a sequence of the
        choices' unit values (chosen by nearest value). Overrides ``synth``.

    Attributes
    ----------
    columns : list
        Column labels in ``Y`` order (positions for unnamed arrays).
    kind : {"frame", "series", "array1d", "array2d"}
        The container ``Y`` came in; predictions are returned in the same kind.
    discrete_mask : list of bool
        Per column, True when discrete.
    n_classes : list of int
        Number of choices of each discrete column (in column order).
    choice_values : list of tuple of float
        Canonical unit value of each choice, per discrete column.
    lower, upper : list of float
        Clip range of each continuous column: ``[0, 1]`` widened to the training
        range if the training targets leave it (generic regression, e.g. the
        scikit-learn checks). For synth parameters this is always ``[0, 1]``.
    """

    def __init__(self, *, synth: str | None = None, discrete: Mapping[Any, Any] | None = None) -> None:
        self.synth = synth
        self.discrete = discrete

    # ------------------------------------------------------------------ fit
    def fit(self, Y: Any) -> ParamTargets:
        """Learn the column layout of ``Y``.

        Parameters
        ----------
        Y : DataFrame, Series or array-like [shape=(n_samples,) or (n_samples, n_params)]
        """
        if isinstance(Y, pd.DataFrame):
            self.kind = "frame"
            columns = list(Y.columns)
        elif isinstance(Y, pd.Series):
            self.kind = "series"
            columns = [Y.name if Y.name is not None else 0]
        else:
            arr = np.asarray(Y)
            self.kind = "array1d" if arr.ndim == 1 else "array2d"
            columns = list(range(1 if arr.ndim == 1 else arr.shape[1]))
        self.named = self.kind in ("frame", "series") and not (self.kind == "series" and Y.name is None)
        Yarr = self._as_2d(Y)

        specs: dict[Any, Any] = {}
        if self.synth is not None:
            if self.named:
                specs = discrete_columns_of(self.synth, columns)
            else:
                s = get_synth(self.synth)
                if Yarr.shape[1] != len(s.specs):
                    raise ParameterValueError(
                        f"Y is an unnamed array with {Yarr.shape[1]} columns but synth {self.synth!r} has "
                        f"{len(s.specs)} parameters; pass a DataFrame whose columns are parameter names "
                        "to fit a subset"
                    )
                specs = {i: sp for i, sp in enumerate(s.specs) if sp.is_discrete}
        if self.discrete is not None:
            for key in self.discrete:
                if key not in columns:
                    raise UnknownParameterError(str(key), [str(c) for c in columns], synth="the targets")
            specs = dict(specs)
            specs.update({k: v for k, v in self.discrete.items()})

        self.columns = columns
        self.discrete_mask = [c in specs for c in columns]
        self.n_classes = []
        self.choice_values = []
        self.rules = []  # per discrete column: "round", "gt0", "nearest" or "bounds" (a chooser's steps)
        self.bounds: list[list[float]] = []  # per discrete column: the "bounds" rule's steps, else []
        for c in columns:
            if c in specs:
                n, vals = _n_choices_and_values(specs[c])
                self.n_classes.append(n)
                self.choice_values.append(vals)
                sp = specs[c]
                if hasattr(sp, "choice_index"):
                    sp = discrete_layout([sp])[sp.name]
                if isinstance(sp, Mapping):
                    rule = str(sp.get("rule", "nearest"))
                    if rule not in ("round", "gt0", "bounds", "nearest"):
                        raise ParameterValueError(f"unknown choice rule {rule!r} of target {c!r}")
                    self.bounds.append([float(b) for b in sp.get("bounds", ())] if rule == "bounds" else [])
                elif isinstance(sp, (int, np.integer)):
                    rule = "round"
                else:
                    rule = "nearest"
                if not isinstance(sp, Mapping):
                    self.bounds.append([])
                self.rules.append(rule)
        if self.synth is not None or self.discrete is not None:
            self._check_unit(Yarr)
        cont = Yarr[:, ~np.asarray(self.discrete_mask, dtype=bool)] if len(columns) else Yarr
        if cont.shape[1]:
            self.lower = [float(min(0.0, v)) for v in np.min(cont, axis=0)]
            self.upper = [float(max(1.0, v)) for v in np.max(cont, axis=0)]
        else:
            self.lower, self.upper = [], []
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_spec_cache", None)  # ParamSpecs hold functions: re-read from the synth on demand
        return state

    def _check_unit(self, Yarr: np.ndarray) -> None:
        bad = ~((Yarr >= 0.0) & (Yarr <= 1.0))
        if bad.any():
            j = int(np.argmax(bad.any(axis=0)))
            i = int(np.argmax(bad[:, j]))
            raise ParameterValueError(
                f"target column {self.columns[j]!r}: value {Yarr[i, j]!r} (row {i}) is outside [0, 1]; "
                "synth parameters are unit values in [0, 1]"
            )

    @staticmethod
    def _as_2d(Y: Any) -> np.ndarray:
        arr = np.asarray(Y, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ParameterValueError(f"Y must be 1-D or 2-D, got {arr.ndim} dimensions")
        return arr

    # ------------------------------------------------------------ properties
    @property
    def n_outputs(self) -> int:
        return len(self.columns)

    @property
    def continuous_index(self) -> list[int]:
        """Positions (in ``columns``) of the continuous columns."""
        return [j for j, d in enumerate(self.discrete_mask) if not d]

    @property
    def discrete_index(self) -> list[int]:
        """Positions (in ``columns``) of the discrete columns."""
        return [j for j, d in enumerate(self.discrete_mask) if d]

    @property
    def continuous_columns(self) -> list[Any]:
        return [self.columns[j] for j in self.continuous_index]

    @property
    def discrete_columns(self) -> list[Any]:
        return [self.columns[j] for j in self.discrete_index]

    @property
    def names(self) -> list[str]:
        """Column labels as strings (positions become ``"y0"``, ``"y1"``...)."""
        return [str(c) if self.named else f"y{c}" for c in self.columns]

    # --------------------------------------------------------------- encode
    def to_class(self, k: int, values: np.ndarray) -> np.ndarray:
        """Class indices of the ``k``-th discrete column's unit ``values``, as the synth chooses.

        Returns
        -------
        classes : np.ndarray [shape=(n,), dtype=int64]
        """
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = self.n_classes[k]
        rule = self.rules[k]
        if rule == "spec":  # models saved before the layout was data: the synth's own chooser
            spec = self._spec(k)
            return np.array([spec.choice_index(float(v)) for v in values], dtype=np.int64)
        if rule == "bounds":
            out = np.searchsorted(np.asarray(self.bounds[k], dtype=np.float64), values, side="right")
        elif rule == "gt0" and n == 2:
            out = (values > 0.0).astype(np.float64)
        elif rule in ("round", "gt0"):
            out = np.floor(values * (n - 1) + 0.5)
        else:  # nearest listed choice value
            cv = np.asarray(self.choice_values[k])
            out = np.argmin(np.abs(values[:, None] - cv[None, :]), axis=1)
        return np.clip(out, 0, n - 1).astype(np.int64)

    def _spec(self, k: int) -> Any:
        cache = self.__dict__.setdefault("_spec_cache", {})
        if k not in cache:
            s = get_synth(self.synth)
            col = self.discrete_columns[k]
            cache[k] = s.spec(str(col)) if self.named else s.specs[int(col)]
        return cache[k]

    def transform(self, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Split ``Y`` into continuous values and discrete class indices.

        Parameters
        ----------
        Y : DataFrame, Series or array-like [shape=(n_samples, n_params)]
            Columns in the order seen by :meth:`fit`.

        Returns
        -------
        Yc : np.ndarray [shape=(n_samples, n_continuous), dtype=float64]
        Yd : np.ndarray [shape=(n_samples, n_discrete), dtype=int64]
        """
        if isinstance(Y, pd.DataFrame) and self.kind == "frame":
            Y = Y[self.columns]
        Yarr = self._as_2d(Y)
        if Yarr.shape[1] != len(self.columns):
            raise ParameterValueError(f"Y has {Yarr.shape[1]} columns, expected {len(self.columns)}")
        Yc = Yarr[:, self.continuous_index]
        Yd = np.empty((len(Yarr), len(self.discrete_index)), dtype=np.int64)
        for k, j in enumerate(self.discrete_index):
            Yd[:, k] = self.to_class(k, Yarr[:, j])
        return Yc, Yd

    def inverse_transform(self, Yc: np.ndarray, Yd: np.ndarray) -> np.ndarray:
        """Unit values from continuous predictions and discrete classes.

        Continuous values are clipped to their range (``[0, 1]`` for synth
        parameters); classes become their choice's canonical unit value.

        Parameters
        ----------
        Yc : array-like [shape=(n_samples, n_continuous)]
        Yd : array-like of int [shape=(n_samples, n_discrete)]

        Returns
        -------
        Y : np.ndarray [shape=(n_samples, n_params), dtype=float64]
        """
        Yc = np.asarray(Yc, dtype=np.float64)
        Yd = np.asarray(Yd)
        n = Yc.shape[0] if Yc.ndim and Yc.size else (Yd.shape[0] if Yd.ndim else 0)
        Yc = Yc.reshape(n, len(self.continuous_index))
        Yd = Yd.reshape(n, len(self.discrete_index)).astype(np.int64)
        out = np.empty((len(Yc), len(self.columns)), dtype=np.float64)
        if self.continuous_index:
            out[:, self.continuous_index] = np.clip(Yc, self.lower, self.upper)
        for k, j in enumerate(self.discrete_index):
            cv = np.asarray(self.choice_values[k])
            out[:, j] = cv[np.clip(Yd[:, k], 0, self.n_classes[k] - 1)]
        return out

    def format(self, Y: np.ndarray, index: Any = None) -> Any:
        """Shape unit values like the ``Y`` given to :meth:`fit`.

        Returns a DataFrame (columns = parameter names) when fit on a DataFrame,
        a Series for a Series, else an ndarray of shape ``(n,)`` or ``(n, k)``.
        """
        if self.kind == "frame":
            return pd.DataFrame(Y, columns=list(self.columns), index=index)
        if self.kind == "series":
            return pd.Series(Y[:, 0], name=self.columns[0], index=index)
        if self.kind == "array1d":
            return Y[:, 0]
        return Y


@dataclass(frozen=True)
class FitProgress:
    """One progress report of a fit, passed to each of ``fit``'s ``callbacks``.

    Attributes
    ----------
    step : int
        Epochs (torch models) or boosting rounds (LightGBM) done, from 1.
    budget : int
        The most steps this fit may take (``max_epochs``, ``n_estimators``).
    loss : float
        The monitored loss after ``step``: the early-stopping split's if there is one, else the training loss.
        Torch models: z-scored MSE of the continuous targets plus the discrete targets' cross-entropy;
        LightGBM: L2 (continuous) or multi-class log-loss (discrete) of one target.
    unit : {"epoch", "round"}
    """

    step: int
    budget: int
    loss: float
    unit: str


#: a fit callback: called with a FitProgress after each step; raising an exception ends the fit with it
FitCallback = Callable[[FitProgress], None]


class SynthEstimator(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Base class of every synth_probe estimator.

    Subclasses declare their own keyword-only ``__init__`` (which must include
    ``synth=None`` and ``discrete=None`` and store every argument unchanged) and
    implement :meth:`_fit_encoded` and :meth:`_predict_encoded`.

    ``discrete`` is the targets' layout as data (:func:`discrete_layout` of the synth's
    specs, or a number of choices / the choice values per column); ``synth`` only
    records which synth the model is for (``match`` and ``evaluate`` read it): an
    estimator never opens a synth.

    Progress hooks are explicit: ``fit(X, Y, callbacks=[...])`` calls each callback
    with a :class:`FitProgress` after every epoch (torch models) or boosting round
    (LightGBM), as LightGBM's and skorch's ``callbacks`` do; in a Pipeline pass
    ``estimator__callbacks=``. Callbacks are fit arguments, not state: ``clone`` and
    saved models never hold them.

    Attributes set by :meth:`fit`
    -----------------------------
    targets_ : ParamTargets
        Column layout of ``Y``.
    param_names_ : list of str
        Names of the target columns (``"y0"``... for unnamed arrays).
    n_outputs_ : int
    n_features_in_ : int
    feature_names_in_ : np.ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    """

    #: dtypes that ``X`` is validated to (the first is the default for other dtypes)
    _X_dtype: Any = (np.float64, np.float32)

    def _store_init_args(self, values: dict[str, Any]) -> None:
        """Store every argument of ``type(self).__init__`` from ``values`` (the constructor's ``locals()``)."""
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self":
                setattr(self, name, values[name])

    # ----------------------------------------------------------- public API
    def fit(self, X: Any, Y: Any, callbacks: Sequence[FitCallback] | None = None) -> SynthEstimator:
        """Fit on features ``X`` and unit-value targets ``Y``.

        Parameters
        ----------
        X : array-like [shape=(n_samples, n_features)]
        Y : DataFrame, Series or array-like [shape=(n_samples,) or (n_samples, n_params)]
            Unit values; columns named by parameter for a DataFrame.
        callbacks : sequence of callable, optional
            Each is called with a :class:`FitProgress` after every epoch or boosting round
            (estimators without steps never call them).

        Returns
        -------
        self
        """
        X, Yc, Yd = self._prepare_fit(X, Y)
        self._fit_encoded(X, Yc, Yd, tuple(callbacks or ()))
        return self

    def predict(self, X: Any) -> Any:
        """Predict unit values.

        Parameters
        ----------
        X : array-like [shape=(n_samples, n_features)]

        Returns
        -------
        Y : DataFrame, Series or np.ndarray [shape=(n_samples,) or (n_samples, n_params)]
            Same container and columns as the ``Y`` given to :meth:`fit`.
            Continuous values lie in [0, 1]; discrete ones are canonical choice values.
        """
        index = X.index if isinstance(X, pd.DataFrame) else None
        X = self._prepare_predict(X)
        Yc, Yd = self._predict_encoded(X)
        return self.targets_.format(self.targets_.inverse_transform(Yc, Yd), index=index)

    def predict_discrete_proba(self, X: Any) -> dict[str, np.ndarray]:
        """Class probabilities of each discrete parameter.

        Returns
        -------
        proba : dict of str -> np.ndarray [shape=(n_samples, n_choices)]
            Keyed by parameter name; empty when no target is discrete.

        Raises
        ------
        NotImplementedError
            When the estimator gives only hard classes.
        """
        X = self._prepare_predict(X)
        if not self.targets_.discrete_index:
            return {}
        probas = self._predict_discrete_proba(X)
        names = [self.targets_.names[j] for j in self.targets_.discrete_index]
        return dict(zip(names, probas))

    def predict_level_proba(self, X: Any) -> dict[str, np.ndarray]:
        """Probabilities of the levels of each continuous column learned as classes (``levels``).

        Parameters
        ----------
        X : array-like [shape=(n_samples, n_features)]

        Returns
        -------
        proba : dict of str -> np.ndarray [shape=(n_samples, n_levels)]
            Keyed by parameter name, columns in the order of ``level_values_[name]``; empty for an
            estimator fit without ``levels`` (or one that has no such parameter).
            :func:`synth_probe.metrics.parameter_report` ranks the levels by them (``proba=``) when
            they are the report's grid.
        """
        X = self._prepare_predict(X)
        if not getattr(self, "level_values_", {}):
            return {}
        return self._predict_level_proba(X)

    def predict_with_proba(self, X: Any) -> tuple[Any, dict[str, np.ndarray] | None]:
        """:meth:`predict`, :meth:`predict_discrete_proba` and :meth:`predict_level_proba` in one pass.

        A torch model runs its forward pass once for the three (calling them one by one runs it
        three times); the others give the same as the three calls.

        Returns
        -------
        Y : DataFrame, Series or np.ndarray
            As :meth:`predict`.
        proba : dict of str -> np.ndarray, or None
            The discrete parameters' class probabilities and the gridded continuous parameters'
            level probabilities in one dict (the discrete ones left out where the estimator gives
            only hard classes); None when that leaves nothing.
        """
        index = X.index if isinstance(X, pd.DataFrame) else None
        X = self._prepare_predict(X)
        Yc, Yd, disc, lv = self._predict_all(X)
        Y = self.targets_.format(self.targets_.inverse_transform(Yc, Yd), index=index)
        if disc is None and not lv:
            return Y, None
        names = [self.targets_.names[j] for j in self.targets_.discrete_index]
        return Y, {**dict(zip(names, disc or [])), **lv}

    # -------------------------------------------------------- subclass hooks
    def _predict_all(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None,
                                                   dict[str, np.ndarray]]:
        """``(Yc_hat, Yd_hat, discrete probabilities or None, level probabilities)`` of validated ``X``;
        override where one pass gives all four (the torch models)."""
        Yc, Yd = self._predict_encoded(X)
        try:
            disc = self._predict_discrete_proba(X) if self.targets_.discrete_index else []
        except NotImplementedError:
            disc = None
        return Yc, Yd, disc, self._predict_level_proba(X) if getattr(self, "level_values_", {}) else {}

    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray,
                     callbacks: Sequence[FitCallback] = ()) -> None:
        """Fit on ``X`` (n, f), continuous targets ``Yc`` (n, n_cont) and classes ``Yd`` (n, n_disc)."""
        raise NotImplementedError

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(Yc_hat (n, n_cont), Yd_hat (n, n_disc) int)`` for validated ``X``."""
        raise NotImplementedError

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} predicts classes without probabilities")

    def _predict_level_proba(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Level probabilities of the gridded continuous columns (called only when ``level_values_`` is set)."""
        raise NotImplementedError(f"{type(self).__name__} does not learn levels as classes")

    # ------------------------------------------------ gridded continuous targets
    def _grids(self) -> dict[str, list[float]]:
        """The sorted levels (two or more) of each continuous target named in the ``levels`` parameter.

        Call after :meth:`_prepare_fit` (it reads ``targets_``). Estimators without a ``levels``
        parameter, or with ``levels=None``, get an empty dict.

        Raises
        ------
        ParameterValueError
            ``levels`` is not a mapping, or a grid holds a value that is not finite.
        """
        levels = getattr(self, "levels", None)
        if levels is None:
            return {}
        if not isinstance(levels, Mapping):
            raise ParameterValueError(f"levels must be a mapping of parameter -> grid values, got {levels!r}")
        t = self.targets_
        out: dict[str, list[float]] = {}
        for j in t.continuous_index:
            name = str(t.names[j])
            if name not in levels:
                continue
            grid = sorted({float(v) for v in np.asarray(levels[name], dtype=np.float64).ravel()})
            if not all(np.isfinite(grid)):
                raise ParameterValueError(f"levels[{name!r}] holds a value that is not finite: {grid}")
            if len(grid) >= 2:
                out[name] = grid
        return out

    def _level_columns(self) -> list[tuple[int, str, list[float]]]:
        """``(k, name, grid)`` of each continuous column learned as classes; ``k`` indexes ``Yc``'s columns.

        Empty for an estimator fit (or saved) without ``levels``.
        """
        grids = getattr(self, "level_values_", None) or {}
        t = self.targets_
        return [(k, str(t.names[j]), list(grids[str(t.names[j])]))
                for k, j in enumerate(t.continuous_index) if str(t.names[j]) in grids]

    # ------------------------------------------------------------- helpers
    def _prepare_fit(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate ``X`` and ``Y``, learn the target layout; return ``(X, Yc, Yd)``."""
        if Y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        synth, discrete = getattr(self, "synth", None), getattr(self, "discrete", None)
        if synth is not None and discrete is None:
            raise ParameterValueError(
                f"{type(self).__name__}(synth={synth!r}) needs the targets' layout as data: pass "
                "discrete=discrete_layout(specs, columns) (synth_probe.models.discrete_layout; an empty dict when "
                "every target is continuous); synth only names the synth the model is for")
        targets = ParamTargets(discrete=discrete)  # the layout is data: no synth is opened
        y_in = Y
        X, y_arr = validate_data(self, X, Y, multi_output=True, y_numeric=True, dtype=self._X_dtype)
        targets.fit(y_in if isinstance(y_in, (pd.DataFrame, pd.Series)) else y_arr)
        self.targets_ = targets
        self.param_names_ = targets.names
        self.n_outputs_ = targets.n_outputs
        Yc, Yd = targets.transform(y_arr if not isinstance(y_in, pd.DataFrame) else y_in)
        return X, Yc, Yd

    def _prepare_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=self._X_dtype)

    def _check_random_state(self) -> np.random.Generator:
        """A numpy Generator from ``self.random_state`` (int, None or a RandomState/Generator)."""
        rs = getattr(self, "random_state", None)
        if isinstance(rs, np.random.Generator):
            return rs
        if isinstance(rs, np.random.RandomState):
            return np.random.default_rng(rs.randint(0, 2**31 - 1))
        if rs is None:
            return np.random.default_rng()
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            return np.random.default_rng(int(rs))
        raise ValueError(f"random_state must be None, an int or a numpy RandomState/Generator, got {rs!r}")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.two_d_array = True
        return tags
