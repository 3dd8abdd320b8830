"""``synth-probe train``: fit one estimator on a dataset and save it."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, key_value, sample_rate_arg, seed_arg
from synth_probe.errors import DatasetError
from synth_probe.families import FAMILIES, FEATURE_SETS
from synth_probe.fileio import check_output_dir

__all__ = ["register", "run"]


# The CLI imports every command module to build its parser, so the library (scikit-learn, torch, Optuna)
# is imported inside run(), when the command runs, not here.


def run(args: argparse.Namespace) -> int:
    from synth_probe.metrics import grid_levels, parameter_report
    from synth_probe.models import save_model
    from synth_probe.pipeline import build_pipeline
    from synth_probe.training import (
        audio_rows,
        dataset_context,
        format_report,
        load_training_dataset,
        predict_with_proba,
        select_params,
        split_indices,
        target_layout,
    )

    check_output_dir(args.out, "model folder")  # refused before the dataset is read or anything is fitted
    ds = load_training_dataset(args.data)
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
    overrides = dict(key_value(s) for s in (args.set or []))
    # the whole table's grids: the model's classes (parameters drawn from a grid, as the inversynth sampler
    # draws them, are learned as classes over their levels) and the report's ranks
    levels = grid_levels(params[columns])
    layout = target_layout(columns, synth=synth) if synth else target_layout(columns, specs=ds.specs)
    pipe = build_pipeline(
        args.model, features=args.features, synth=synth, discrete=layout, sample_rate=int(sample_rate),
        note_length=note_length, n_samples=ds.audio.shape[-1], overrides=overrides, seed=args.seed, jobs=args.jobs,
        renders=ctx["renders"],  # a probe dataset: features per render
        levels=levels,
    )
    Y = params[columns]
    print(f"training {args.model} on {len(train_idx)} samples, {len(columns)} parameters "
          f"(features: {args.features or FAMILIES[args.model].features})", file=sys.stderr)
    t0 = time.perf_counter()
    pipe.fit(audio_rows(ds, train_idx), Y.iloc[train_idx].reset_index(drop=True))
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
        Xt = audio_rows(ds, test_idx)
        pred, proba = predict_with_proba(pipe, Xt, levels)
        report = parameter_report(Y.iloc[test_idx].reset_index(drop=True), pred, est.synth if hasattr(est, "synth") else None,
                                  proba=proba, levels=levels)
        print(format_report(report))
        meta["test_report"] = json.loads(report.reset_index().to_json(orient="records"))
    out = save_model(pipe, args.out, metadata=meta)
    print(f"saved to {out} (fit {fit_s:.1f} s)", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="fit an estimator on a dataset and save it",
        description="Fit one estimator (features + model) on a dataset, report per-parameter metrics on a "
                    "held-out split, and save the fitted model to a folder (safe formats: skops / torch weights).",
    )
    p.add_argument("model", choices=list(FAMILIES), metavar="MODEL", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--data", required=True, help="dataset folder (from `synth-probe generate`)")
    p.add_argument("--params", default="all", help="'all' (every varying parameter) or NAME,NAME,...")
    p.add_argument("--features", choices=list(FEATURE_SETS), default=None,
                   help="feature set (default per model: " + ", ".join(f"{k}={f.features}" for k, f in FAMILIES.items()) + ")")
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
