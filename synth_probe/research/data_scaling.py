"""Would more renders help? A model's skill against the number of its training rows.

The predictability suite is measured at one dataset size. This script fits the suite's models
(its settings, features and seeded split) on the first k training rows of a dataset for every k
of ``--sizes`` — what a smaller dataset drawn with the same seed would have given — and scores
each fit on the same held-out test rows. Per model and parameter it prints the skill (R², or the
balanced accuracy's gain over chance) and the MPR at each size, the gain per doubling of the rows
(a least-squares line against log2 of the rows) and the gain over the last doubling. For each
``--target NAME=VALUE`` (a parameter's skill, ``NAME:mpr`` its MPR, or ``mean_mpr`` / ``mean_skill``) it prints the
training rows at which that line would reach the value: an *extrapolation*, and an optimistic one
(learning curves flatten: their error falls as a power of the rows, so the gain per doubling
shrinks). Results are saved after every fit to ``OUT/data_scaling.json``; a rerun with the same
data and settings keeps the finished fits.

    .venv/bin/python -m synth_probe.research.data_scaling --data data/inv-one-20k --models autoencoder \\
        --sizes 2250,4500,9000,18000 --target mean_mpr=85 --out reports/scaling
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError, ParameterValueError, SynthProbeError, UnknownParameterError
from synth_probe.fileio import read_json
from synth_probe.metrics import grid_levels
from synth_probe.pipeline import input_shape as step_input_shape
from synth_probe.predictability import TORCH_MODELS, PredictabilityConfig, compute_features, fit_one, suite_feature_steps
from synth_probe.training import (dataset_context, load_training_dataset, probe_renders, select_params, split_indices,
                                  target_layout)
from synth_probe.util import atomic_text

__all__ = ["parse_sizes", "parse_targets", "trend", "rows_to_reach", "run_scaling", "main"]

RESULTS = "data_scaling.json"
#: the summary figures a target may name besides a parameter
SUMMARIES = ("mean_mpr", "mean_skill")


def parse_sizes(text: str | None, n_train: int) -> list[int]:
    """Training-row counts, ascending; default: an eighth, a quarter, a half and all of ``n_train``."""
    if not text:
        return sorted({max(2, n_train // 8), max(2, n_train // 4), max(2, n_train // 2), n_train})
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ParameterValueError(f"--sizes takes whole numbers of training rows, comma-separated; got {text!r}")
    if not sizes or sizes[0] < 2:
        raise ParameterValueError(f"--sizes needs at least one size of 2 rows or more; got {text!r}")
    if sizes[-1] > n_train:
        raise ParameterValueError(f"--sizes asks for {sizes[-1]} training rows; the dataset's split has {n_train} "
                                  f"(sizes up to {n_train})")
    return sizes


def parse_targets(items: Sequence[str], columns: Sequence[str]) -> dict[str, float]:
    """``NAME=VALUE`` items to ``{name: value}``; a name is a parameter of the run (its skill), ``PARAM:mpr``
    (its MPR) or a summary."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ParameterValueError(f"--target takes NAME=VALUE (e.g. mean_mpr=85, cutoff=0.8 or cutoff:mpr=99); "
                                      f"got {item!r}")
        param = name[:-len(":mpr")] if name.endswith(":mpr") else name
        if name not in SUMMARIES and param not in columns:
            raise UnknownParameterError(param, [*SUMMARIES, *columns], "this run",
                                        extra="A target names a parameter of the run (PARAM:mpr for its MPR) "
                                              "or a summary.")
        try:
            out[name] = float(value)
        except ValueError:
            raise ParameterValueError(f"--target {name}: {value!r} is not a number")
    return out


def trend(n_rows: Sequence[int], values: Sequence[float | None]) -> dict[str, Any] | None:
    """The least-squares line of ``values`` against log2(rows): its gain per doubling and the last doubling's.

    None with fewer than two finite values.
    """
    pts = [(math.log2(n), float(v)) for n, v in zip(n_rows, values) if v is not None and math.isfinite(float(v))]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    slope, intercept = np.polyfit(x, y, 1)
    last = (y[-1] - y[-2]) / (x[-1] - x[-2])
    return {"per_doubling": float(slope), "intercept": float(intercept), "last_doubling": float(last),
            "max_residual": float(np.max(np.abs(y - (intercept + slope * x))))}


