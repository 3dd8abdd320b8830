"""Measured predictability: train the estimator suite on one dataset and score every parameter.

:func:`run_predictability` is what ``synth-probe predictability`` (and ``make
predictability``) runs:

1. **Data.** A dataset from :func:`synth_probe.dataset.generate` (the default
   is ``data/<synth>-<sampler>-<n>``, built or completed on demand; generation
   is resumable).
2. **One split.** A seeded test split (``test_fraction`` of the rows,
   :func:`synth_probe.training.split_indices`) is held out of every
   model; each model holds out its own seeded early-stopping validation
   fraction of the training rows.
3. **Features once.** The tabular features (handcrafted + 8-segment log-mel
   statistics, :func:`synth_probe.pipeline.feature_step` ``"combined"``)
   feed ``mean``, ``knn`` and ``gbm``; a 64-band log-mel spectrogram (hop 512:
   64 x 65 for 1.5 s at 22.05 kHz) feeds the torch models: each family's default
   features in :data:`synth_probe.pipeline.FAMILIES`, which ``train`` and ``tune`` read too. Features are
   computed in chunks (memory holds one chunk of audio) and cached on disk.
4. **Train and score.** Each model is fit on the training rows and scored per
   parameter on the test rows (:func:`synth_probe.metrics.parameter_report`).
   Results are saved after every model, so an interrupted run keeps what it
   finished and a rerun with the same settings skips finished models.
5. **Audio.** The predictions of the first test rows are re-rendered and
   compared with the targets (:func:`synth_probe.metrics.audio_report`), beside
   the mean patch; a few (target, prediction, mean patch) clips of the best
   model are kept for the report's players.

The results go to ``predictability.json`` (and the clips to
``predictability_media.npz``) in the reports folder, and
:mod:`synth_probe.report.predictability_section` turns them into the measured
part of ``predictability.html``.

Skill, the one number per (parameter, model) that compares continuous and
discrete parameters: R² for a continuous parameter, chance-corrected accuracy
``(accuracy - 1/K) / (1 - 1/K)`` for a discrete one with K choices; 0 is
chance (or the mean), 1 is perfect.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import DatasetError, ParameterValueError, UnknownModelError
from synth_probe.features.cache import load_array, save_array
from synth_probe.fileio import read_json
from synth_probe.pipeline import FAMILIES, SUITE as PIPELINE_SUITE, TORCH_FAMILIES, build_estimator, feature_step
from synth_probe.pipeline import input_shape as step_input_shape
from synth_probe.training import dataset_context, select_params, split_indices, target_layout

__all__ = [
    "SUITE",
    "TORCH_MODELS",
    "PredictabilityConfig",
    "default_dataset_path",
    "ensure_dataset",
    "skill",
    "run_predictability",
    "suite_feature_steps",
    "compute_features",
    "figure_checks",
    "distinct_shares",
    "ensemble",
    "ENSEMBLE_MEMBERS",
    "PREDICTIONS_NAME",
    "load_saved_run",
    "load_run_dataset",
    "saved_ensemble",
    "IDENTIFIABLE_SHARE",
    "RESULTS_NAME",
    "MEDIA_NAME",
]

#: the estimator suite, in training order, and its spectrogram models (the family table of synth_probe.pipeline)
SUITE: tuple[str, ...] = PIPELINE_SUITE
TORCH_MODELS: frozenset[str] = TORCH_FAMILIES
RESULTS_NAME = "predictability.json"
#: every model's full test predictions, kept beside the results so that a rerun can rebuild the ensemble
PREDICTIONS_NAME = "predictability_predictions.npz"
#: the models the ensemble averages (those of a run that are among them)
ENSEMBLE_MEMBERS: tuple[str, ...] = ("gbm", "cnn", "autoencoder", "transformer")
MEDIA_NAME = "predictability_media.npz"
#: the parameters the issue's figures name (TAL-NoiseMaker names)
FIGURE_PARAMS = {"cutoff": 0.8, "ampattack": 0.9, "amprelease": 0.9}
#: bumped when a metric changes meaning, so that a rerun refits instead of keeping old scores
#: (2: MPR of gridded parameters ranks the grid's own levels)
METRICS_VERSION = 2


@dataclass
class PredictabilityConfig:
    """Settings of one predictability run.

    Parameters
    ----------
    models : tuple of str
        Model names from :data:`SUITE` (families of :data:`synth_probe.pipeline.FAMILIES`).
    params : str
        ``"all"`` (every parameter that varies in the dataset) or ``"A,B,..."``.
    test_fraction : float
        Held-out test rows.
    seed : int
        Seeds the split and every model.
    epochs : int
        ``max_epochs`` of the torch models (and the autoencoder's pretraining
        epochs are ``max(1, epochs // 3)``); early stopping may end them sooner.
    patience : int
        Early-stopping patience of the torch models (epochs).
    jobs : int
        Worker processes for features and rendering, threads for LightGBM/kNN.
    audio : int
        Test rows re-rendered for the audio-domain metrics (0: none).
    pairs : int
        Listenable (target, prediction, mean patch) triples of the best model.
    overrides : dict
        ``{model: {hyperparameter: value}}`` on top of the suite's defaults.
    chunk : int
        Audio rows per feature chunk (memory holds one chunk).
    """

    models: tuple[str, ...] = SUITE
    params: str = "all"
    test_fraction: float = 0.1
    seed: int = 0
    epochs: int = 20
    patience: int = 4
    jobs: int = 2
    audio: int = 24
    pairs: int = 4
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunk: int = 1000

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        if not self.models:
            raise ParameterValueError(f"no models given; choose from {', '.join(FAMILIES)}")
        for m in self.models:
            if m not in FAMILIES:
                raise UnknownModelError(m, list(FAMILIES))
        if len(set(self.models)) != len(self.models):
            raise ParameterValueError(f"a model is listed twice: {','.join(self.models)}")
        if not 0.0 < float(self.test_fraction) < 1.0:
            raise ParameterValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        for name in ("epochs", "patience", "jobs", "chunk"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or int(v) < 1:
                raise ParameterValueError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("audio", "pairs", "seed"):
            if int(getattr(self, name)) < 0:
                raise ParameterValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for m in self.overrides:
            if m not in FAMILIES:
                raise UnknownModelError(m, list(FAMILIES))

    def suite_overrides(self, model: str) -> dict[str, Any]:
        """Hyperparameters this run gives ``model``: the suite's sizing, then :attr:`overrides`."""
        base: dict[str, Any] = {}
        if model in TORCH_MODELS:
            base.update(max_epochs=int(self.epochs), patience=int(self.patience))
        if model == "autoencoder":
            base["pretrain_epochs"] = max(1, int(self.epochs) // 3)
        if model == "gbm":
            # sized for the suite's budget: a 49-class tune parameter grows 49 trees a round, so fewer,
            # faster-learning rounds than the class default (500 at 0.05) with early stopping; on the timbral
            # 20k rows this fits all 43 parameters in about 5 minutes on 2 cores. 120 rounds of 15 leaves at
            # 0.15, the suite's setting before, took 2 min and on the same features scored up to 0.03 lower
            # (cutoff R² 0.575 against 0.593; resonance, osc 3 volume, master tune) and 0.005 lower in mean skill
            base.update(n_estimators=600, learning_rate=0.08, num_leaves=31, colsample_bytree=0.5,
                        early_stopping_rounds=20)
        base.update(self.overrides.get(model, {}))
        return base


def default_dataset_path(synth: str, sampler: str, n: int, root: str | os.PathLike = "data") -> Path:
    """``data/<synth>-<sampler>-<n>`` with ``n`` written as ``20k`` when a multiple of 1000."""
    name = Path(str(synth)).stem.lower().replace(" ", "-")
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return Path(root) / f"{name}-{sampler}-{size}"


def ensure_dataset(
    synth: str,
    path: str | os.PathLike,
    n: int,
    *,
    sampler: str = "timbral",
    seed: int = 0,
    jobs: int = 2,
    sample_rate: int | None = None,
    render_length: float | None = None,
    note_length: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Generate (or complete) the dataset at ``path`` and load it.

    The render settings are the sampler's own (``inversynth``: 16,384 Hz, 1 s)
    or 22,050 Hz, a 1 s note in 1.5 s; the arguments override them. A complete
    dataset is only checked, not re-rendered.

    Returns
    -------
    Dataset
    """
    from synth_probe.dataset import generate, load_dataset
    from synth_probe.sampling import sampler_render_defaults
    from synth_probe.synths.base import RenderSettings
    from synth_probe.synths.registry import get_synth

    base = sampler_render_defaults(sampler) or RenderSettings(sample_rate=22050)
    nl = note_length if note_length is not None else base.note_length
    settings = RenderSettings(
        note=base.note, velocity=base.velocity, note_length=nl,
        render_length=render_length if render_length is not None else max(base.render_length, nl),
        sample_rate=sample_rate if sample_rate is not None else base.sample_rate,
    )
    s = get_synth(synth)
    t0 = time.perf_counter()
    try:
        result = generate(s, path, n, sampler=sampler, seed=seed, settings=settings, jobs=jobs, progress=progress)
    finally:
        s.close()
    if not result.ok:
        raise DatasetError(f"generating {path} failed: {result.summary()}")
    if log:
        log(f"dataset {path}: {result.summary()} ({time.perf_counter() - t0:.0f} s)")
    return load_dataset(path, verify=False)  # generate has just checked every shard's sha256 or written it


def skill(row: Mapping[str, Any]) -> float:
    """R² (continuous) or chance-corrected accuracy (discrete) of one parameter_report row; NaN if undefined."""
    if row.get("kind") == "discrete":
        acc, chance = row.get("accuracy"), row.get("chance_accuracy")
        if acc is None or chance is None or not np.isfinite(acc) or chance >= 1:
            return float("nan")
        return float((acc - chance) / (1.0 - chance))
    r2 = row.get("r2")
    return float(r2) if r2 is not None and np.isfinite(r2) else float("nan")


# ----------------------------------------------------------------------------- features
def suite_feature_steps(sample_rate: int, note_length: float | None, jobs: int) -> dict[str, Any]:
    """The suite's two feature steps: the tabular families' default features and the torch families'."""
    kw = dict(sample_rate=sample_rate, note_length=note_length)
    return {"tabular": feature_step(FAMILIES["gbm"].features, jobs=jobs, **kw),
            "logmel": feature_step(FAMILIES["cnn"].features, jobs=1, **kw)}


def _feature_key(ds: Any, name: str, step: Any, rows: np.ndarray) -> str:
    from synth_probe.features import DESCRIPTORS_VERSION, uses_handcrafted

    h = hashlib.sha256()
    h.update(str(ds.meta.get("identity_sha256")).encode())
    h.update(name.encode())
    if uses_handcrafted(step):  # a new descriptor set must not be served an old one's columns
        h.update(f"descriptors-v{DESCRIPTORS_VERSION}".encode())
    h.update(repr(sorted((k, repr(v)) for k, v in step.get_params(deep=True).items()
                         if not k.endswith("n_jobs") and "cache_dir" not in k)).encode())
    h.update(np.asarray(ds.params.index.to_numpy()[rows], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def compute_features(
    ds: Any,
    name: str,
    step: Any,
    rows: np.ndarray,
    *,
    chunk: int = 1000,
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Features of dataset ``rows`` (positions), chunk by chunk, cached under ``cache_dir``.

    Returns
    -------
    F : np.ndarray [shape=(len(rows), n_features), dtype=float32]
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{name}-{_feature_key(ds, name, step, rows)}.npy"
        F = load_array(path)  # allow_pickle=False: a planted or torn file is recomputed, never unpickled
        if F is not None and F.ndim == 2 and F.shape[0] == len(rows):
            if log:
                log(f"features {name}: {F.shape[1]} per row, from cache {path}")
            return F
    t0 = time.perf_counter()
    parts = []
    fitted = False
    for a in range(0, len(rows), chunk):
        X = np.asarray(ds.audio[rows[a:a + chunk]], dtype=np.float32)
        if not fitted:
            step.fit(X)
            fitted = True
        parts.append(np.asarray(step.transform(X), dtype=np.float32))
        if log and len(rows) > chunk:
            done = min(a + chunk, len(rows))
            log(f"features {name}: {done}/{len(rows)} rows ({done / (time.perf_counter() - t0):.0f} rows/s)")
    F = np.concatenate(parts, axis=0)
    if path is not None:
        save_array(path, F)
    if log:
        log(f"features {name}: {F.shape[1]} per row, {len(rows)} rows in {time.perf_counter() - t0:.1f} s")
    return F


# ----------------------------------------------------------------------------- results file
def _json_clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.ndarray):
        return _json_clean(obj.tolist())
    return obj


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_clean(data), indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def _fingerprint(ds: Any, config: PredictabilityConfig, columns: Sequence[str], n: int) -> str:
    d = {"data": ds.meta.get("identity_sha256"), "n": n, "columns": list(columns),
         "test_fraction": config.test_fraction, "seed": config.seed, "metrics": METRICS_VERSION}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _model_fingerprint(config: PredictabilityConfig, model: str) -> str:
    """Hyperparameters of ``model`` in this run and, for the models on the tabular features, the version of
    the handcrafted descriptors: a rerun keeps a finished model only when both are unchanged."""
    from synth_probe.features import DESCRIPTORS_VERSION

    d: dict[str, Any] = dict(config.suite_overrides(model))
    if model not in TORCH_MODELS:
        d["_descriptors_version"] = DESCRIPTORS_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=repr).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- the run
def _fit_one(
    model: str,
    config: PredictabilityConfig,
    *,
    synth: str | None,
    sample_rate: int,
    note_length: float | None,
    n_samples: int,
    input_shape: tuple[int, int] | None,
    F_train: np.ndarray,
    Y_train: pd.DataFrame,
    F_test: np.ndarray,
    Y_test: pd.DataFrame,
    log: Callable[[str], None],
    levels: Mapping[str, Sequence[float]] | None = None,
    discrete: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, np.ndarray] | None]:
    est = build_estimator(model, input_shape=input_shape if model in TORCH_MODELS else None,
                          discrete=discrete, synth=synth, overrides=config.suite_overrides(model),
                          seed=config.seed, jobs=config.jobs)
    log(f"{model}: fitting {type(est).__name__} on {len(F_train)} rows x {F_train.shape[1]} features, "
        f"{Y_train.shape[1]} parameters")
    t0 = time.perf_counter()
    est.fit(F_train, Y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = est.predict(F_test)
    predict_s = time.perf_counter() - t0
    if not isinstance(pred, pd.DataFrame):
        pred = pd.DataFrame(np.asarray(pred).reshape(len(F_test), -1), columns=list(Y_test.columns))
    proba = None
    if hasattr(est, "predict_discrete_proba"):
        try:
            proba = est.predict_discrete_proba(F_test)
        except NotImplementedError:
            proba = None
    entry: dict[str, Any] = {
        "model": model, "estimator": type(est).__name__,
        "hyperparameters": {k: repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v
                            for k, v in est.get_params(deep=False).items()},
        "fingerprint": _model_fingerprint(config, model),
        "fit_seconds": fit_s, "predict_seconds": predict_s, "predict_rows_per_s": len(F_test) / max(predict_s, 1e-9),
        "n_train": len(F_train), "n_test": len(F_test), **_scores(Y_test, pred, synth, proba, levels),
    }
    if model in TORCH_MODELS:
        entry["history"] = [dict(h) for h in getattr(est, "history_", [])]
        entry["samples_per_s"] = float(getattr(est, "train_samples_per_s_", float("nan")))
        entry["best_epoch"] = int(getattr(est, "best_epoch_", 0))
        entry["n_epochs"] = int(getattr(est, "n_epochs_", 0))
        if hasattr(est, "pretrain_history_"):
            entry["pretrain_history"] = [dict(h) for h in est.pretrain_history_]
            entry["pretrain_samples_per_s"] = float(getattr(est, "pretrain_samples_per_s_", float("nan")))
        entry["n_parameters"] = int(sum(p.numel() for p in est.module_.parameters()))
    sps = f", {entry['samples_per_s']:.0f} samples/s over {entry['n_epochs']} epochs" if model in TORCH_MODELS else ""
    log(f"{model}: fit {fit_s:.1f} s{sps}; mean MPR {entry['mean_mpr']:.1f}, mean skill "
        f"{entry['mean_skill'] if entry['mean_skill'] is None else round(entry['mean_skill'], 3)}")
    return entry, pred, proba


def _scores(Y_test: pd.DataFrame, pred: pd.DataFrame, synth: str | None, proba: Mapping[str, np.ndarray] | None,
            levels: Mapping[str, Sequence[float]] | None) -> dict[str, Any]:
    """Per-parameter metrics of one set of test predictions, and their means."""
    from synth_probe.metrics import parameter_report

    with warnings.catch_warnings():
        # balanced accuracy warns when a rare class of the test rows was never predicted; expected here
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        report = parameter_report(Y_test, pred, synth, proba=proba, levels=levels)
    rows = json.loads(report.reset_index().to_json(orient="records"))
    for r in rows:
        r["skill"] = skill(r)
    finite = [r["skill"] for r in rows if r["skill"] is not None and np.isfinite(r["skill"])]
    return {"parameters": rows, "mean_mpr": float(report.mpr.mean()),
            "mean_skill": float(np.mean(finite)) if finite else None}


def ensemble(preds: Mapping[str, pd.DataFrame], probas: Mapping[str, Mapping[str, np.ndarray] | None],
             synth: str | None, Y: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[str]]:
    """The equal-weight ensemble of the :data:`ENSEMBLE_MEMBERS` in ``preds``.

    Continuous parameters: the mean of the members' predictions. Discrete ones: the mean of
    their class probabilities, and the most probable choice (a member without probabilities
    counts as certain of its predicted choice).

    Parameters
    ----------
    preds : mapping of model -> DataFrame [shape=(n_test, n_params)]
        Full test predictions (unit values).
    probas : mapping of model -> (mapping of parameter -> array [shape=(n_test, n_choices)]) or None
    synth : str or None
        Whose specs mark the discrete parameters.
    Y : DataFrame
        The test targets (for the columns and the choices).

    Returns
    -------
    pred : DataFrame
    proba : dict of str -> np.ndarray
    members : list of str
        Empty (and the other two empty too) when fewer than two members are present.
    """
    from synth_probe.models.base import ParamTargets

    members = [m for m in ENSEMBLE_MEMBERS if m in preds and len(preds[m]) == len(Y)]
    if len(members) < 2:
        return pd.DataFrame(), {}, []
    cols = list(Y.columns)
    out = sum(preds[m][cols].to_numpy(dtype=np.float64) for m in members) / len(members)
    targets = ParamTargets(synth=synth).fit(Y)
    proba: dict[str, np.ndarray] = {}
    for k, j in enumerate(targets.discrete_index):
        name, cv = cols[j], np.asarray(targets.choice_values[k], dtype=np.float64)
        acc = np.zeros((len(Y), len(cv)))
        for m in members:
            pm = (probas.get(m) or {}).get(name)
            if pm is None:  # hard classes only: all the weight on the predicted choice
                pm = np.zeros_like(acc)
                pm[np.arange(len(Y)), np.abs(preds[m][name].to_numpy()[:, None] - cv[None, :]).argmin(axis=1)] = 1.0
            acc += pm
        proba[name] = acc / len(members)
        out[:, j] = cv[proba[name].argmax(axis=1)]
    return pd.DataFrame(out, columns=cols), proba, members


def _best_per_parameter(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for name, entry in models.items():
        if name == "mean":
            continue
        for r in entry["parameters"]:
            s = r.get("skill")
            key = (s if s is not None else -math.inf, r.get("mpr") or 0.0)
            cur = best.get(r["parameter"])
            if cur is None or key > cur["_key"]:
                best[r["parameter"]] = {"model": name, "skill": s, "mpr": r.get("mpr"), "_key": key}
    for b in best.values():
        b.pop("_key")
    return best


#: share of sampled patches in which a parameter must be distinct (audible, no twin found) for the in-context check
IDENTIFIABLE_SHARE = 0.5


def distinct_shares(identifiability: Mapping[str, Any] | None, results: Mapping[str, Any],
                    key: str = "distinct") -> dict[str, float]:
    """Parameter -> distinct share (or another summary ``key``, e.g. ``resolvable_r2``), when
    ``identifiability`` probed the sampler ``results`` were trained on."""
    if not identifiability or identifiability.get("config", {}).get("sampler") != results.get("sampler"):
        return {}
    return {r["parameter"]: r[key] if isinstance(r[key], dict) else float(r[key])
            for r in identifiability.get("summary", []) if r.get(key) is not None}


def figure_checks(results: Mapping[str, Any], sensitivity: Mapping[str, Any] | None,
                  identifiability: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The issue's figures that these results can answer, each with the number measured and pass/fail.

    Parameters
    ----------
    results : dict
        The predictability results (``predictability.json``).
    sensitivity : dict or None
        ``sensitivity.json`` (for "strong" parameters); without it the checks
        that need classes are left out.
    identifiability : dict or None
        ``identifiability.json`` of the same sampler: each strong parameter the
        CNN does not beat MeanBaseline on is annotated with its distinct share,
        and a second check counts only the strong parameters that are distinct
        in at least half of the sampled patches (:data:`IDENTIFIABLE_SHARE`).

    Returns
    -------
    checks : list of dict
        ``name``, ``target``, ``value`` (text), ``ok`` (bool or None when not measurable).
    """
    models = results.get("models", {})
    checks: list[dict[str, Any]] = []
    if not models:
        return checks
    by = {m: {r["parameter"]: r for r in e["parameters"]} for m, e in models.items()}
    learned = [m for m in models if m != "mean"]
    distinct = distinct_shares(identifiability, results)
    resolvable_r2 = distinct_shares(identifiability, results, "resolvable_r2")
    resolvable_at = distinct_shares(identifiability, results, "resolvable_r2_at")

    def r2_resolvable(p: str) -> str:
        c = resolvable_r2.get(p)
        if c is None:
            return ""
        looser = "".join(f", {float(v):.2f} at {t} dB" for t, v in sorted(resolvable_at.get(p, {}).items(),
                                                                           key=lambda kv: float(kv[0]))[:2])
        return f" [resolvable in context ≈ {c:.2f}{looser}]"

    def mpr_resolvable(params: Sequence[str]) -> str:
        # rough: a model ranks perfectly where the sound is distinct and at chance (50) elsewhere
        ds = [distinct[p] for p in params if p in distinct]
        return f" [resolvable in context ≈ {50 + 50 * float(np.mean(ds)):.1f}]" if ds and len(ds) == len(params) else ""

    if learned:
        best_m = max(learned, key=lambda m: models[m].get("mean_mpr") or 0.0)
        v = models[best_m]["mean_mpr"]
        checks.append({"name": "best model mean MPR", "target": "≥ 90 (InverSynth: 77.9)",
                       "value": f"{v:.1f} ({best_m})" + mpr_resolvable(list(by[best_m])), "ok": v >= 90})
        cut = [(by[m]["cutoff"]["mpr"], m) for m in learned if "cutoff" in by[m]]
        if cut:
            v, m = max(cut)
            checks.append({"name": "best MPR on cutoff", "target": "≥ 99 (InverSynth: 99.7)",
                           "value": f"{v:.1f} ({m})" + mpr_resolvable(["cutoff"]), "ok": v >= 99})
        for p, target in FIGURE_PARAMS.items():
            vals = [(by[m][p]["r2"], m) for m in learned if p in by[m] and by[m][p].get("r2") is not None]
            if vals:
                v, m = max(vals)
                checks.append({"name": f"best R² on {p}", "target": f"≥ {target}",
                               "value": f"{v:.3f} ({m})" + r2_resolvable(p), "ok": v >= target})
    strong = None
    if sensitivity:
        strong = {p["name"] for p in sensitivity.get("params", []) if p.get("classification") == "strong"}
    if strong is not None and "cnn" in by and "mean" in by:
        common = sorted(strong & set(by["cnn"]) & set(by["mean"]))
        losers = []
        for p in common:
            c, b = by["cnn"][p], by["mean"][p]
            if c["kind"] == "continuous":
                ok = (c.get("mae") or 1.0) < (b.get("mae") or 0.0)
            else:
                ok = (c.get("accuracy") or 0.0) > (b.get("accuracy") or 0.0)
            if not ok:
                losers.append(p)

        def named(ps: list[str]) -> str:
            return ", ".join(p + (f" [distinct {100 * distinct[p]:.0f} %]" if p in distinct else "") for p in ps)

        checks.append({"name": "CNN beats MeanBaseline on every strong parameter",
                       "target": f"all {len(common)} strong parameters in the targets",
                       "value": f"{len(common) - len(losers)}/{len(common)}" + (f" (not: {named(losers)})" if losers else ""),
                       "ok": not losers if common else None})
        if distinct:
            ident = [p for p in common if distinct.get(p, 0.0) >= IDENTIFIABLE_SHARE]
            lost = [p for p in losers if p in ident]
            checks.append({
                "name": "… on every strong parameter that is distinct in context",
                "target": f"the {len(ident)} strong parameters distinct in ≥ {100 * IDENTIFIABLE_SHARE:.0f} % of the "
                          "sampled patches (identifiability.json)",
                "value": f"{len(ident) - len(lost)}/{len(ident)}" + (f" (not: {named(lost)})" if lost else ""),
                "ok": not lost if ident else None})
    if strong is not None and learned:
        disc = sorted({p for m in learned for p, r in by[m].items() if r["kind"] == "discrete"} & strong)
        short = []
        for p in disc:
            best = max((by[m][p]["accuracy"] or 0.0) for m in learned if p in by[m])
            chance = by[learned[0]][p]["chance_accuracy"]
            if best < 2 * chance:
                # in context, a model can at best be right where the sound tells the choice apart and guess
                # elsewhere: accuracy ≈ distinct + (1 - distinct) * chance (an estimate: see identifiability)
                d = distinct.get(p)
                resolvable = "" if d is None else f" [resolvable ≈ {d + (1 - d) * chance:.2f}]"
                short.append(f"{p} {best:.2f} < 2×{chance:.2f}{resolvable}")
        if disc:
            checks.append({"name": "strong discrete parameters ≥ 2× chance accuracy", "target": f"all {len(disc)}",
                           "value": f"{len(disc) - len(short)}/{len(disc)}" + (f" (not: {'; '.join(short)})" if short else ""),
                           "ok": not short})
    if "cnn" in models and models["cnn"].get("samples_per_s") is not None:
        v = models["cnn"]["samples_per_s"]
        checks.append({"name": "CNN training speed", "target": "≥ 500 samples/s on 2 CPU cores",
                       "value": f"{v:.0f} samples/s (load average {results.get('load_average', float('nan')):.1f} at the start)",
                       "ok": v >= 500})
    return checks


def run_predictability(
    ds: Any,
    config: PredictabilityConfig | None = None,
    *,
    out: str | os.PathLike = "reports",
    synth: str | None = None,
    cache_dir: str | os.PathLike | None = ".cache/features",
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    write_report: bool = True,
) -> dict[str, Any]:
    """Train and score the suite on ``ds``; write ``predictability.json`` and the report part.

    Parameters
    ----------
    ds : Dataset
        From :func:`synth_probe.dataset.load_dataset`.
    config : PredictabilityConfig, optional
    out : path
        Reports folder.
    synth : str, optional
        Synth name when the dataset does not record it.
    cache_dir : path or None
        Feature cache (None: no cache).
    resume : bool
        Keep the results of models already finished by an earlier run with the
        same dataset, split and hyperparameters.
    log : callable, optional
        Receives progress lines (default: stderr).
    write_report : bool
        Also write the report part and assemble ``predictability.html``.

    Returns
    -------
    results : dict
        What ``predictability.json`` holds.
    """
    from synth_probe.metrics import grid_levels

    config = config or PredictabilityConfig()
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out)
    t_start = time.perf_counter()
    ctx = dataset_context(ds)
    synth = synth or ctx["synth"]
    settings = ctx["settings"]
    if settings is None:
        raise DatasetError("the dataset does not record its render settings")
    sr = int(settings.sample_rate)
    n = len(ds.params)
    if n < 20:
        raise ParameterValueError(f"the dataset has {n} rows; the predictability study needs at least 20")
    columns = select_params(ds.params, config.params)
    train_idx, test_idx = split_indices(n, float(config.test_fraction), int(config.seed))
    fp = _fingerprint(ds, config, columns, n)
    jpath = out / RESULTS_NAME
    old: dict[str, Any] = {}
    if resume and jpath.exists():
        try:
            prev = read_json(jpath, error=DatasetError, what="earlier predictability results")
            if prev.get("fingerprint") == fp and isinstance(prev.get("models"), dict):
                old = prev["models"]
        except DatasetError:  # unreadable: every model is trained again
            old = {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results: dict[str, Any] = {
        "format": "synth_probe.predictability", "version": 1, "fingerprint": fp,
        "synth": synth, "data": str(ds.path), "n": n, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
        "sampler": (ds.meta.get("sampling") or {}).get("sampler"),
        "render": asdict(settings) if hasattr(settings, "__dataclass_fields__") else dict(ds.meta.get("render", {})),
        "columns": columns, "config": asdict(config), "models": {}, "complete": False,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": load, "cpus": os.cpu_count(),
        "command": " ".join(sys.argv), "versions": _versions(),
    }
    results["config"]["models"] = list(config.models)
    Y = ds.params[columns].reset_index(drop=True)
    Y_train, Y_test = Y.iloc[train_idx].reset_index(drop=True), Y.iloc[test_idx].reset_index(drop=True)
    # parameters the sampler drew from a grid are ranked on that grid for the MPR (the whole table sees every level)
    levels = grid_levels(Y)
    # recorded for the report: the grids that change the MPR (continuous grids, subsets of a discrete parameter's
    # choices), not discrete parameters drawn over all their choices
    n_choices = {sp.name: sp.n_choices for sp in getattr(ds, "specs", []) if sp.is_discrete}
    results["mpr_levels"] = {c: len(v) for c, v in levels.items() if len(v) < n_choices.get(c, len(v) + 1)}
    log(f"predictability: {synth}, {n} rows ({len(train_idx)} train, {len(test_idx)} test), "
        f"{len(columns)} parameters, models {','.join(config.models)}; load average {load:.1f}")

    steps = suite_feature_steps(sr, settings.note_length, int(config.jobs))
    need = {("logmel" if m in TORCH_MODELS else "tabular") for m in config.models
            if not (m in old and old[m].get("fingerprint") == _model_fingerprint(config, m))}
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    t_feat = time.perf_counter()
    for name in ("tabular", "logmel"):
        if name in need:
            F = compute_features(ds, name, steps[name], np.concatenate([train_idx, test_idx]), chunk=int(config.chunk),
                                 cache_dir=cache_dir, log=log)
            feats[name] = (F[:len(train_idx)], F[len(train_idx):])
    results["feature_seconds"] = time.perf_counter() - t_feat
    lm = steps["logmel"]
    input_shape = step_input_shape(lm, settings.n_samples)
    layout = target_layout(columns, synth=synth) if synth else target_layout(columns, specs=ds.specs)
    results["features"] = {"tabular": "handcrafted + log-mel (64 bands) in 8 time segments",
                           "logmel": f"log-mel {input_shape[0]} bands x {input_shape[1]} frames (n_fft {lm.n_fft}, hop {lm.hop_length})"}

    preds: dict[str, pd.DataFrame] = {}
    probas: dict[str, dict[str, np.ndarray] | None] = {}
    saved = _load_predictions(out / PREDICTIONS_NAME, fp, {m: e.get("fingerprint") for m, e in old.items()})
    interrupted = False
    try:
        for model in config.models:
            if model in old and old[model].get("fingerprint") == _model_fingerprint(config, model) and "test_predictions_head" in old[model]:
                results["models"][model] = old[model]
                if model in saved:  # the full test predictions, for the ensemble
                    preds[model], probas[model] = pd.DataFrame(saved[model][0], columns=columns), saved[model][1]
                else:
                    preds[model] = pd.DataFrame(old[model]["test_predictions_head"], columns=columns)
                log(f"{model}: kept from the earlier run (same data, split and hyperparameters)")
                continue
            fname = "logmel" if model in TORCH_MODELS else "tabular"
            if fname not in feats:
                F = compute_features(ds, fname, steps[fname], np.concatenate([train_idx, test_idx]),
                                     chunk=int(config.chunk), cache_dir=cache_dir, log=log)
                feats[fname] = (F[:len(train_idx)], F[len(train_idx):])
            F_tr, F_te = feats[fname]
            entry, pred, proba = _fit_one(
                model, config, synth=synth, sample_rate=sr, note_length=settings.note_length,
                n_samples=settings.n_samples, input_shape=input_shape, F_train=F_tr, Y_train=Y_train,
                F_test=F_te, Y_test=Y_test, log=log, levels=levels, discrete=layout,
            )
            k = min(int(config.audio), len(test_idx))
            entry["test_predictions_head"] = pred.iloc[:max(k, int(config.pairs))].to_numpy().tolist()
            entry["features"] = fname
            results["models"][model] = entry
            preds[model], probas[model] = pred, proba
            _save_predictions(out / PREDICTIONS_NAME, fp, preds, probas,
                              {m: results["models"][m]["fingerprint"] for m in preds
                               if m in results["models"] and len(preds[m]) == len(Y_test)})
            results["seconds"] = time.perf_counter() - t_start
            _write_json(jpath, results)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: keeping the models finished so far")

    results["models"].pop("ensemble", None)
    if not interrupted:
        e_pred, e_proba, members = ensemble(preds, probas, synth, Y_test)
        if members:
            entry = {"model": "ensemble", "estimator": "mean of " + ", ".join(members), "members": members,
                     "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
                     **_scores(Y_test, e_pred, synth, e_proba, levels)}
            k = min(int(config.audio), len(test_idx))
            entry["test_predictions_head"] = e_pred.iloc[:max(k, int(config.pairs))].to_numpy().tolist()
            results["models"]["ensemble"] = entry
            preds["ensemble"] = e_pred
            log(f"ensemble of {', '.join(members)}: mean MPR {entry['mean_mpr']:.1f}, mean skill "
                f"{entry['mean_skill'] if entry['mean_skill'] is None else round(entry['mean_skill'], 3)}")
        elif sum(m in preds for m in ENSEMBLE_MEMBERS) >= 2:
            log("ensemble: left out, the kept models' full test predictions are not in "
                f"{out / PREDICTIONS_NAME} (an older run); --fresh retrains them")

    results["best"] = _best_per_parameter(results["models"])
    # ---- audio-domain metrics on the first test rows
    k = min(int(config.audio), len(test_idx))
    media: dict[str, np.ndarray] = {}
    if k > 0 and results["models"] and not interrupted and synth is not None:
        try:
            results["audio"], media = _audio_study(ds, synth, settings, columns, test_idx[:k], preds, results, config, log)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted during the audio comparison")
    results["complete"] = not interrupted and all(m in results["models"] for m in config.models)
    results["seconds"] = time.perf_counter() - t_start
    _write_json(jpath, results)
    if media:
        tmp = out / (MEDIA_NAME + ".tmp.npz")
        np.savez_compressed(tmp, **media)
        os.replace(tmp, out / MEDIA_NAME)
    log(f"wrote {jpath} ({results['seconds']:.0f} s in all)")
    if write_report:
        from synth_probe.report.predictability_section import write_predictability_report

        paths = write_predictability_report(out)
        log(f"wrote {paths['html']}")
    if interrupted:
        raise KeyboardInterrupt
    return results


def _save_predictions(path: Path, fingerprint: str, preds: Mapping[str, pd.DataFrame],
                      probas: Mapping[str, Mapping[str, np.ndarray] | None], models: Mapping[str, str]) -> None:
    """Every model's full test predictions (and class probabilities), for the ensemble of a later rerun.

    ``models`` maps each model to its hyperparameter fingerprint; models without one are not saved.
    """
    arrays: dict[str, np.ndarray] = {"fingerprint": np.asarray(fingerprint)}
    for m, p in preds.items():
        if m not in models:
            continue
        arrays[f"model:{m}"] = np.asarray(models[m])
        arrays[f"pred:{m}"] = p.to_numpy(dtype=np.float64)
        for name, a in (probas.get(m) or {}).items():
            arrays[f"proba:{m}:{name}"] = np.asarray(a, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)  # a new --out folder: the first model saves before any report
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_saved_run(reports_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """A finished run's results and saved test predictions, for studies that compare with it.

    Returns
    -------
    results : dict
        ``predictability.json``.
    saved : dict of str to np.ndarray
        The arrays of ``predictability_predictions.npz`` (``pred:MODEL`` holds a model's
        test predictions, one column per entry of ``results["columns"]``).
    members : list of str
        The :data:`ENSEMBLE_MEMBERS` with saved predictions.

    Raises
    ------
    DatasetError
        When either file is missing or unreadable (run ``make predictability`` first).
    """
    d = Path(reports_dir)
    results = read_json(d / RESULTS_NAME, error=DatasetError, what="predictability results",
                        hint="run `make predictability` first")
    try:
        with np.load(d / PREDICTIONS_NAME, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the predictability run in {d}: {e}; run `make predictability` first") from e
    return results, saved, [m for m in ENSEMBLE_MEMBERS if f"pred:{m}" in saved]


def load_run_dataset(results: Mapping[str, Any]) -> Any:
    """The dataset a finished run (:func:`load_saved_run`'s ``results``) was trained on.

    Raises
    ------
    DatasetError
        When it cannot be loaded, or no longer has the run's number of rows (the split would differ,
        so predictions of the run and of a study would not be of the same test rows).
    """
    from synth_probe.dataset import load_dataset

    ds = load_dataset(results["data"], verify=False)
    if len(ds.params) != results["n"]:
        raise DatasetError(f"{results['data']} has {len(ds.params)} rows, the predictability run used "
                           f"{results['n']}; rerun `make predictability` on it")
    return ds


def _load_predictions(path: Path, fingerprint: str,
                      models: Mapping[str, str]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """What :func:`_save_predictions` wrote for the same data and split, of the models whose
    hyperparameter fingerprint is as in ``models``; {} when there is nothing."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return {}
            return {m: v for m, v in _saved_members(z).items()
                    if f"model:{m}" in z.files and str(z[f"model:{m}"]) == models.get(m)}
    except (OSError, KeyError, ValueError):
        return {}


def _saved_members(arrays: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Model -> (test predictions, class probabilities by parameter) in the arrays :func:`_save_predictions`
    wrote (an open ``.npz`` or :func:`load_saved_run`'s ``saved``)."""
    out: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {
        key[5:]: (np.asarray(arrays[key]), {}) for key in arrays if key.startswith("pred:")}
    for key in arrays:
        if key.startswith("proba:"):
            _, m, name = key.split(":", 2)
            if m in out:
                out[m][1][name] = np.asarray(arrays[key])
    return out


def saved_ensemble(results: Mapping[str, Any], saved: Mapping[str, np.ndarray],
                   Y_test: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The :func:`ensemble` of a finished run's saved test predictions (:func:`load_saved_run`), and its
    members; an empty frame and no members when fewer than two were saved."""
    members = _saved_members(saved)
    preds = {m: pd.DataFrame(p, columns=list(results["columns"])) for m, (p, _) in members.items()}
    pred, _, used = ensemble(preds, {m: proba for m, (_, proba) in members.items()}, results.get("synth"), Y_test)
    return pred, used


def _audio_study(ds, synth, settings, columns, rows, preds, results, config, log):
    from synth_probe.metrics import _patch_matrix, audio_report, summarize_audio
    from synth_probe.render import render_many
    from synth_probe.synths.registry import get_synth

    t0 = time.perf_counter()
    s = get_synth(synth)
    try:
        k = len(rows)
        patches = ds.params.iloc[rows].reset_index(drop=True)
        seeds = np.asarray(ds.seeds)[rows]
        target = np.asarray(ds.audio[rows], dtype=np.float32)
        audio: dict[str, Any] = {"n": k, "models": {}}
        for model, pred in preds.items():
            dist = audio_report(s, patches, pred.iloc[:k], settings, seeds=seeds, target_audio=target,
                                jobs=int(config.jobs))
            summ = summarize_audio(dist)
            audio["models"][model] = {c: {"mean": float(summ.loc[c, "mean"]), "median": float(summ.loc[c, "median"])}
                                      for c in summ.index}
        # listenable pairs of the best non-baseline model (highest mean skill), and the mean patch
        learned = [m for m in preds if m != "mean"]
        media: dict[str, np.ndarray] = {}
        p = min(int(config.pairs), k)
        if learned and p > 0:
            best = max(learned, key=lambda m: results["models"][m].get("mean_skill") or -math.inf)
            audio["pairs_model"] = best
            pv = _patch_matrix(s, patches.iloc[:p], preds[best].iloc[:p])
            pred_audio = render_many(s, pv, settings, seeds[:p], jobs=1)
            media["target"] = _to_int16(target[:p])
            media["prediction"] = _to_int16(pred_audio)
            if "mean" in preds:
                mv = _patch_matrix(s, patches.iloc[:p], preds["mean"].iloc[:p])
                media["mean"] = _to_int16(render_many(s, mv, settings, seeds[:p], jobs=1))
            media["sample_rate"] = np.asarray(int(settings.sample_rate))
            media["rows"] = np.asarray(ds.params.index.to_numpy()[rows[:p]])
            labels = ds.labels(media["rows"])  # program names of a preset dataset, else ""
            audio["pairs"] = [
                {"row": int(media["rows"][i]), **({"label": labels[i]} if labels[i] else {}),
                 "params": {c: [float(patches[c].iloc[i]), float(preds[best][c].iloc[i])] for c in columns}}
                for i in range(p)
            ]
        audio["seconds"] = time.perf_counter() - t0
        log(f"audio: {k} test rows re-rendered per model in {audio['seconds']:.1f} s")
        return audio, media
    finally:
        s.close()


def _to_int16(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    peak = np.max(np.abs(a), axis=-1, keepdims=True)
    a = a / np.maximum(peak, 1.0)  # never louder than full scale; quiet clips stay quiet
    return np.clip(np.round(a * 32767.0), -32768, 32767).astype(np.int16)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("synth_probe", "numpy", "scikit-learn", "lightgbm", "torch", "librosa", "dawdreamer"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
