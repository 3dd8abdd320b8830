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
   64 x 65 for 1.5 s at 22.05 kHz) feeds the torch models. Features are
   computed in chunks (memory holds one chunk of audio) and cached on disk.
4. **Train and score.** Each model is fit on the training rows and scored per
   parameter on the test rows (:func:`synth_probe.metrics.parameter_report`).
   Results are saved after every model, so an interrupted run keeps what it
   finished and a rerun with the same settings skips finished models.
5. **Audio.** The predictions of the first test rows are re-rendered and
   compared with the targets (:func:`synth_probe.metrics.audio_report`), beside
   the mean patch; a few (target, prediction, mean patch) clips of the best
   model are kept for the report's players.

The results go to ``predictability.json`` (the clips to
``predictability_media.npz``, every model's test predictions to
``predictability_predictions.npz``, see :mod:`synth_probe.saved_run`) in the
reports folder. The command then hands the results to
:func:`synth_probe.report.pages.write_predictability_report`, which writes the
measured part of ``predictability.html``.

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

from synth_probe.best_of_k import draw_spread
from synth_probe.errors import DatasetError, ParameterValueError, UnknownModelError
from synth_probe.features.cache import load_array, save_array
from synth_probe.fileio import read_json
from synth_probe.dataset import generate, load_dataset
from synth_probe.metrics import _patch_matrix, grid_levels, parameter_report, summarize_audio
from synth_probe.families import GRID_CLASS_MODELS, GRID_LEVEL_SMOOTHING, MEL_HOP, N_MELS, FeatureSpec
from synth_probe.pipeline import FAMILIES, SUITE as PIPELINE_SUITE, TORCH_FAMILIES, build_estimator, feature_step
from synth_probe.pipeline import input_shape as step_input_shape
from synth_probe.predictability_probe import pair_render, probe_audio_report, probe_fields, probe_slug
from synth_probe.probe import parse_probe
from synth_probe.training import audio_rows, dataset_context, probe_renders, select_params, split_indices, target_layout
from synth_probe.progress import Progress
from synth_probe.render import render_many
from synth_probe.sampling import sampler_render_defaults
from synth_probe.saved_run import (
    ENSEMBLE_MEMBERS,
    PREDICTIONS_NAME,
    RESULTS_NAME,
    ensemble,
    load_predictions,
    load_run_dataset,
    load_saved_run,
    save_predictions,
    saved_ensemble,
)
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.registry import get_synth
from synth_probe.util import atomic_text, atomic_write, json_clean, library_versions

__all__ = [
    "SUITE",
    "TORCH_MODELS",
    "PredictabilityConfig",
    "default_dataset_path",
    "ensure_dataset",
    "skill",
    "run_predictability",
    "fit_one",
    "suite_feature_steps",
    "compute_features",
    "ensemble",
    "ENSEMBLE_MEMBERS",
    "PREDICTIONS_NAME",
    "load_saved_run",
    "load_run_dataset",
    "saved_ensemble",
    "RESULTS_NAME",
    "MEDIA_NAME",
]

