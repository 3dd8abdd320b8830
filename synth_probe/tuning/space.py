"""The search space: model families, their hyperparameters and feature settings; the per-family pruner."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from synth_probe.errors import ParameterValueError, UnknownModelError
from synth_probe.pipeline import FAMILIES as FAMILY_TABLE
from synth_probe.pipeline import TORCH_FAMILIES, TUNED, FeatureSpec, default_features, family_class, resolve_family

__all__ = ["FAMILIES", "TORCH_FAMILIES", "TABULAR_FEATURES", "parse_families", "FamilyMedianPruner", "make_pruner",
           "suggest_features", "suggest_model", "feature_spec", "default_trial_params", "enqueue_default",
           "trial_spec", "Fixed", "default_reference_features"]

#: model families searched, in the order of the family choice
FAMILIES: tuple[str, ...] = TUNED
#: feature subsets a tabular family (gbm, knn) may see (trial parameter values)
TABULAR_FEATURES = ("handcrafted", "logmel_stats", "combined")


def parse_families(exclude: str | Sequence[str] | None = None,
                   only: str | Sequence[str] | None = None) -> list[str]:
    """Families to search: :data:`FAMILIES` (or ``only``) minus ``exclude``.

    Names may be given as comma-separated strings; ``autoencoder_mlp`` and ``ast``
    are accepted for ``autoencoder`` and ``transformer``.

    Raises
    ------
    UnknownModelError
        A name that is not a family (with the closest one).
    ParameterValueError
        When nothing is left to search.
    """
    def names(v: str | Sequence[str] | None) -> list[str]:
        if v is None:
            return []
        items = v.split(",") if isinstance(v, str) else list(v)
        out = []
        for raw in items:
            n = raw.strip().lower()
            if not n:
                continue
            try:
                out.append(resolve_family(n, FAMILIES))
            except UnknownModelError:
                raise UnknownModelError(raw.strip(), list(FAMILIES) + ["autoencoder_mlp"]) from None
        return out

    chosen = names(only) or list(FAMILIES)
    drop = set(names(exclude))
    left = [f for f in FAMILIES if f in chosen and f not in drop]
    if not left:
        raise ParameterValueError(f"no model family left to search (families {chosen}, excluded {sorted(drop)}); "
                                  f"families: {', '.join(FAMILIES)}")
    return left



class FamilyMedianPruner(optuna.pruners.BasePruner):
    """Median pruning among trials of the same model family.

    At each reported step, a trial is pruned when its best intermediate value so
    far is below the median of the best values that finished trials *of the
    same family* had reached by the same step (their last report at or before
    it, so families with different report steps still compare).

    Parameters
    ----------
    n_startup_trials : int, default=3
        Finished trials of a family needed before any trial of it is pruned.
    n_warmup_steps : int, default=10
        Steps (percent of the budget) before which no trial is pruned.
    family_key : str, default="family"
        The trial parameter that names the family.
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 10, family_key: str = "family") -> None:
        self.n_startup_trials = int(n_startup_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self.family_key = family_key

    @staticmethod
    def _best_until(values: Mapping[int, float], step: int) -> float | None:
        vals = [v for s, v in values.items() if s <= step and v is not None and math.isfinite(v)]
        return max(vals) if vals else None

    def prune(self, study: Any, trial: Any) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        family = trial.params.get(self.family_key)
        mine = self._best_until(trial.intermediate_values, step)
        if mine is None:
            return False
        others = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.params.get(self.family_key) == family and t.number != trial.number
        ]
        if sum(t.state == TrialState.COMPLETE for t in others) < self.n_startup_trials:
            return False
        refs = [v for v in (self._best_until(t.intermediate_values, step) for t in others) if v is not None]
        if len(refs) < self.n_startup_trials:
            return False
        return mine < float(np.median(refs))


