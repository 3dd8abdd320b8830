"""``synth-probe evaluate``: per-parameter metrics of a saved model on a dataset."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.commands._args import int_arg, jobs_arg, seed_arg
from synth_probe.errors import ParameterValueError
from synth_probe.fileio import check_output_file

__all__ = ["register", "run"]

# The CLI imports every command module to build its parser, so the library (scikit-learn, torch, Optuna)
# is imported inside run(), when the command runs, not here.


def run(args: argparse.Namespace) -> int:
    from synth_probe.metrics import audio_report, grid_levels, parameter_report, summarize_audio
    from synth_probe.models import load_model
    from synth_probe.models.io import choose_synth
    from synth_probe.training import (
        audio_rows,
        dataset_context,
        format_report,
        load_training_dataset,
        predict_with_proba,
        split_indices,
    )

    if args.json:
        check_output_file(args.json, "--json file")  # refused before the model is loaded
    if (args.against or args.against_run) and not args.samples:
        raise ParameterValueError("--against and --against-run compare models at --samples K renders; give --samples")
    model = load_model(args.model_path)
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    header = est.model_header_
    meta = header.get("metadata") or {}
    ds = load_training_dataset(args.data)
    columns = list(header.get("columns") or [])
    missing = [c for c in columns if c not in ds.params.columns]
    if missing:
        raise ParameterValueError(
            f"the model predicts {missing}, which dataset {args.data} does not have; it has {list(ds.params.columns)}"
        )
    ctx = dataset_context(ds)
    synth, notices = None, []
    if header.get("synth") or args.synth:  # a plugin comes only from --synth, never from the model folder
        synth, notices = choose_synth(header.get("synth"), args.synth, recorded_sha256=header.get("synth_sha256"),
                                      source=f"model {args.model_path!r}", allow_other_plugin=args.allow_other_plugin)
    elif args.audio or args.samples:  # the dataset's synth re-renders the predictions
        synth, notices = choose_synth(ctx["synth"], None, recorded_sha256=ctx["synth_sha256"],
                                      source=f"dataset {args.data!r}")
    for note in notices:
        print(f"notice: {note}", file=sys.stderr)
    n = len(ds.params) if args.limit is None else min(len(ds.params), args.limit)
    if args.split == "test":
        if Path(str(meta.get("data", ""))).resolve() != Path(args.data).resolve():
            raise ParameterValueError("--split test needs the dataset the model was trained on "
                                      f"({meta.get('data')!r}); use --split all for another dataset")
        n_used = len(ds.params) if meta.get("limit") is None else min(len(ds.params), int(meta["limit"]))
        _, idx = split_indices(n_used, float(meta.get("test_fraction", 0.2)), int(meta.get("seed", 0)))
        idx = idx[idx < n]
    else:
        idx = np.arange(n)
    if len(idx) == 0:
        raise ParameterValueError("no samples to evaluate")
    if ctx["renders"] is not None and (args.audio or args.samples):
        raise ParameterValueError("--audio and --samples re-render one note; this dataset holds a probe of "
                                  f"{len(ctx['renders'])} renders per patch (leave them out)")
    X = audio_rows(ds, idx)  # a probe dataset's renders side by side
    Y = ds.params[columns].iloc[idx].reset_index(drop=True)
    levels = grid_levels(ds.params[columns])
    pred, proba = predict_with_proba(model, X, levels) if hasattr(model, "steps") else (model.predict(X), None)
    if not hasattr(pred, "columns"):
        pred = pd.DataFrame(np.asarray(pred).reshape(len(X), -1), columns=columns)
    report = parameter_report(Y, pred, synth, proba=proba, levels=levels)
    print(format_report(report))
    result: dict[str, Any] = {
        "model": str(args.model_path), "data": str(args.data), "n": int(len(idx)), "split": args.split,
        "parameters": json.loads(report.reset_index().to_json(orient="records")),
        "mean_mpr": float(report.mpr.mean()),
    }
    if args.audio:
        if ctx["settings"] is None:
            raise ParameterValueError("--audio needs a dataset that records its render settings")
        k = min(int(args.audio), len(idx))
        seeds = _seeds(ds, idx[:k])
        baseline = meta.get("train_means")
        dist = audio_report(
            synth, ds.params.iloc[idx[:k]], pred.iloc[:k], ctx["settings"], seeds=seeds,
            target_audio=X[:k], baseline=baseline, jobs=args.jobs or 1,
        )
        summary = summarize_audio(dist)
        print(f"\naudio-domain distances on {k} re-rendered predictions (baseline = training-mean patch):")
        print(summary.to_string(float_format="{:.3f}".format))
        result["audio"] = json.loads(summary.to_json())
    if args.samples:
        result["best_of_k"] = _at_renders(args, model, ds, idx, X, ctx, synth)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _at_renders(args: argparse.Namespace, model: Any, ds: Any, idx: np.ndarray, X: np.ndarray, ctx: dict[str, Any],
                synth_name: str | None) -> dict[str, Any]:
    """``--samples k``: every model's answer at k renders per sound (best of k draws, or prediction + search)."""
    from synth_probe.best_of_k import compare_at_renders, format_comparison
    from synth_probe.metrics import grid_levels
    from synth_probe.models import load_model
    from synth_probe.synths.registry import get_synth

    if ctx["settings"] is None or synth_name is None:
        raise ParameterValueError("--samples needs a dataset that records its synth and render settings")
    models = {Path(args.model_path).name or str(args.model_path): model}
    if args.against:
        label = Path(args.against).name or str(args.against)
        models[label if label not in models else f"{label} (--against)"] = load_model(args.against)
    n = len(idx) if args.audio == 0 else min(len(idx), int(args.audio))
    if args.against_run:
        from synth_probe.saved_run import saved_answers

        saved = saved_answers(args.against_run, args.data, len(ds.params), idx[:n], args.run_model)
        models[f"{saved.label} ({Path(args.against_run).name or args.against_run})"] = saved
    synth = get_synth(synth_name)
    try:
        out = compare_at_renders(models, synth, ctx["settings"], X[:n], ds.params.iloc[idx[:n]].reset_index(drop=True),
                                 k=int(args.samples), seeds=_seeds(ds, idx[:n]), random_state=args.seed,
                                 levels=grid_levels(ds.params))
    finally:
        synth.close()
    print(f"\nat {args.samples} renders per sound, on {n} sounds:")
    print(format_comparison(out))
    return {"k": int(args.samples), "n": int(n), "models": out}