#: the estimator suite, in training order, and its spectrogram models (the family table of synth_probe.pipeline)
SUITE: tuple[str, ...] = PIPELINE_SUITE
TORCH_MODELS: frozenset[str] = TORCH_FAMILIES
#: the family that draws patches (trained on demand); its results add the spread of its draws
POSTERIOR = "posterior"
#: draws per test sound for that spread
SPREAD_DRAWS = 32
MEDIA_NAME = "predictability_media.npz"
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
    mel_bands, mel_hop : int
        Mel bands and hop (samples) of the log-mel image the spectrogram models read (the families'
        defaults: 64 bands, hop 512). Part of those models' fingerprint, so a change refits them.
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
    mel_bands: int = N_MELS
    mel_hop: int = MEL_HOP

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
        for name in ("epochs", "patience", "jobs", "chunk", "mel_bands", "mel_hop"):
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
        if model in TORCH_MODELS or model == POSTERIOR:
            base.update(max_epochs=int(self.epochs), patience=int(self.patience))
        if model == "autoencoder":
            base["pretrain_epochs"] = max(1, int(self.epochs) // 3)
        if model == "gbm":
            # sized for the suite's budget: a 49-class tune parameter grows 49 trees a round, so fewer,
            # faster-learning rounds than the class default (500 at 0.05), with early stopping
            base.update(n_estimators=600, learning_rate=0.08, num_leaves=31, colsample_bytree=0.5,
                        early_stopping_rounds=20)
        base.update(self.overrides.get(model, {}))
        return base


def default_dataset_path(synth: str, sampler: str, n: int, root: str | os.PathLike = "data",
                         probe: Any = None) -> Path:
    """``data/<synth>-<sampler>-<n>`` with ``n`` written as ``20k`` when a multiple of 1000 (and ``-<probe>``
    for a probe of several renders, e.g. ``-notes36-60-84``)."""
    name = Path(str(synth)).stem.lower().replace(" ", "-")
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    slug = probe_slug(parse_probe(probe))
    return Path(root) / (f"{name}-{sampler}-{size}" + (f"-{slug}" if slug else ""))


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
    probe: Any = None,
) -> Any:
    """Generate (or complete) the dataset at ``path`` and load it.

    The render settings are the sampler's own (``inversynth``: 16,384 Hz, 1 s)
    or 22,050 Hz, a 1 s note in 1.5 s; the arguments override them. A complete
    dataset is only checked, not re-rendered. ``probe`` (a :class:`~synth_probe.probe.Probe` or its
    text) renders each of the ``n`` patches at each of its renders; a folder made with another probe
    is refused.

    Returns
    -------
    Dataset
    """
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
        result = generate(s, path, n, sampler=sampler, seed=seed, settings=settings, jobs=jobs, progress=progress,
                          probe=parse_probe(probe))
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
def suite_feature_steps(sample_rate: int, note_length: float | None, jobs: int,
                        renders: Sequence[RenderSettings] | None = None, *,
                        mel_bands: int = N_MELS, mel_hop: int = MEL_HOP) -> dict[str, Any]:
    """The suite's two feature steps: the tabular families' default features and the torch families'
    log-mel image of ``mel_bands`` bands at hop ``mel_hop`` (over a probe's ``renders``, see
    :func:`synth_probe.pipeline.feature_step`)."""
    kw = dict(sample_rate=sample_rate, note_length=note_length, renders=renders)
    image = FeatureSpec(FAMILIES["cnn"].features, n_mels=int(mel_bands), hop=int(mel_hop))
    return {"tabular": feature_step(FAMILIES["gbm"].features, jobs=jobs, **kw),
            "logmel": feature_step(image, jobs=1, **kw)}


def _feature_key(ds: Any, name: str, step: Any, rows: np.ndarray) -> str:
    from synth_probe.features import DESCRIPTORS_VERSION, uses_handcrafted

    h = hashlib.sha256()
    h.update(str(ds.meta.get("identity_sha256")).encode())
    h.update(name.encode())
    if uses_handcrafted(getattr(step, "step", step)):  # a probe's ProbeFeatures: its per-render step  # a new descriptor set must not be served an old one's columns
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
    bar = Progress(len(rows), f"features {name}", unit="rows", log=log, enabled=log is not None and len(rows) > chunk)
    with bar:
        for a in range(0, len(rows), chunk):
            X = audio_rows(ds, rows[a:a + chunk])  # a probe's renders side by side
            if not fitted:
                step.fit(X)
                fitted = True
            parts.append(np.asarray(step.transform(X), dtype=np.float32))
            bar.update(len(X))
    F = np.concatenate(parts, axis=0)
    if path is not None:
        save_array(path, F)
    if log:
        log(f"features {name}: {F.shape[1]} per row, {len(rows)} rows in {time.perf_counter() - t0:.1f} s")
    return F