def make_pruner(name: str) -> Any:
    """``"median"`` (:class:`FamilyMedianPruner`), ``"hyperband"`` or ``"none"``."""

    name = (name or "median").lower()
    if name == "median":
        return FamilyMedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=5, max_resource=100, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ParameterValueError(f"unknown pruner {name!r}; choose median, hyperband or none")



def suggest_features(trial: Any, family: str) -> dict[str, Any]:
    """Feature setting of a trial: ``{"kind", "n_mels", "hop", "pool"}`` (some keys per kind)."""
    if family in TORCH_FAMILIES:
        return {"kind": "mel", "n_mels": trial.suggest_categorical("mel_n_mels", [32, 64]),
                "hop": trial.suggest_categorical("mel_hop", [256, 512])}
    kind = trial.suggest_categorical(f"{family}.features", list(TABULAR_FEATURES))
    fs: dict[str, Any] = {"kind": kind}
    if kind != "handcrafted":
        fs["n_mels"] = trial.suggest_categorical("stats_n_mels", [32, 64, 128])
        fs["hop"] = trial.suggest_categorical("stats_hop", [256, 512])
        fs["pool"] = trial.suggest_categorical("stats_pool", [4, 8, 16])
    return fs


_CHANNELS = {"small": (8, 16, 32), "medium": (16, 32, 64), "large": (16, 32, 64, 128)}
_HIDDEN = {"128": (128,), "256": (256,), "256-128": (256, 128)}
_PATCH = {"8x8": (8, 8), "16x4": (16, 4), "4x16": (4, 16)}


