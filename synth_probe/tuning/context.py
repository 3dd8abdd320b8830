"""The data a tuning run shares: its configuration, the split, the targets and the feature cache."""
from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import synth_probe.features as features_module
from synth_probe.dataset import load_dataset
from synth_probe.errors import DatasetError, ParameterValueError, UnknownParameterError, format_number
from synth_probe.features.cache import load_array, save_array
from synth_probe.features.spectrogram import pool_time as _pool_time
from synth_probe.fileio import read_json
from synth_probe.metrics import parameter_report
from synth_probe.models.base import FitProgress, ParamTargets
from synth_probe.features import ProbeFeatures
from synth_probe.features.probe import join_renders
from synth_probe.pipeline import build_estimator, feature_step, input_shape
from synth_probe.probe import parse_probe
from synth_probe.training import audio_rows, probe_renders, target_layout
from synth_probe.tuning.space import FAMILIES, TORCH_FAMILIES, feature_spec

__all__ = ["TuneConfig", "TuneContext", "FeatureStore", "split_rows", "check_audible", "study_dir", "synth_label"]


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "synth"


def synth_label(synth: Any, name: str) -> str:
    """Folder-safe name of a synth: its registry name, or the stem of a plugin path."""
    label = getattr(synth, "name", None) or name
    if os.sep in str(label) or str(label).endswith((".so", ".vst3", ".dll", ".dylib")):
        label = Path(str(label)).stem
    return _safe_name(str(label))


def study_dir(studies_root: str | os.PathLike, synth: str, param: str) -> Path:
    """``<studies_root>/<synth>/<param>/``, the folder of one study."""
    return Path(studies_root) / _safe_name(synth) / _safe_name(param)


def check_audible(param: str, sensitivity_json: str | os.PathLike, synth: str,
                  force: bool = False) -> dict[str, Any] | None:
    """The sensitivity study's entry for ``param``; refuse an inaudible one unless ``force``.

    Parameters
    ----------
    param : str
    sensitivity_json : path
        ``reports/sensitivity.json``; a missing file means no check.
    synth : str
        Only an entry of this synth counts.
    force : bool
        Run anyway (a warning is printed).

    Returns
    -------
    dict or None
        ``{"classification", "score", "rank", ...}``, or None when unknown.

    Raises
    ------
    ParameterValueError
        The parameter is classed inaudible and ``force`` is False.
    """
    p = Path(sensitivity_json)
    if not p.is_file():
        return None
    try:
        data = read_json(p, error=ParameterValueError, what="sensitivity results")
    except ParameterValueError as e:  # the check is advisory: an unreadable file does not stop tuning
        print(f"warning: {e}; the audibility check is skipped", file=sys.stderr)
        return None
    s = data.get("synth") or {}
    s_name = s.get("synth") or s.get("name") if isinstance(s, dict) else s
    if s_name and synth and _safe_name(str(s_name)) != _safe_name(synth):
        return None
    entries = data.get("params") if isinstance(data.get("params"), list) else []
    entry = next((e for e in entries if isinstance(e, dict) and e.get("name") == param), None)
    if entry is None:
        return None
    cls = entry.get("classification")
    info = {k: entry.get(k) for k in ("classification", "score", "ci_low", "ci_high", "rank")}
    if cls == "inaudible":
        msg = (f"the sensitivity study ({p}) classes {param!r} as inaudible (score {format_number(entry.get('score'))} "
               f"dB, interval [{format_number(entry.get('ci_low'))}, {format_number(entry.get('ci_high'))}]): moving "
               "it does not change the sound measurably, so no model can beat chance")
        if not force:
            raise ParameterValueError(msg + "; pass --force to tune it anyway")
        print(f"warning: {msg}; tuning anyway (--force)", file=sys.stderr)
    return info