# ----------------------------------------------------------------------------- results file
def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_text(path, json.dumps(json_clean(data), indent=1, allow_nan=False))


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
    if model in GRID_CLASS_MODELS:
        d["_grid_levels_as_classes"] = True
        if model in TORCH_MODELS:
            d["_level_smoothing"] = GRID_LEVEL_SMOOTHING
    if model in TORCH_MODELS and (int(config.mel_bands), int(config.mel_hop)) != (N_MELS, MEL_HOP):
        d["_logmel"] = [int(config.mel_bands), int(config.mel_hop)]  # the default adds nothing: old runs stay valid
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=repr).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- the run
def fit_one(
    model: str,
    config: PredictabilityConfig,
    *,
    synth: str | None,
    sample_rate: int,
    note_length: float | None,
    n_samples: int,
    input_shape: tuple[int, ...] | None,
    F_train: np.ndarray,
    Y_train: pd.DataFrame,
    F_test: np.ndarray,
    Y_test: pd.DataFrame,
    log: Callable[[str], None],
    levels: Mapping[str, Sequence[float]] | None = None,
    discrete: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, np.ndarray] | None]:
    """Fit one suite model with the run's settings and score it: ``(results entry, predictions, probabilities)``."""
    est = build_estimator(model, input_shape=input_shape if model in TORCH_MODELS else None, discrete=discrete,
                          synth=synth, overrides=config.suite_overrides(model), seed=config.seed, jobs=config.jobs,
                          levels=levels)
    log(f"{model}: fitting {type(est).__name__} on {len(F_train)} rows x {F_train.shape[1]} features, "
        f"{Y_train.shape[1]} parameters")
    t0 = time.perf_counter()
    est.fit(F_train, Y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred, proba = est.predict_with_proba(F_test)  # one forward pass of a torch model for the three
    predict_s = time.perf_counter() - t0
    if not isinstance(pred, pd.DataFrame):
        pred = pd.DataFrame(np.asarray(pred).reshape(len(F_test), -1), columns=list(Y_test.columns))
    entry: dict[str, Any] = {
        "model": model, "estimator": type(est).__name__,
        "hyperparameters": {k: (f"the levels of {len(v)} gridded parameters, learned as classes" if k == "levels"
                                else repr(v)) if not isinstance(v, (int, float, str, bool, type(None))) else v
                            for k, v in est.get_params(deep=False).items()},
        "fingerprint": _model_fingerprint(config, model),
        "fit_seconds": fit_s, "predict_seconds": predict_s, "predict_rows_per_s": len(F_test) / max(predict_s, 1e-9),
        "n_train": len(F_train), "n_test": len(F_test), **_scores(Y_test, pred, synth, proba, levels),
    }
    if callable(getattr(est, "sample", None)):  # a posterior: the measured spread of its draws, per parameter
        t = est.targets_
        draws = est.sample(F_test, SPREAD_DRAWS, random_state=config.seed)
        entry["spread"] = draw_spread(draws, [str(c) for c in t.columns],
                                      [j in set(t.discrete_index) for j in range(len(t.columns))])
    if model in TORCH_MODELS or model == POSTERIOR:
        entry["history"] = [dict(h) for h in getattr(est, "history_", [])]
        entry["samples_per_s"] = float(getattr(est, "train_samples_per_s_", float("nan")))
        entry["best_epoch"] = int(getattr(est, "best_epoch_", 0))
        entry["n_epochs"] = int(getattr(est, "n_epochs_", 0))
        if hasattr(est, "pretrain_history_"):
            entry["pretrain_history"] = [dict(h) for h in est.pretrain_history_]
            entry["pretrain_samples_per_s"] = float(getattr(est, "pretrain_samples_per_s_", float("nan")))
        entry["n_parameters"] = int(sum(p.numel() for p in est.module_.parameters()))
    sps = f", {entry['samples_per_s']:.0f} samples/s over {entry['n_epochs']} epochs" if "samples_per_s" in entry else ""
    log(f"{model}: fit {fit_s:.1f} s{sps}; mean MPR {entry['mean_mpr']:.1f}, mean skill "
        f"{entry['mean_skill'] if entry['mean_skill'] is None else round(entry['mean_skill'], 3)}")
    return entry, pred, proba


def _scores(Y_test: pd.DataFrame, pred: pd.DataFrame, synth: str | None, proba: Mapping[str, np.ndarray] | None,
            levels: Mapping[str, Sequence[float]] | None) -> dict[str, Any]:
    """Per-parameter metrics of one set of test predictions, and their means."""
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


@dataclass
class _Run:
    """One run in progress: the data, the split, and the results written after every model."""

    ds: Any
    config: PredictabilityConfig
    synth: str | None
    settings: Any
    columns: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    out: Path
    old: dict[str, Any]
    results: dict[str, Any]
    Y_train: pd.DataFrame
    Y_test: pd.DataFrame
    levels: dict[str, Any]
    log: Callable[[str], None]
    t_start: float

    @property
    def jpath(self) -> Path:
        return self.out / RESULTS_NAME

    def head_rows(self) -> int:
        """Test predictions kept in the results: the audio rows or the listenable pairs, whichever is more."""
        return max(min(int(self.config.audio), len(self.test_idx)), int(self.config.pairs))

    def kept(self, model: str) -> bool:
        """Whether an earlier run finished ``model`` with the same data, split and hyperparameters."""
        return model in self.old and self.old[model].get("fingerprint") == _model_fingerprint(self.config, model)


def _earlier_models(jpath: Path, fingerprint: str, resume: bool) -> dict[str, Any]:
    """The models of an earlier run of the same data and split in ``jpath``; {} when there is none."""
    if not (resume and jpath.exists()):
        return {}
    try:
        prev = read_json(jpath, error=DatasetError, what="earlier predictability results")
    except DatasetError:  # unreadable: every model is trained again
        return {}
    if prev.get("fingerprint") == fingerprint and isinstance(prev.get("models"), dict):
        return prev["models"]
    return {}


def _start(ds: Any, config: PredictabilityConfig, out: Path, synth: str | None, resume: bool,
           log: Callable[[str], None]) -> _Run:
    """Check the dataset, split it, read an earlier run and write the results' header fields."""
    t_start = time.perf_counter()
    ctx = dataset_context(ds)
    synth = synth or ctx["synth"]
    settings = ctx["settings"]
    if settings is None:
        raise DatasetError("the dataset does not record its render settings")
    n = len(ds.params)
    if n < 20:
        raise ParameterValueError(f"the dataset has {n} rows; the predictability study needs at least 20")
    columns = select_params(ds.params, config.params)
    train_idx, test_idx = split_indices(n, float(config.test_fraction), int(config.seed))
    fp = _fingerprint(ds, config, columns, n)
    old = _earlier_models(out / RESULTS_NAME, fp, resume)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results: dict[str, Any] = {
        "format": "synth_probe.predictability", "version": 1, "fingerprint": fp,
        "synth": synth, "data": str(ds.path), "n": n, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
        "sampler": (ds.meta.get("sampling") or {}).get("sampler"),
        "render": asdict(settings) if hasattr(settings, "__dataclass_fields__") else dict(ds.meta.get("render", {})),
        **probe_fields(ds), "columns": columns, "config": asdict(config), "models": {}, "complete": False,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": load, "cpus": os.cpu_count(),
        "command": " ".join(sys.argv), "versions": library_versions(),
    }
    results["config"]["models"] = list(config.models)
    Y = ds.params[columns].reset_index(drop=True)
    # parameters the sampler drew from a grid are ranked on that grid for the MPR (the whole table sees every level)
    levels = grid_levels(Y)
    # recorded for the report: the grids that change the MPR (continuous grids, subsets of a discrete parameter's
    # choices), not discrete parameters drawn over all their choices
    n_choices = {sp.name: sp.n_choices for sp in getattr(ds, "specs", []) if sp.is_discrete}
    results["mpr_levels"] = {c: len(v) for c, v in levels.items() if len(v) < n_choices.get(c, len(v) + 1)}
    log(f"predictability: {synth}, {n} rows ({len(train_idx)} train, {len(test_idx)} test), "
        f"{len(columns)} parameters, models {','.join(config.models)}; load average {load:.1f}")
    return _Run(ds, config, synth, settings, columns, train_idx, test_idx, out, old, results,
                Y.iloc[train_idx].reset_index(drop=True), Y.iloc[test_idx].reset_index(drop=True), levels, log,
                t_start)


def _features(run: _Run, steps: dict[str, Any], name: str, feats: dict[str, tuple[np.ndarray, np.ndarray]],
              cache_dir: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    """The (train, test) features of step ``name``, computed once per run."""
    if name not in feats:
        F = compute_features(run.ds, name, steps[name], np.concatenate([run.train_idx, run.test_idx]),
                             chunk=int(run.config.chunk), cache_dir=cache_dir, log=run.log)
        feats[name] = (F[:len(run.train_idx)], F[len(run.train_idx):])
    return feats[name]


def _train_models(run: _Run, cache_dir: str | os.PathLike | None,
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, np.ndarray] | None], bool]:
    """Fit and score each model of the run (or keep an earlier run's); saves the results after every model.

    Returns
    -------
    preds : dict of str to DataFrame [shape=(n_test, n_params)]
    probas : dict of str to (dict of str to np.ndarray [shape=(n_test, n_choices)]) or None
    interrupted : bool
    """
    config, results = run.config, run.results
    sr, settings = int(run.settings.sample_rate), run.settings
    steps = suite_feature_steps(sr, settings.note_length, int(config.jobs), probe_renders(run.ds),
                                mel_bands=config.mel_bands, mel_hop=config.mel_hop)
    need = {("logmel" if m in TORCH_MODELS else "tabular") for m in config.models if not run.kept(m)}
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    t_feat = time.perf_counter()
    for name in ("tabular", "logmel"):
        if name in need:
            _features(run, steps, name, feats, cache_dir)
    results["feature_seconds"] = time.perf_counter() - t_feat
    lm = steps["logmel"]
    input_shape = step_input_shape(lm, settings.n_samples)
    layout = target_layout(run.columns, synth=run.synth) if run.synth else target_layout(run.columns, specs=run.ds.specs)
    each = f", per render of the probe {results['probe']}" if results.get("n_renders", 1) > 1 else ""
    channels = f", the probe's {input_shape[0]} renders as input channels" if len(input_shape) == 3 else each
    results["features"] = {"tabular": f"handcrafted + log-mel (64 bands) in 8 time segments{each}",
                           "logmel": f"log-mel {input_shape[-2]} bands x {input_shape[-1]} frames "
                                     f"(n_fft {getattr(lm, 'step', lm).n_fft}, hop {getattr(lm, 'step', lm).hop_length})"
                                     f"{channels}"}
    preds: dict[str, pd.DataFrame] = {}
    probas: dict[str, dict[str, np.ndarray] | None] = {}
    saved = load_predictions(run.out / PREDICTIONS_NAME, results["fingerprint"],
                             {m: e.get("fingerprint") for m, e in run.old.items()})
    try:
        for model in config.models:
            if run.kept(model) and "test_predictions_head" in run.old[model]:
                results["models"][model] = run.old[model]
                if model in saved:  # the full test predictions, for the ensemble
                    preds[model] = pd.DataFrame(saved[model][0], columns=run.columns)
                    probas[model] = saved[model][1]
                else:
                    preds[model] = pd.DataFrame(run.old[model]["test_predictions_head"], columns=run.columns)
                run.log(f"{model}: kept from the earlier run (same data, split and hyperparameters)")
                continue
            fname = "logmel" if model in TORCH_MODELS else "tabular"
            F_tr, F_te = _features(run, steps, fname, feats, cache_dir)
            entry, pred, proba = fit_one(
                model, config, synth=run.synth, sample_rate=sr, note_length=settings.note_length,
                n_samples=settings.n_samples, input_shape=input_shape, F_train=F_tr, Y_train=run.Y_train,
                F_test=F_te, Y_test=run.Y_test, log=run.log, levels=run.levels, discrete=layout,
            )
            entry["test_predictions_head"] = pred.iloc[:run.head_rows()].to_numpy().tolist()
            entry["features"] = fname
            results["models"][model] = entry
            preds[model], probas[model] = pred, proba
            save_predictions(run.out / PREDICTIONS_NAME, results["fingerprint"], preds, probas,
                             {m: results["models"][m]["fingerprint"] for m in preds
                              if m in results["models"] and len(preds[m]) == len(run.Y_test)})
            results["seconds"] = time.perf_counter() - run.t_start
            _write_json(run.jpath, results)
    except KeyboardInterrupt:
        run.log("interrupted: keeping the models finished so far")
        return preds, probas, True
    return preds, probas, False