def suggest_model(trial: Any, family: str, max_epochs: int, max_rounds: int) -> dict[str, Any]:
    """Constructor parameters of the family's estimator for this trial."""
    s = trial
    if family == "gbm":
        return dict(
            n_estimators=int(max_rounds),
            learning_rate=s.suggest_float("gbm.learning_rate", 0.01, 0.3, log=True),
            num_leaves=s.suggest_int("gbm.num_leaves", 7, 127, log=True),
            min_child_samples=s.suggest_int("gbm.min_child_samples", 5, 80, log=True),
            subsample=s.suggest_float("gbm.subsample", 0.5, 1.0),
            colsample_bytree=s.suggest_float("gbm.colsample_bytree", 0.2, 1.0),
        )
    if family == "knn":
        return dict(
            n_neighbors=s.suggest_int("knn.n_neighbors", 1, 40, log=True),
            weights=s.suggest_categorical("knn.weights", ["uniform", "distance"]),
            metric=s.suggest_categorical("knn.metric", ["euclidean", "manhattan", "cosine"]),
        )
    common = dict(
        lr=s.suggest_float(f"{family}.lr", 1e-4, 3e-3, log=True),
        weight_decay=s.suggest_float(f"{family}.weight_decay", 1e-6, 1e-1, log=True),
        batch_size=s.suggest_categorical(f"{family}.batch_size", [32, 64]),
        dropout=s.suggest_float(f"{family}.dropout", 0.0, 0.4),
        max_epochs=int(max_epochs),
        patience=max(2, int(max_epochs) // 5),
    )
    if family == "cnn":
        return dict(common,
                    channels=_CHANNELS[s.suggest_categorical("cnn.channels", list(_CHANNELS))],
                    depth=s.suggest_int("cnn.depth", 1, 2),
                    residual=s.suggest_categorical("cnn.residual", [False, True]),
                    hidden=s.suggest_categorical("cnn.hidden", [0, 64, 256]))
    if family == "autoencoder":
        return dict(common,
                    channels=_CHANNELS[s.suggest_categorical("autoencoder.channels", ["small", "medium"])],
                    latent_dim=s.suggest_categorical("autoencoder.latent_dim", [32, 64, 128]),
                    hidden=_HIDDEN[s.suggest_categorical("autoencoder.hidden", list(_HIDDEN))],
                    pretrain_epochs=max(1, int(max_epochs) // 2),
                    freeze_encoder=s.suggest_categorical("autoencoder.freeze_encoder", [False, True]))
    if family == "transformer":
        return dict(common,
                    patch_size=_PATCH[s.suggest_categorical("transformer.patch", list(_PATCH))],
                    d_model=s.suggest_categorical("transformer.d_model", [32, 64, 96]),
                    n_layers=s.suggest_int("transformer.n_layers", 1, 3),
                    n_heads=s.suggest_categorical("transformer.n_heads", [2, 4]),
                    dim_feedforward=s.suggest_categorical("transformer.dim_feedforward", [64, 128, 256]))
    raise UnknownModelError(family, list(FAMILIES))


class Fixed:
    """Replays a trial's ``params`` through the ``suggest_*`` calls (for the refit)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def _get(self, name: str, *a: Any, **k: Any) -> Any:
        return self.params[name]

    suggest_float = suggest_int = suggest_categorical = _get



def _default_feature_params(family: str) -> dict[str, Any]:
    """The features a family reads by default (:func:`synth_probe.pipeline.default_features`) as trial parameters."""
    spec = default_features(family)
    if spec.kind == "logmel":
        return {"mel_n_mels": spec.n_mels, "mel_hop": spec.hop}
    kind = {"logmel-stats": "logmel_stats"}.get(spec.kind, spec.kind)
    return {f"{family}.features": kind, "stats_n_mels": spec.n_mels, "stats_hop": spec.hop, "stats_pool": spec.pool}


def default_trial_params(family: str) -> dict[str, Any] | None:
    """The untuned default configuration of ``family`` as trial parameters, or None if the space lacks it.

    The family's constructor defaults (read from the estimator class, so they cannot drift) and its
    default features (the family table of :mod:`synth_probe.pipeline`, which ``train`` and the
    predictability suite read too); None for a family without ``default_knobs`` (the autoencoder and the
    transformer, whose defaults are not points of the search space).
    """
    knobs = FAMILY_TABLE[family].default_knobs
    if not knobs:
        return None
    defaults = family_class(family)().get_params(deep=False)
    out: dict[str, Any] = {"family": family, **_default_feature_params(family)}
    for k in knobs:
        v = defaults[k]
        if k == "channels":  # searched by name
            v = next(name for name, ch in _CHANNELS.items() if tuple(ch) == tuple(v))
        out[f"{family}.{k}"] = v
    return out


def enqueue_default(study: Any, families: Sequence[str]) -> bool:
    """Queue the untuned default configuration as the next trial of a study that has none yet.

    Returns
    -------
    queued : bool
        False when the study already has trials or the first family has no
        default configuration in the search space (autoencoder, transformer).
    """
    params = default_trial_params(list(families)[0])
    if study.trials or params is None:
        return False
    study.enqueue_trial(params, user_attrs={"untuned_default": True}, skip_if_exists=True)
    return True


def trial_spec(trial: Any, families: Sequence[str], max_epochs: int, max_rounds: int
               ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(family, constructor parameters, feature setting)`` of a trial (or of a :class:`Fixed` replay)."""
    family = trial.suggest_categorical("family", list(families))
    fs = suggest_features(trial, family)
    params = suggest_model(trial, family, max_epochs, max_rounds)
    return family, params, fs


def feature_spec(fs: Mapping[str, Any]) -> FeatureSpec:
    """The :class:`~synth_probe.pipeline.FeatureSpec` of a trial's feature setting (:func:`suggest_features`)."""
    kind = {"mel": "logmel", "logmel_stats": "logmel-stats"}.get(fs["kind"], fs["kind"])
    kw = {k: int(fs[k]) for k in ("n_mels", "hop", "pool") if k in fs}
    return FeatureSpec(kind, **kw)


def default_reference_features() -> dict[str, Any]:
    """The feature setting of the torch families' untuned default (the autoencoder's and transformer's reference)."""
    spec = default_features("cnn")
    return {"kind": "mel", "n_mels": spec.n_mels, "hop": spec.hop}