def rows_to_reach(line: Mapping[str, Any] | None, target: float, measured: float) -> float | None:
    """Training rows at which ``line`` reaches ``target``: 0 when ``measured`` already does, None if it never does."""
    if measured >= target:
        return 0.0
    if line is None or line["per_doubling"] <= 0:
        return None
    return float(2.0 ** ((target - line["intercept"]) / line["per_doubling"]))


def _fingerprint(ds: Any, config: PredictabilityConfig, columns: Sequence[str]) -> str:
    d = {"data": str(Path(ds.path).resolve()), "n": len(ds.params), "columns": list(columns),
         "seed": config.seed, "test_fraction": config.test_fraction, "epochs": config.epochs,
         "patience": config.patience}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"n_train": entry["n_train"], "fit_seconds": entry["fit_seconds"], "mean_mpr": entry["mean_mpr"],
            "mean_skill": entry["mean_skill"],
            "parameters": {r["parameter"]: {"skill": r.get("skill"), "mpr": r.get("mpr")} for r in entry["parameters"]}}


def _trends(fits: Mapping[str, Mapping[str, Any]], columns: Sequence[str], targets: Mapping[str, float]
            ) -> dict[str, Any]:
    """Per figure (a parameter's skill, mean MPR, mean skill): its values by size, its line and the targets."""
    sizes = sorted(fits, key=int)
    n = [int(k) for k in sizes]
    series = {"mean_mpr": [fits[k]["mean_mpr"] for k in sizes], "mean_skill": [fits[k]["mean_skill"] for k in sizes]}
    for c in columns:
        series[c] = [fits[k]["parameters"].get(c, {}).get("skill") for k in sizes]
        series[f"{c}:mpr"] = [fits[k]["parameters"].get(c, {}).get("mpr") for k in sizes]
    out: dict[str, Any] = {}
    for name, values in series.items():
        line = trend(n, values)
        entry: dict[str, Any] = {"values": values, "trend": line}
        if name in targets and values[-1] is not None:
            entry["target"] = targets[name]
            entry["rows_to_reach"] = rows_to_reach(line, targets[name], float(values[-1]))
        out[name] = entry
    return out