def _add_ensemble(run: _Run, preds: dict[str, pd.DataFrame],
                  probas: Mapping[str, Mapping[str, np.ndarray] | None]) -> None:
    """Score the :func:`ensemble` of the run's members and add it to the results (and to ``preds``)."""
    e_pred, e_proba, members = ensemble(preds, probas, run.synth, run.Y_test, run.levels)
    if members:
        entry = {"model": "ensemble", "estimator": "mean of " + ", ".join(members), "members": members,
                 "n_train": int(len(run.train_idx)), "n_test": int(len(run.test_idx)),
                 **_scores(run.Y_test, e_pred, run.synth, e_proba, run.levels)}
        entry["test_predictions_head"] = e_pred.iloc[:run.head_rows()].to_numpy().tolist()
        run.results["models"]["ensemble"] = entry
        preds["ensemble"] = e_pred
        run.log(f"ensemble of {', '.join(members)}: mean MPR {entry['mean_mpr']:.1f}, mean skill "
                f"{entry['mean_skill'] if entry['mean_skill'] is None else round(entry['mean_skill'], 3)}")
    elif sum(m in preds for m in ENSEMBLE_MEMBERS) >= 2:
        run.log("ensemble: left out, the kept models' full test predictions are not in "
                f"{run.out / PREDICTIONS_NAME} (an older run); --fresh retrains them")