@dataclass
class TuneConfig:
    """Everything a tuning run needs (the CLI's options).

    Attributes
    ----------
    synth : str
        Synth name or plugin path.
    param : str
    data : str
        Dataset folder.
    trials : int or None
        Trials this process runs (None: until ``timeout``).
    timeout : float or None
        Seconds this process optimizes.
    jobs : int
        Worker processes on this host.
    storage : str or None
        None: a journal file in the study folder; else ``journal:PATH`` or an SQLAlchemy URL.
    study : str or None
        Study name (default ``"<synth>-<param>"``).
    families : list of str
    pruner : {"median", "hyperband", "none"}
    studies_root, out : str
        Folder of study folders, and of the HTML reports.
    seed : int
        Seeds the splits, every model (``random_state``) and the samplers.
    val_fraction, test_fraction : float
        Fixed split of the dataset rows.
    max_epochs : int
        Epoch budget of a torch trial.
    max_rounds : int
        Boosting-round budget of a LightGBM trial.
    limit : int or None
        Use only the first ``limit`` rows of the dataset.
    heartbeat_interval, grace_period : int
    probe : str or None
        The probe the dataset must have been made with (:func:`synth_probe.probe.parse_probe`);
        None: whichever it has.
    """

    synth: str
    param: str
    data: str
    trials: int | None = 20
    timeout: float | None = None
    jobs: int = 1
    storage: str | None = None
    study: str | None = None
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    pruner: str = "median"
    studies_root: str = "studies"
    out: str = "reports"
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.15
    max_epochs: int = 30
    max_rounds: int = 600
    limit: int | None = None
    heartbeat_interval: int = 15
    grace_period: int = 60
    report: bool = True
    probe: str | None = None


