"""Can rendering fix the discrete parameters that the suite gets wrong?

The suite reaches twice chance accuracy on one of the seven strong discrete
parameters of the ``timbral`` sampler. An obvious remedy is analysis by synthesis:
take a model's patch, render each choice of one discrete parameter, keep the one
whose render is closest to the target (multi-resolution log-mel distance, as
``synth-probe match`` minimizes), and go through the parameters in turn. This
study measures what that does to the accuracy, on the first test rows of a
finished predictability run (``make predictability`` first), from three starts:

* ``ensemble``: the suite ensemble's whole patch, as a user would have it;
* ``known continuous``: the true patch with only the searched discrete parameters
  taken from the ensemble, so the search errs only where the discrete choices
  themselves sound alike;
* ``ensemble, hill-climbed``: the ensemble's patch after ``synth-probe match``'s
  hill climber has moved all the run's targets for ``--climb`` renders, then the
  passes.

Renders use another render seed than the dataset's, so noise and sample-and-hold
sources do not match the target sample for sample. It prints, after each stage, the
mean distance, the accuracy of each discrete parameter and the R² of a few
continuous ones.

    .venv/bin/python -m synth_probe.research.refine_discrete --rows 300
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import r2_score

from synth_probe.errors import UnknownParameterError
from synth_probe.matching import MatchObjective, hill_climb
from synth_probe.metrics import _patch_matrix
from synth_probe.predictability import saved_ensemble
from synth_probe.research._run import open_saved_run
from synth_probe.saved_run import run_split
from synth_probe.synths.registry import get_synth
from synth_probe.training import dataset_context

STRONG_DISCRETE = ("osc1waveform", "osc2waveform", "filtertype", "lfo1destination", "lfo2destination",
                   "lfo1waveform", "lfo2waveform")


def _refine_rows(starts: np.ndarray, targets: np.ndarray, settings, params: list[str], passes: int,
                 seed: int, climb: int = 0, free: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Search each row: a hill climb of ``climb`` renders over ``free`` (when ``climb`` > 0), then
    ``passes`` coordinate passes over ``params``, each choice rendered.

    Returns the vectors and the distances after each stage: shapes (rows, stages, n_params) and
    (rows, stages), the stages being the start, the climb (when there is one) and each pass.
    """
    synth = get_synth("noisemaker")
    try:
        names, specs = synth.param_names, list(synth.specs)
        index = [names.index(p) for p in params]
        stages = 1 + (climb > 0) + passes
        out = np.zeros((len(starts), stages, starts.shape[1]))
        dist = np.zeros((len(starts), stages))
        for i, (v0, target) in enumerate(zip(starts, targets)):
            objective = MatchObjective(synth, target, settings, seed=seed)
            v = objective.snap(v0)
            d = objective(v)
            out[i, 0], dist[i, 0] = v, d
            k = 1
            if climb > 0:
                found = hill_climb(objective, v, climb, specs=specs, free=free, seed=seed + i, start_distance=d)
                v, d = objective.snap(found.vector), found.distance
                out[i, k], dist[i, k] = v, d
                k += 1
            for _ in range(passes):
                for j in index:
                    for c in specs[j].choice_values:
                        w = v.copy()
                        w[j] = c
                        dw = objective(w)
                        if dw < d:
                            d, v = dw, w
                out[i, k], dist[i, k] = v, d
                k += 1
        return out, dist
    finally:
        synth.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", default="reports", help="folder of the predictability run to start from")
    ap.add_argument("--rows", type=int, default=300, help="first test rows to refine")
    ap.add_argument("--params", default=",".join(STRONG_DISCRETE), help="discrete parameters, in search order")
    ap.add_argument("--passes", type=int, default=2, help="passes over the parameters")
    ap.add_argument("--seed", type=int, default=987654, help="render seed of the search")
    ap.add_argument("--climb", type=int, default=300,
                    help="renders of a hill climb over all the run's targets before the passes, from the ensemble "
                         "(a third start; 0 leaves it out)")
    ap.add_argument("--continuous", default="cutoff,resonance,ampattack,amprelease",
                    help="continuous targets whose R² to print at each stage")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)

    run = open_saved_run(args.reports)
    if run is None:
        return 2
    results, saved, _, ds = run
    if results.get("synth") != "noisemaker":
        print(f"error: the study searches the built-in noisemaker; this run is of {results.get('synth')}",
              file=sys.stderr)
        return 2
    columns = results["columns"]
    params = args.params.split(",")
    unknown = [p for p in params + args.continuous.split(",") if p and p not in columns]
    if unknown:
        print(f"error: {UnknownParameterError(unknown[0], columns, synth='the run')}", file=sys.stderr)
        return 2
    if args.rows < 1 or args.passes < 0 or args.climb < 0:
        print("error: --rows must be at least 1, --passes and --climb at least 0", file=sys.stderr)
        return 2
    specs = {s.name: s for s in ds.specs}
    names = [s.name for s in ds.specs]
    continuous = [p for p in params if not specs[p].is_discrete]
    if continuous:
        print(f"error: the search renders every choice of a discrete parameter; not discrete: {', '.join(continuous)}",
              file=sys.stderr)
        return 2
    settings = dataset_context(ds)["settings"]
    _, test_idx = run_split(results)
    Y_test = ds.params[columns].iloc[test_idx].reset_index(drop=True)
    pred, used = saved_ensemble(results, saved, Y_test)
    if not used:
        print("error: the run has fewer than two ensemble members' predictions; rerun `make predictability`",
              file=sys.stderr)
        return 2
    n = min(args.rows, len(test_idx))
    rows = test_idx[:n]
    patches = ds.params.iloc[rows].reset_index(drop=True)
    synth = get_synth("noisemaker")
    try:
        truth = _patch_matrix(synth, patches, None)
        whole = _patch_matrix(synth, patches, pred.iloc[:n])
        # (label, start, climb renders, whether the continuous values are the true ones)
        runs = [("ensemble", whole, 0, False),
                ("known continuous", _patch_matrix(synth, patches, pred[params].iloc[:n]), 0, True)]
        if args.climb > 0:
            runs.append((f"ensemble, hill-climbed over all {len(columns)} targets", whole, args.climb, False))
    finally:
        synth.close()
    target = np.asarray(ds.audio[rows], dtype=np.float32)
    chunks = np.array_split(np.arange(n), max(1, args.jobs * 4))
    print(f"{n} test rows of {results['data']}, ensemble of {', '.join(used)}; {args.passes} pass(es) over "
          f"{', '.join(params)}", flush=True)

    def accuracy(vecs: np.ndarray, p: str) -> float:
        j, s = names.index(p), specs[p]
        return float(np.mean([s.choice_index(a) == s.choice_index(b) for a, b in zip(vecs[:, j], truth[:, j])]))

    report = [p for p in args.continuous.split(",") if p]
    for label, start, climb, given in runs:
        t0 = time.perf_counter()
        parts = Parallel(n_jobs=args.jobs)(
            delayed(_refine_rows)(start[c], target[c], settings, params, args.passes, args.seed, climb, columns)
            for c in chunks)
        after = np.concatenate([p[0] for p in parts])
        dist = np.concatenate([p[1] for p in parts])
        stages = ["start"] + (["climb"] if climb else []) + [f"pass {k + 1}" for k in range(args.passes)]
        print(f"\nstart: {label} ({time.perf_counter() - t0:.0f} s)")
        print(f"  {'':18s} {'chance':>7s} " + " ".join(f"{s:>7s}" for s in stages))
        print(f"  {'distance (dB)':18s} {'':7s} " + " ".join(f"{d:7.2f}" for d in dist.mean(axis=0)))
        for p in params:
            print(f"  {p:18s} {1 / specs[p].n_choices:7.3f} "
                  + " ".join(f"{accuracy(after[:, k], p):7.3f}" for k in range(len(stages))))
        if not given:
            for p in report:
                j = names.index(p)
                print(f"  {p + ' R²':18s} {'':7s} "
                      + " ".join(f"{r2_score(truth[:, j], after[:, k, j]):7.3f}" for k in range(len(stages))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