def run_predictability(
    ds: Any,
    config: PredictabilityConfig | None = None,
    *,
    out: str | os.PathLike = "reports",
    synth: str | None = None,
    cache_dir: str | os.PathLike | None = ".cache/features",
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    against: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train and score the suite on ``ds``; write ``predictability.json`` and the clips of the audio comparison.

    The report is written by the caller (``synth-probe predictability`` calls
    :func:`synth_probe.report.pages.write_predictability_report` with the results).

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
    against : sequence of dict, optional
        Other runs to compare with, per parameter, in the report
        (:func:`synth_probe.predictability_probe.read_against`); kept under ``against``.

    Returns
    -------
    results : dict
        What ``predictability.json`` holds.

    Raises
    ------
    KeyboardInterrupt
        After saving what was finished, when the run was interrupted.
    """
    config = config or PredictabilityConfig()
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    run = _start(ds, config, Path(out), synth, resume, log)
    results = run.results
    results["against"] = [dict(a) for a in against or []]
    preds, probas, interrupted = _train_models(run, cache_dir)
    results["models"].pop("ensemble", None)
    if not interrupted:
        _add_ensemble(run, preds, probas)
    results["best"] = _best_per_parameter(results["models"])
    # ---- audio-domain metrics on the first test rows
    k = min(int(config.audio), len(run.test_idx))
    media: dict[str, np.ndarray] = {}
    if k > 0 and results["models"] and not interrupted and run.synth is not None:
        try:
            results["audio"], media = _audio_study(ds, run.synth, run.settings, run.columns, run.test_idx[:k],
                                                   preds, results, config, log)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted during the audio comparison")
    results["complete"] = not interrupted and all(m in results["models"] for m in config.models)
    results["seconds"] = time.perf_counter() - run.t_start
    _write_json(run.jpath, results)
    if media:
        atomic_write(run.out / MEDIA_NAME, lambda f: np.savez_compressed(f, **media), digest=False)
    log(f"wrote {run.jpath} ({results['seconds']:.0f} s in all)")
    if interrupted:
        raise KeyboardInterrupt
    return results


def _audio_study(ds, synth, settings, columns, rows, preds, results, config, log):
    t0 = time.perf_counter()
    s = get_synth(synth)
    try:
        k = len(rows)
        patches = ds.params.iloc[rows].reset_index(drop=True)
        seeds = np.asarray(ds.seeds)[rows]
        target = np.asarray(ds.audio[rows], dtype=np.float32)
        renders = probe_renders(ds)
        audio: dict[str, Any] = {"n": k, "models": {}}
        for model, pred in preds.items():
            dist = probe_audio_report(s, patches, pred.iloc[:k], settings, renders, seeds=seeds, target=target,
                                      jobs=int(config.jobs))
            summ = summarize_audio(dist)
            audio["models"][model] = {c: {"mean": float(summ.loc[c, "mean"]), "median": float(summ.loc[c, "median"])}
                                      for c in summ.index}
        # listenable pairs of the best non-baseline model (highest mean skill), and the mean patch
        learned = [m for m in preds if m != "mean"]
        media: dict[str, np.ndarray] = {}
        p = min(int(config.pairs), k)
        if renders is not None:  # the pairs play one render of the probe
            i = pair_render(renders, settings)
            settings, target = renders[i], target[:, i]
            audio["pairs_render"] = settings.to_dict()
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
