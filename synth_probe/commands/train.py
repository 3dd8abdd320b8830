"""``synth-probe train``: fit one estimator on a dataset and save it."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, sample_rate_arg, seed_arg
from synth_probe.errors import DatasetError, ParameterValueError, UnknownParameterError
from synth_probe.fileio import check_output_dir, loads_json

__all__ = ["register", "run", "dataset_context", "select_params", "build_pipeline", "FEATURE_SETS"]

#: --features choices
FEATURE_SETS = {
    "handcrafted": "HandcraftedFeatures (spectral shape, MFCC stats, envelope, pitch, modulation)",
    "logmel-stats": "log-mel (64 bands) averaged into 8 time segments",
    "combined": "handcrafted + logmel-stats side by side",
    "logmel": "full log-mel spectrogram (64 bands), flattened; for the torch models",
    "none": "the raw audio rows",
}
DEFAULT_FEATURES = {"mean": "none", "knn": "combined", "gbm": "combined",
                    "cnn": "logmel", "autoencoder": "logmel", "transformer": "logmel"}


def dataset_context(ds: Any) -> dict[str, Any]:
    """Synth name and render settings of a loaded dataset, from ``ds.meta`` (or ``ds.settings``).

    Returns
    -------
    dict with ``synth`` (str or None), ``synth_sha256`` (a plugin binary's, or None) and
    ``settings`` (RenderSettings or None).
    """
    from synth_probe.synths.base import RenderSettings

    meta = dict(getattr(ds, "meta", None) or {})
    synth = meta.get("synth")
    sha = synth.get("sha256") if isinstance(synth, dict) else None
    if isinstance(synth, dict):
        synth = synth.get("name") or synth.get("synth") or synth.get("id")
    settings = getattr(ds, "settings", None)
    if settings is not None and not isinstance(settings, RenderSettings):
        settings = RenderSettings(**dict(settings))
    if settings is None:
        raw = meta.get("settings") or meta.get("render") or meta.get("render_settings")
        if isinstance(raw, dict):
            keys = ("note", "velocity", "note_length", "render_length", "sample_rate")
            settings = RenderSettings(**{k: raw[k] for k in keys if k in raw})
    return {"synth": synth, "synth_sha256": sha if isinstance(sha, str) else None, "settings": settings}


def select_params(params: pd.DataFrame, spec: str) -> list[str]:
    """Target columns: ``all`` (every parameter that varies in the dataset) or a comma list."""
    if spec.strip() == "all":
        varying = [c for c in params.columns if params[c].nunique() > 1]
        if not varying:
            raise ParameterValueError("no parameter varies in this dataset; nothing to learn")
        return varying
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ParameterValueError("--params needs 'all' or a comma-separated list of parameter names")
    for n in names:
        if n not in params.columns:
            raise UnknownParameterError(n, list(params.columns), synth="this dataset")
    constant = [n for n in names if params[n].nunique() <= 1]
    if constant:
        print(f"warning: {', '.join(constant)} do not vary in this dataset", file=sys.stderr)
    return names


def build_features(name: str, sample_rate: int, note_length: float | None, jobs: int | None):
    """The feature transformer for a --features choice (None for raw audio)."""
    from sklearn.pipeline import FeatureUnion

    from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram

    if name not in FEATURE_SETS:
        raise ParameterValueError(f"unknown feature set {name!r}; choose from {', '.join(FEATURE_SETS)}")
    hand = HandcraftedFeatures(sample_rate=sample_rate, note_length=note_length, n_jobs=jobs)
    stats = LogMelSpectrogram(sample_rate=sample_rate, n_mels=64, time_pool=8, n_jobs=jobs)
    if name == "handcrafted":
        return hand
    if name == "logmel-stats":
        return stats
    if name == "combined":
        return FeatureUnion([("handcrafted", hand), ("logmel", stats)])
    if name == "logmel":
        return LogMelSpectrogram(sample_rate=sample_rate, n_mels=64, n_jobs=jobs)
    return None


def _parse_value(raw: str) -> Any:
    """A ``--set`` value: JSON where it parses (numbers, lists, true/null), else the text itself."""
    if raw.startswith(("[", "{")):  # meant as JSON: a fault in it is an error, not a string
        return loads_json(raw, error=ParameterValueError, what=f"--set value {raw[:40]!r}")
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def build_pipeline(
    model: str,
    *,
    features: str | None,
    synth: str | None,
    sample_rate: int,
    note_length: float | None,
    n_samples: int,
    overrides: dict[str, Any] | None = None,
    seed: int | None = 0,
    jobs: int | None = None,
):
    """A Pipeline of the feature step and estimator ``model`` (a :data:`synth_probe.models.MODELS` key)."""
    from sklearn.pipeline import Pipeline

    from synth_probe.models import model_class

    cls = model_class(model)
    features = features or DEFAULT_FEATURES.get(model, "combined")
    feat = build_features(features, sample_rate, note_length, jobs)
    est = cls()
    names = set(est.get_params(deep=False))
    params: dict[str, Any] = {}
    if "synth" in names:
        params["synth"] = synth
    if "random_state" in names and seed is not None:
        params["random_state"] = seed
    if "n_jobs" in names and jobs is not None:
        params["n_jobs"] = jobs
    if feat is not None and hasattr(feat, "n_frames") and feat.flatten and "input_shape" in names:
        # torch models read flattened spectrograms: tell them the (bins, frames) image shape
        params["input_shape"] = (feat.n_bins(), feat.n_frames(n_samples))
    if "sample_rate" in names:
        params["sample_rate"] = sample_rate
    for key, value in (overrides or {}).items():
        if key not in names:
            from synth_probe.errors import closest_names

            hint = closest_names(key, sorted(names))
            raise ParameterValueError(
                f"{cls.__name__} has no parameter {key!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" Parameters: {', '.join(sorted(names))}"
            )
        params[key] = value
    est.set_params(**params)
    steps = ([("features", feat)] if feat is not None else []) + [("estimator", est)]
    return Pipeline(steps)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split of ``n`` rows (sorted indices)."""
    if not (0.0 <= test_fraction < 1.0):
        raise ParameterValueError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def load(path: str) -> Any:
    import synth_probe

    try:
        return synth_probe.load_dataset(path)
    except (ImportError, AttributeError) as e:
        raise DatasetError(f"datasets cannot be loaded in this installation: {e}") from None


def format_report(report: pd.DataFrame) -> str:
    """The per-parameter table as text."""
    cols = ["kind", "n_choices", "mae", "r2", "accuracy", "balanced_accuracy", "chance_accuracy",
            "majority_rate", "mpr"]
    show = report[[c for c in cols if c in report.columns]].copy()
    with pd.option_context("display.max_rows", None, "display.width", 160, "display.float_format", "{:.3f}".format):
        text = show.to_string(na_rep="")
    cont = report[report.kind == "continuous"]
    disc = report[report.kind == "discrete"]
    tail = [f"mean MPR {report.mpr.mean():.1f} (chance 50) over {len(report)} parameters"]
    if len(cont):
        tail.append(f"continuous: mean R² {cont.r2.mean():.3f}, mean MAE {cont.mae.mean():.3f}")
    if len(disc):
        tail.append(f"discrete: mean accuracy {disc.accuracy.mean():.3f} (chance {disc.chance_accuracy.mean():.3f})")
    return text + "\n" + "\n".join(tail)


def run(args: argparse.Namespace) -> int:
    from synth_probe.metrics import grid_levels, parameter_report
    from synth_probe.models import save_model

    check_output_dir(args.out, "model folder")  # refused before the dataset is read or anything is fitted
    ds = load(args.data)
    ctx = dataset_context(ds)
    synth = args.synth or ctx["synth"]
    settings = ctx["settings"]
    sample_rate = args.sample_rate or (settings.sample_rate if settings is not None else None)
    if sample_rate is None:
        raise DatasetError(f"{args.data}: the dataset does not record its sample rate; pass --sample-rate")
    note_length = settings.note_length if settings is not None else None
    params = ds.params
    columns = select_params(params, args.params)
    n = len(params) if args.limit is None else min(len(params), args.limit)
    train_idx, test_idx = split_indices(n, args.test_fraction, args.seed)
    overrides = dict(_kv(s) for s in (args.set or []))
    pipe = build_pipeline(
        args.model, features=args.features, synth=synth, sample_rate=int(sample_rate),
        note_length=note_length, n_samples=ds.audio.shape[1], overrides=overrides, seed=args.seed, jobs=args.jobs,
    )
    audio = ds.audio
    Y = params[columns]
    print(f"training {args.model} on {len(train_idx)} samples, {len(columns)} parameters "
          f"(features: {args.features or DEFAULT_FEATURES.get(args.model, 'combined')})", file=sys.stderr)
    t0 = time.perf_counter()
    pipe.fit(np.asarray(audio[train_idx]), Y.iloc[train_idx].reset_index(drop=True))
    fit_s = time.perf_counter() - t0
    meta: dict[str, Any] = {
        "data": str(args.data), "model": args.model, "params": columns, "seed": args.seed,
        "test_fraction": args.test_fraction, "limit": args.limit, "n_train": int(len(train_idx)),
        "fit_seconds": round(fit_s, 2), "train_means": {c: float(Y[c].iloc[train_idx].mean()) for c in columns},
        "command": " ".join(sys.argv),
    }
    if settings is not None:  # `match` reads the render settings from here, not from the dataset
        meta["render"] = settings.to_dict()
    if len(test_idx):
        est = pipe.steps[-1][1]
        Xt = np.asarray(audio[test_idx])
        pred = pipe.predict(Xt)
        proba = _proba(pipe, Xt)
        report = parameter_report(Y.iloc[test_idx].reset_index(drop=True), pred, est.synth if hasattr(est, "synth") else None,
                                  proba=proba, levels=grid_levels(Y))
        print(format_report(report))
        meta["test_report"] = json.loads(report.reset_index().to_json(orient="records"))
    out = save_model(pipe, args.out, metadata=meta)
    print(f"saved to {out} (fit {fit_s:.1f} s)", file=sys.stderr)
    return 0


def _proba(pipe, X) -> dict[str, np.ndarray] | None:
    est = pipe.steps[-1][1]
    if not hasattr(est, "predict_discrete_proba"):
        return None
    Z = pipe[:-1].transform(X) if len(pipe.steps) > 1 else X
    try:
        return est.predict_discrete_proba(Z)
    except NotImplementedError:
        return None


def _kv(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ParameterValueError(f"--set expects KEY=VALUE, got {item!r}")
    k, _, v = item.partition("=")
    return k.strip(), _parse_value(v.strip())


def register(subparsers: Any) -> None:
    from synth_probe.models import MODELS

    p = subparsers.add_parser(
        "train", help="fit an estimator on a dataset and save it",
        description="Fit one estimator (features + model) on a dataset, report per-parameter metrics on a "
                    "held-out split, and save the fitted model to a folder (safe formats: skops / torch weights).",
    )
    p.add_argument("model", choices=list(MODELS), metavar="MODEL", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--data", required=True, help="dataset folder (from `synth-probe generate`)")
    p.add_argument("--params", default="all", help="'all' (every varying parameter) or NAME,NAME,...")
    p.add_argument("--features", choices=list(FEATURE_SETS), default=None,
                   help="feature set (default per model: " + ", ".join(f"{k}={v}" for k, v in DEFAULT_FEATURES.items()) + ")")
    p.add_argument("--out", required=True, help="output folder, e.g. studies/models/NAME")
    p.add_argument("--test-fraction", type=float_arg(0.0, 1.0, below=True), default=0.2, help="held-out fraction for the report (default 0.2)")
    p.add_argument("--limit", type=int_arg(1), default=None, help="use only the first N samples")
    p.add_argument("--seed", type=seed_arg(), default=0, help="split and model seed (default 0)")
    p.add_argument("--jobs", type=jobs_arg(), default=None, help="parallel workers for features and models")
    p.add_argument("--synth", default=None, help="synth name, if the dataset does not record it")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=None, help="sample rate, if the dataset does not record it")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="estimator hyperparameter (JSON value), repeatable, e.g. --set n_estimators=200")
    p.set_defaults(func=run)