def _seeds(ds: Any, idx: np.ndarray) -> np.ndarray | None:
    seeds = getattr(ds, "seeds", None)
    if seeds is None and hasattr(ds, "meta") and isinstance(ds.meta, dict):
        seeds = ds.meta.get("seeds")
    return None if seeds is None else np.asarray(seeds)[idx]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="per-parameter metrics of a saved model on a dataset",
        description="Load a model saved by `synth-probe train` and print MAE/R² (continuous), accuracy vs "
                    "chance (discrete) and MPR (all, chance 50) per parameter.",
    )
    p.add_argument("model_path", metavar="MODEL_PATH", help="folder written by `synth-probe train --out`")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", choices=["all", "test"], default="all",
                   help="evaluate every sample, or the held-out split of the training run (same dataset)")
    p.add_argument("--limit", type=int_arg(1), default=None, help="use only the first N samples")
    p.add_argument("--audio", type=int_arg(0), default=0, metavar="N",
                   help="also re-render N predictions and measure audio distances beside the mean patch")
    p.add_argument("--jobs", type=jobs_arg(), default=None, help="render workers for --audio")
    p.add_argument("--samples", type=int_arg(1), default=None, metavar="K",
                   help="also answer each sound at K renders: a posterior model with the best of K drawn patches, "
                        "a regression model with its prediction plus a (K-1)-render hill climb; prints the audio "
                        "distance and the parameter metrics of the chosen patch (on the first --audio N sounds "
                        "when --audio is given)")
    p.add_argument("--against", default=None, metavar="MODEL2",
                   help="with --samples: a second saved model answered the same way on the same sounds "
                        "(e.g. a regression model beside a posterior)")
    p.add_argument("--against-run", default=None, metavar="REPORTS_DIR",
                   help="with --samples and --split test: also a finished predictability run on the same dataset "
                        "and split, its saved test predictions (see --run-model) answered as a regression model's")
    p.add_argument("--run-model", default="ensemble", metavar="NAME",
                   help="with --against-run: the run's model whose predictions to use (default: ensemble, the "
                        "suite ensemble of its saved models)")
    p.add_argument("--seed", type=seed_arg(), default=0, help="seed of the posterior's draws (default 0)")
    p.add_argument("--synth", default=None,
                   help="synth name or plugin path (default: the model's synth, else the dataset's, if built in; "
                        "a plugin is never loaded from the model folder or dataset and must be given here)")
    p.add_argument("--allow-other-plugin", action="store_true",
                   help="use a --synth plugin whose sha256 differs from the one the model was trained with")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=run)
