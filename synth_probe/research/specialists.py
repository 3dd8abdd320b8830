"""Does a model trained on one parameter beat the suite, which trains each model on all of them?

The predictability suite fits every model to all 43 varied parameters at once. This
script fits *specialists* — the suite's torch models with one target each, with the
suite's settings, on the same rows, split and cached log-mel features — and compares
them on the held-out rows with the suite's own models and ensemble, read from
``reports/predictability_predictions.npz`` (so run ``make predictability`` first, on
the same dataset). It prints the R² of each specialist, of their mean, and of their
mean averaged with the suite's ensemble.

    .venv/bin/python -m synth_probe.research.specialists --params ampattack,cutoff
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.metrics import r2_score

from synth_probe.pipeline import build_estimator, input_shape
from synth_probe.predictability import PredictabilityConfig, compute_features, suite_feature_steps
from synth_probe.research._run import open_saved_run
from synth_probe.training import dataset_context, split_indices, target_layout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", default="reports", help="folder of the predictability run to compare with")
    ap.add_argument("--params", default="ampattack,cutoff", help="continuous parameters, comma-separated")
    ap.add_argument("--models", default="cnn,autoencoder", help="torch models to train as specialists")
    ap.add_argument("--cache", default=".cache/features", help="feature cache (the predictability study's)")
    args = ap.parse_args(argv)

    run = open_saved_run(args.reports)
    if run is None:
        return 2
    results, saved, members, ds = run
    cfg = results["config"]
    config = PredictabilityConfig(models=tuple(args.models.split(",")), seed=cfg["seed"],
                                  test_fraction=cfg["test_fraction"], epochs=cfg["epochs"], patience=cfg["patience"],
                                  jobs=cfg["jobs"])
    settings = dataset_context(ds)["settings"]
    train_idx, test_idx = split_indices(len(ds.params), config.test_fraction, config.seed)
    step = suite_feature_steps(int(settings.sample_rate), settings.note_length, config.jobs)["logmel"]
    F = compute_features(ds, "logmel", step, np.concatenate([train_idx, test_idx]), cache_dir=args.cache,
                         log=lambda s: print(s, file=sys.stderr, flush=True))
    F_tr, F_te = F[:len(train_idx)], F[len(train_idx):]
    columns = results["columns"]
    for p in args.params.split(","):
        j = columns.index(p)
        y_tr = ds.params[[p]].iloc[train_idx].reset_index(drop=True)
        y = ds.params[p].to_numpy()[test_idx]
        suite = {m: r2_score(y, saved[f"pred:{m}"][:, j]) for m in members}
        ens = np.mean([saved[f"pred:{m}"][:, j] for m in members], axis=0)
        print(f"{p}: suite " + ", ".join(f"{m} {v:.3f}" for m, v in suite.items())
              + f"; suite ensemble {r2_score(y, ens):.3f}", flush=True)
        spec = []
        for m in config.models:
            est = build_estimator(m, input_shape=input_shape(step, settings.n_samples), synth="noisemaker",
                                  discrete=target_layout([p], specs=ds.specs), overrides=config.suite_overrides(m),
                                  seed=config.seed, jobs=config.jobs)
            t0 = time.perf_counter()
            est.fit(F_tr, y_tr)
            pred = est.predict(F_te)[p].to_numpy()
            spec.append(pred)
            print(f"  specialist {m}: R² {r2_score(y, pred):.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        mean = np.mean(spec, axis=0)
        print(f"  specialists' mean {r2_score(y, mean):.3f}; with the suite ensemble {r2_score(y, (mean + ens) / 2):.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