def split_rows(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Fixed, seeded train/validation/test split of ``n`` rows (sorted positions)."""
    if not (0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 0.9):
        raise ParameterValueError(f"need 0 < val_fraction, 0 <= test_fraction, sum < 0.9; got "
                                  f"{val_fraction}, {test_fraction}")
    perm = np.random.default_rng([int(seed), 7]).permutation(n)
    n_val = max(2, int(round(val_fraction * n)))
    n_test = int(round(test_fraction * n))
    if n - n_val - n_test < 4:
        raise ParameterValueError(f"{n} rows are too few for a train/validation/test split")
    return {"val": np.sort(perm[:n_val]), "test": np.sort(perm[n_val:n_val + n_test]),
            "train": np.sort(perm[n_val + n_test:])}


def _pooled(S: np.ndarray, n_mels: int, pool: int, n_renders: int = 1) -> np.ndarray:
    """Full log-mel spectrograms ``(n, n_renders * n_mels * frames)`` pooled into ``pool`` segments as
    LogMelSpectrogram pools, render by render."""
    frames = S.reshape(len(S) * int(n_renders), n_mels, -1)
    return _pool_time(frames, int(pool)).reshape(len(S), -1)


def _probe_matrix(parts: list[np.ndarray], renders: list[Any], *, contrast: bool) -> np.ndarray:
    """Per-render feature blocks ``(n, n_renders * k_j)`` joined render by render (with their
    differences, ``contrast``), then each render's note and velocity: the columns of
    :class:`~synth_probe.features.ProbeFeatures` around a FeatureUnion."""
    R = len(renders)
    n = len(parts[0])
    blocks = np.concatenate([P.reshape(n, R, -1) for P in parts], axis=2)
    return join_renders(blocks, renders, contrast=contrast, context=True)


class FeatureStore:
    """Features of every dataset row, cached on disk per feature setting.

    The transformers are :func:`synth_probe.pipeline.feature_step`'s, so the saved best model reads
    the same features as ``train`` and the predictability suite would give it.

    Parameters
    ----------
    dataset : Dataset
        From :func:`synth_probe.dataset.load_dataset`.
    cache_dir : path
        ``studies/<synth>/_features/<dataset id>/``.
    n_rows : int
        Rows used (the first ``n_rows`` of the dataset).
    """

    def __init__(self, dataset: Any, cache_dir: str | os.PathLike, n_rows: int) -> None:
        self.ds = dataset
        self.dir = Path(cache_dir)
        self.n = int(n_rows)
        self.sr = int(dataset.settings.sample_rate)
        self.note_length = float(dataset.settings.note_length)
        self.n_samples = int(dataset.settings.n_samples)
        #: a probe dataset's renders (features per render, side by side); None: one render per patch
        self.renders = probe_renders(dataset)
        self._mem: dict[str, np.ndarray] = {}
        self.seconds_computing = 0.0

    def step(self, fs: Mapping[str, Any]) -> Any:
        """The (unfitted) feature step of a trial's feature setting."""
        return feature_step(feature_spec(fs), sample_rate=self.sr, note_length=self.note_length, renders=self.renders)

    def _cached_step(self, fs: Mapping[str, Any]) -> Any:
        """The step of one cached block: for a probe, its per-render features side by side, no note columns."""
        step = self.step(fs)
        return ProbeFeatures(step.step, renders=step.renders, context=False) if isinstance(step, ProbeFeatures) else step

    def _compute(self, key: str, transformer: Any) -> np.ndarray:
        # the handcrafted file names the descriptor version, so a new descriptor set is never served old columns
        name = f"{key}-v{features_module.DESCRIPTORS_VERSION}" if key == "hand" else key
        path = self.dir / f"{name}-n{self.n}.npy"
        X = load_array(path)  # None when missing or torn by a killed writer: computed again
        if X is not None:
            return X
        t0 = time.perf_counter()
        tr = transformer.fit(audio_rows(self.ds, slice(0, 2)))
        parts = []
        for a in range(0, self.n, 250):
            parts.append(tr.transform(audio_rows(self.ds, slice(a, min(a + 250, self.n)))).astype(np.float32))
        X = np.concatenate(parts)
        save_array(path, X)
        self.seconds_computing += time.perf_counter() - t0
        return X

    def get(self, key: str) -> np.ndarray:
        """Features ``(n_rows, n_features)`` float32 of a key: ``hand`` or ``mel-<n_mels>-<hop>``."""
        if key not in self._mem:
            if key == "hand":
                X = self._compute(key, self._cached_step({"kind": "handcrafted"}))
            else:
                _, m, h = key.split("-")
                X = self._compute(key, self._cached_step({"kind": "mel", "n_mels": int(m), "hop": int(h)}))
            if len(self._mem) >= 4:
                self._mem.pop(next(iter(self._mem)))
            self._mem[key] = X
        return self._mem[key]

    def matrix(self, fs: Mapping[str, Any]) -> np.ndarray:
        """The feature matrix of a feature setting (see :func:`~synth_probe.tuning.space.suggest_features`)."""
        kind = fs["kind"]
        if kind == "mel":
            return self.get(f"mel-{fs['n_mels']}-{fs['hop']}")
        parts = []
        if kind in ("handcrafted", "combined"):
            parts.append(self.get("hand"))
        if kind in ("logmel_stats", "combined"):
            S = self.get(f"mel-{fs['n_mels']}-{fs['hop']}")
            parts.append(_pooled(S, int(fs["n_mels"]), int(fs["pool"]), len(self.renders or [0])))
        if self.renders is not None:
            return _probe_matrix(parts, self.renders, contrast=bool(getattr(self.step(fs), "contrast", False)))
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def pipeline_steps(self, fs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Fitted feature steps that turn audio rows into :meth:`matrix`'s columns."""
        return [("features", self.step(fs).fit(audio_rows(self.ds, slice(0, 2))))]


class TuneContext:
    """The dataset, split, targets and feature cache shared by the trials of one process.

    Parameters
    ----------
    config : TuneConfig
    synth : Synth
        The loaded synth (only its specs are read).
    verify : bool, default=True
        Check every shard of the dataset against its sha256 (a corrupted dataset is refused, as
        ``train`` and ``evaluate`` refuse it); the worker processes of a run skip it, because the
        run verified the same files before starting them.
    """

    def __init__(self, config: TuneConfig, synth: Any, *, verify: bool = True) -> None:
        self.config = config
        self.spec = synth.spec(config.param)  # UnknownParameterError with the closest names
        self.synth_name = synth_label(synth, config.synth)
        self.ds = load_dataset(config.data, verify=verify)
        ds_synth = str(self.ds.meta.get("synth", {}).get("synth", ""))
        if ds_synth and _safe_name(Path(ds_synth).stem if os.sep in ds_synth else ds_synth) != self.synth_name:
            raise DatasetError(f"dataset {config.data} was rendered with synth {ds_synth!r}, not {config.synth!r}")
        if config.probe is not None and self.ds.probe != parse_probe(config.probe):
            raise DatasetError(f"dataset {config.data} was made with the probe {self.ds.probe.text()!r}, not "
                               f"{parse_probe(config.probe).text()!r}; leave --probe out to use it, or give another --data")
        if config.param not in self.ds.params.columns:
            raise UnknownParameterError(config.param, list(self.ds.params.columns), synth=f"dataset {config.data}")
        n = len(self.ds) if config.limit is None else min(len(self.ds), int(config.limit))
        y = self.ds.params[config.param].to_numpy()[:n]
        if np.unique(y).size < 2:
            raise DatasetError(f"{config.param!r} does not vary in dataset {config.data} (held at {y[0]:.3f}); "
                               "generate a dataset whose sampler varies it (e.g. --sampler all)")
        self.n = n
        self.kind = self.spec.kind
        self.split = split_rows(n, config.val_fraction, config.test_fraction, config.seed)
        self.Y = self.ds.params[[config.param]].iloc[:n].reset_index(drop=True)
        #: the target's discrete layout, as data (the synth's own choice rule, for a plugin too)
        self.layout = target_layout([config.param], synth=synth)
        ident = str(self.ds.meta.get("identity_sha256", ""))[:16]
        self.dataset_id = f"{ident}-{n}"
        root = Path(config.studies_root)
        self.dir = study_dir(root, self.synth_name, config.param)
        self.features = FeatureStore(self.ds, root / self.synth_name / "_features" / ident, n)
        self.threads = max(1, (os.cpu_count() or 1) // max(1, int(config.jobs)))
        self.metric = "balanced_accuracy" if self.spec.is_discrete else "r2"
        yt = y[self.split["train"]]
        if self.spec.is_discrete:
            t = ParamTargets(discrete=self.layout).fit(self.Y.iloc[self.split["train"]])
            cls = t.transform(self.Y.iloc[self.split["train"]])[1][:, 0]
            p = np.bincount(cls) / len(cls)
            p = p[p > 0]
            self.skill_scale = float(-(p * np.log(p)).sum()) or 1.0
        else:
            self.skill_scale = float(np.var(yt)) or 1.0

    # -- fingerprint stored with the study: trials compare only on the same rows
    def fingerprint(self) -> dict[str, Any]:
        """What the trials of a study must share to compare: dataset rows, split, metric, descriptor version."""
        c = self.config
        return {"dataset": self.dataset_id, "data": str(c.data), "param": c.param, "seed": int(c.seed),
                "val_fraction": float(c.val_fraction), "test_fraction": float(c.test_fraction),
                "n_train": int(len(self.split["train"])), "n_val": int(len(self.split["val"])),
                "n_test": int(len(self.split["test"])), "metric": self.metric,
                "descriptors": features_module.DESCRIPTORS_VERSION}

    # -- models
    def estimator(self, family: str, params: Mapping[str, Any], fs: Mapping[str, Any]) -> Any:
        """The trial's estimator, built by :func:`synth_probe.pipeline.build_estimator` as everywhere else."""
        shape = input_shape(self.features.step(fs), self.features.n_samples) if family in TORCH_FAMILIES else None
        return build_estimator(family, input_shape=shape, discrete=self.layout, synth=self.config.synth,
                               seed=int(self.config.seed), threads=self.threads, device="cpu", overrides=params)

    def score(self, rows: np.ndarray, pred: Any) -> dict[str, float]:
        """Metrics of predictions for dataset rows ``rows``: the objective and MAE/accuracy, MPR."""
        truth = self.Y.iloc[rows].reset_index(drop=True)
        pred = pd.DataFrame(np.asarray(pred).reshape(len(rows), -1), columns=[self.config.param])
        rep = parameter_report(truth, pred, discrete=self.layout).iloc[0]
        out = {"score": float(rep[self.metric]), "mpr": float(rep["mpr"])}
        out["mae" if self.kind == "continuous" else "accuracy"] = float(
            rep["mae"] if self.kind == "continuous" else rep["accuracy"])
        if not math.isfinite(out["score"]):
            out["score"] = -1.0 if self.kind == "continuous" else 0.0
        return out

    def fit_eval(self, family: str, params: Mapping[str, Any], fs: Mapping[str, Any], fit_rows: np.ndarray,
                 eval_rows: np.ndarray, reporter: Callable[[int, float], None] | None = None
                 ) -> tuple[Any, dict[str, float], float]:
        """Fit on ``fit_rows``, score on ``eval_rows``; returns ``(estimator, metrics, fit seconds)``."""
        X = self.features.matrix(fs)
        est = self.estimator(family, params, fs)
        callbacks = [self.progress_callback(family, reporter)] if reporter is not None else []
        t0 = time.perf_counter()
        est.fit(X[fit_rows], self.Y.iloc[fit_rows].reset_index(drop=True), callbacks=callbacks)
        seconds = time.perf_counter() - t0
        pred = est.predict(X[eval_rows])
        return est, self.score(eval_rows, pred), seconds

    def progress_callback(self, family: str, reporter: Callable[[int, float], None]
                          ) -> Callable[[FitProgress], None]:
        """A fit callback that reports the *skill* of each epoch or boosting round to ``reporter(step %, skill)``.

        Skill is ``1 − loss/scale``: the torch models' loss of a continuous target is already a
        z-scored MSE (scale 1); a discrete target's cross-entropy is scaled by the prior's entropy, and
        LightGBM's L2 by the target's variance. LightGBM reports about 30 times per fit.
        """
        scale = self.skill_scale
        continuous = self.kind == "continuous"

        def report(p: FitProgress) -> None:
            if p.unit == "round":
                every = max(1, p.budget // 30)
                if p.step % every and p.step != p.budget:
                    return
                skill = 1.0 - p.loss / scale
            else:
                skill = 1.0 - (p.loss if continuous else p.loss / scale)
            reporter(max(1, round(100 * p.step / p.budget)), float(skill))

        return report
