"""``GBMEstimator``: one LightGBM model per parameter."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from synth_probe.errors import ParameterValueError
from synth_probe.models.base import LEVELS_DOC, SYNTH_PARAMS_DOC, FitProgress, SynthEstimator, nearest_level

__all__ = ["GBMEstimator"]


def _round_hook(callback: Any, budget: int) -> Any:
    """A LightGBM callback that passes each round's first validation score to ``callback`` as a FitProgress."""

    def hook(env: Any) -> None:
        if env.evaluation_result_list:
            value = float(env.evaluation_result_list[0][2])
            callback(FitProgress(step=env.iteration + 1, budget=budget, loss=value, unit="round"))

    return hook


class GBMEstimator(SynthEstimator):
    """Gradient-boosted trees (LightGBM), one model per target parameter.

    Continuous parameters get an ``LGBMRegressor`` (L2 loss), discrete ones an
    ``LGBMClassifier`` over the parameter's choices. A continuous parameter the data was drawn
    from a grid of (``levels``, e.g. the ``inversynth`` sampler's 8 or 16 levels) can be learned
    as InverSynth learns it, as a class over its levels: its prediction is then the mean of the
    levels under the class probabilities, and :meth:`predict_level_proba` gives the
    probabilities, which rank the levels for the mean percentile rank (a regression that
    hedges towards the middle of the range misranks the levels at its ends). With
    ``validation_fraction > 0``, a random part of the training set is held out
    and each model stops when its validation loss has not improved for
    ``early_stopping_rounds`` rounds.

    Parameters
    ----------
    n_estimators : int, default=500
        Maximum boosting rounds per parameter.
    learning_rate : float, default=0.05
    num_leaves : int, default=31
    min_child_samples : int, default=20
    subsample : float, default=0.8
        Row fraction per tree (bagging every round when < 1).
    colsample_bytree : float, default=0.8
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping; 0 disables it. Ignored below 20 samples.
    early_stopping_rounds : int, default=30
    n_jobs : int or None, default=None
        LightGBM threads (None: LightGBM's default).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the validation split and LightGBM.
    verbose : int, default=-1
        LightGBM's verbosity.
{levels}
{synth_params}

    Attributes
    ----------
    estimators_ : list
        Per target column (in ``param_names_`` order): a fitted ``LGBMRegressor``
        or ``LGBMClassifier``, or an int class when the training set held a single class.
    best_iterations_ : list of int
        Rounds used by each model.
    level_values_ : dict of str -> list of float
        The sorted levels of each continuous column learned as classes (empty without ``levels``).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 30,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = -1,
        levels: Mapping[str, Sequence[float]] | None = None,
        synth: str | None = None,
        discrete: Mapping[Any, Any] | None = None,
    ) -> None:
        self._store_init_args(locals())

    def _lgbm_params(self, seed: int) -> dict[str, Any]:
        return dict(
            n_estimators=int(self.n_estimators),
            learning_rate=float(self.learning_rate),
            num_leaves=int(self.num_leaves),
            min_child_samples=int(self.min_child_samples),
            subsample=float(self.subsample),
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=float(self.colsample_bytree),
            n_jobs=self.n_jobs,
            random_state=seed,
            verbose=self.verbose,
            deterministic=True,
            force_row_wise=True,
        )

    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray, callbacks: Sequence[Any] = ()) -> None:
        if not (0.0 <= float(self.validation_fraction) < 1.0):
            raise ParameterValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        rng = self._check_random_state()
        seed = int(rng.integers(0, 2**31 - 1))
        n = len(X)
        use_val = self.validation_fraction > 0 and n >= 20
        if use_val:
            perm = rng.permutation(n)
            n_val = max(1, int(round(self.validation_fraction * n)))
            val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        else:
            tr, val = np.arange(n), np.arange(0)
        params = self._lgbm_params(seed)
        hooks = [_round_hook(cb, int(self.n_estimators)) for cb in callbacks]
        models: dict[int, Any] = {}
        best: dict[int, int] = {}

        def fit_one(model, y):
            if use_val:
                model.fit(
                    X[tr], y[tr], eval_X=(X[val],), eval_y=(y[val],),
                    callbacks=[
                        lgb.early_stopping(int(self.early_stopping_rounds), verbose=False),
                        *hooks,
                    ],
                )
                return model, int(model.best_iteration_ or model.n_estimators)
            model.fit(X, y)
            return model, int(model.n_estimators)

        def fit_classes(y):
            classes = np.unique(y[tr])
            if len(classes) < 2:
                return int(np.bincount(y).argmax()), 0
            if use_val:  # LightGBM's multi-class eval needs validation labels it has seen
                keep = np.isin(y[val], classes)
                if not keep.all():
                    y = y.copy()
                    y[val[~keep]] = classes[0]
            return fit_one(lgb.LGBMClassifier(**params), y)

        self.level_values_ = self._grids()
        names = self.targets_.names
        for k, j in enumerate(self.targets_.continuous_index):
            grid = self.level_values_.get(str(names[j]))
            if grid is None:
                models[j], best[j] = fit_one(lgb.LGBMRegressor(**params), Yc[:, k])
            else:
                models[j], best[j] = fit_classes(nearest_level(Yc[:, k], grid))
        for k, j in enumerate(self.targets_.discrete_index):
            models[j], best[j] = fit_classes(Yd[:, k])
        order = range(self.targets_.n_outputs)
        self.estimators_ = [models[j] for j in order]
        self.best_iterations_ = [best[j] for j in order]

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(X)
        t = self.targets_
        Yc = np.empty((n, len(t.continuous_index)))
        grids = getattr(self, "level_values_", {})  # models saved before levels have none
        for k, j in enumerate(t.continuous_index):
            grid = grids.get(str(t.names[j]))
            if grid is None:
                Yc[:, k] = self.estimators_[j].predict(X)
            else:
                Yc[:, k] = _class_proba(self.estimators_[j], X, len(grid)) @ np.asarray(grid)
        probas = self._predict_discrete_proba(X)
        Yd = np.stack([p.argmax(axis=1) for p in probas], axis=1) if probas else np.zeros((n, 0), np.int64)
        return Yc, Yd

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        t = self.targets_
        return [_class_proba(self.estimators_[j], X, t.n_classes[k]) for k, j in enumerate(t.discrete_index)]

    def _predict_level_proba(self, X: np.ndarray) -> dict[str, np.ndarray]:
        t = self.targets_
        return {name: _class_proba(self.estimators_[t.continuous_index[k]], X, len(grid))
                for k, name, grid in self._level_columns()}

    def feature_importances(self) -> np.ndarray:
        """Split-gain importance, shape ``(n_outputs, n_features)`` (zeros for constant models)."""
        rows = []
        for m in self.estimators_:
            if isinstance(m, (int, np.integer)):
                rows.append(np.zeros(self.n_features_in_))
            else:
                rows.append(m.booster_.feature_importance(importance_type="gain"))
        return np.asarray(rows, dtype=np.float64)


def _class_proba(model: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n, n_classes)`` probabilities of a fitted classifier, or of a constant class (an int)."""
    proba = np.zeros((len(X), n_classes))
    if isinstance(model, (int, np.integer)):
        proba[:, int(model)] = 1.0
    else:
        proba[:, model.classes_.astype(int)] = model.predict_proba(X)
    return proba


GBMEstimator.__doc__ = GBMEstimator.__doc__.replace("{synth_params}", SYNTH_PARAMS_DOC).replace("{levels}", LEVELS_DOC)