def run_scaling(ds: Any, config: PredictabilityConfig, sizes: Sequence[int] | None, targets: Mapping[str, float],
                out: Path, cache_dir: str | None, log: Any) -> dict[str, Any]:
    """Fit every model of ``config`` at every size; the results, saved to ``out/data_scaling.json`` after each fit."""
    ctx = dataset_context(ds)
    settings, synth = ctx["settings"], ctx["synth"]
    if settings is None:
        raise DatasetError("the dataset does not record its render settings")
    columns = select_params(ds.params, config.params)
    train_idx, test_idx = split_indices(len(ds.params), float(config.test_fraction), int(config.seed))
    sizes = list(sizes) if sizes else parse_sizes(None, len(train_idx))
    fp = _fingerprint(ds, config, columns)
    path = out / RESULTS
    prev = (read_json(path, error=DatasetError, what="the earlier data-scaling results",
                      hint=f"move {path} away to start again") if path.exists() else None)
    results: dict[str, Any] = {"format": "synth_probe.data_scaling", "fingerprint": fp, "data": str(ds.path),
                               "n_test": int(len(test_idx)), "columns": columns, "models": {}}
    if prev is not None and prev.get("fingerprint") != fp:
        raise DatasetError(f"{path} holds the fits of another dataset or other settings ({prev.get('data')}, "
                           f"parameters {','.join(prev.get('columns', []))}); give another --out, or move it away")
    if prev is not None:
        results["models"] = {m: {"fits": dict(v.get("fits", {}))} for m, v in prev.get("models", {}).items()}
    Y = ds.params[columns].reset_index(drop=True)
    levels = grid_levels(Y)
    layout = target_layout(columns, synth=synth) if synth else target_layout(columns, specs=ds.specs)
    steps = suite_feature_steps(int(settings.sample_rate), settings.note_length, int(config.jobs), probe_renders(ds),
                                mel_bands=config.mel_bands, mel_hop=config.mel_hop)
    Y_train, Y_test = Y.iloc[train_idx].reset_index(drop=True), Y.iloc[test_idx].reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    for model in config.models:
        fits = results["models"].setdefault(model, {"fits": {}})["fits"]
        todo = [k for k in sizes if str(k) not in fits]
        if todo:
            name = "logmel" if model in TORCH_MODELS else "tabular"
            F = compute_features(ds, name, steps[name], np.concatenate([train_idx, test_idx]),
                                 chunk=int(config.chunk), cache_dir=cache_dir, log=log)
            F_tr, F_te = F[:len(train_idx)], F[len(train_idx):]
            for k in todo:
                entry, _, _ = fit_one(model, config, synth=synth, sample_rate=int(settings.sample_rate),
                                      note_length=settings.note_length, n_samples=settings.n_samples,
                                      input_shape=step_input_shape(steps["logmel"], settings.n_samples),
                                      F_train=F_tr[:k], Y_train=Y_train.iloc[:k], F_test=F_te, Y_test=Y_test,
                                      log=log, levels=levels, discrete=layout)
                fits[str(k)] = _summary(entry)
                atomic_text(path, json.dumps(results, indent=1))
        kept = {k: fits[str(k)] for k in sizes if str(k) in fits}
        results["models"][model]["trends"] = _trends(kept, columns, targets)
    atomic_text(path, json.dumps(results, indent=1))
    return results


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def _rows(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 and x < 1e9 else f"{x:.2g}"


def _describe(e: Mapping[str, Any], digits: int, largest: int) -> str:
    """One figure's values by size, its gain per doubling and, with a target, the rows that would reach it."""
    line = e["trend"]
    text = " / ".join(_fmt(v, digits) for v in e["values"])
    if line:
        text += f" ({line['per_doubling']:+.{digits + 1}f} per doubling, last {line['last_doubling']:+.{digits + 1}f})"
    if "target" in e:
        r, t = e["rows_to_reach"], e["target"]
        text += (f"; {t:g} reached" if r == 0 else f"; {t:g} never, at this trend" if r is None
                 else f"; {t:g} at about {_rows(r)} training rows (extrapolated, {_rows(r / largest)}x the largest)")
    return text


def _print(results: Mapping[str, Any], sizes: Sequence[int]) -> None:
    for model, m in results["models"].items():
        tr = m.get("trends")
        if not tr:
            continue
        print(f"\n{model} (test rows: {results['n_test']}); training rows: " + " / ".join(str(k) for k in sizes))
        for name in SUMMARIES:
            print(f"  {name}: {_describe(tr[name], 1 if name == 'mean_mpr' else 3, sizes[-1])}")
        for c in results["columns"]:
            print(f"  {c}: skill {_describe(tr[c], 3, sizes[-1])}; MPR {_describe(tr[c + ':mpr'], 1, sizes[-1])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset folder (synth-probe generate)")
    ap.add_argument("--models", default="gbm", help="suite models, comma-separated (default gbm)")
    ap.add_argument("--params", default="all", help="parameters to fit: all (every varied one) or A,B,...")
    ap.add_argument("--sizes", default=None, help="training rows, comma-separated (default: 1/8, 1/4, 1/2, all)")
    ap.add_argument("--target", action="append", default=[], help="NAME=VALUE: rows needed to reach it (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default=".cache/features", help="feature cache (the predictability study's)")
    ap.add_argument("--out", default="reports/scaling", help="folder of data_scaling.json")
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        ds = load_training_dataset(args.data)
        config = PredictabilityConfig(models=tuple(args.models.split(",")), params=args.params, seed=args.seed,
                                      test_fraction=args.test_fraction, epochs=args.epochs, patience=args.patience,
                                      jobs=args.jobs, audio=0)
        columns = select_params(ds.params, config.params)
        n_train = len(split_indices(len(ds.params), config.test_fraction, config.seed)[0])
        sizes = parse_sizes(args.sizes, n_train)
        targets = parse_targets(args.target, columns)
        results = run_scaling(ds, config, sizes, targets, Path(args.out), args.cache, log)
    except SynthProbeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the finished fits are kept in {Path(args.out) / RESULTS}; rerun to go on",
              file=sys.stderr)
        return 130
    _print(results, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
