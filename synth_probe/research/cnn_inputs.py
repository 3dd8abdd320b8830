"""Does the CNN miss cutoff, amp attack or the waveforms for want of time or frequency detail?

The suite's CNN sees 64 log-mel bands over 0-11 kHz at a 23 ms hop (``n_fft`` 1024,
hop 512). This script trains the same CNN, with the suite's settings, on the same rows
and split of a predictability run, with three inputs:

* ``standard``: the suite's log-mel (read from the feature cache when it is there);
* ``onset``: the first 0.4 s at a 2.9 ms hop (``n_fft`` 256, hop 64, 48 bands), where the
  filter envelope starts from the cutoff knob and the amp attack shows;
* ``hires``: 128 bands up to 6 kHz (``n_fft`` 2048), which resolve the harmonics of a
  note-60 oscillator up to about 3 kHz (waveform shapes).

It prints R² (continuous) or accuracy (discrete) per target and input, and for the
continuous targets the R² of each input's predictions averaged with the suite's saved
ensemble (``reports/predictability_predictions.npz``; run ``make predictability`` first).

    .venv/bin/python -m synth_probe.research.cnn_inputs
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from synth_probe.features import LogMelSpectrogram
from synth_probe.pipeline import build_estimator
from synth_probe.predictability import compute_features, suite_feature_steps
from synth_probe.research._run import open_saved_run
from synth_probe.saved_run import run_split
from synth_probe.training import dataset_context, target_layout

TARGETS = "cutoff,ampattack,osc1waveform,osc2waveform,lfo1destination,lfo1waveform,lfo2destination,filtertype"
#: name -> (LogMelSpectrogram arguments, seconds of audio from the start or None for all); None: the suite's
INPUTS = {
    "standard": None,
    "onset": (dict(n_fft=256, hop_length=64, n_mels=48), 0.4),
    "hires": (dict(n_fft=2048, hop_length=512, n_mels=128, fmax=6000.0), None),
}


def _head(X: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples of each row."""
    return X[:, :n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", default="reports", help="folder of the predictability run to compare with")
    ap.add_argument("--targets", default=TARGETS, help="parameters, comma-separated")
    ap.add_argument("--inputs", default=",".join(INPUTS), help=f"comma-separated, of {', '.join(INPUTS)}")
    ap.add_argument("--cache", default=".cache/features", help="the predictability study's feature cache")
    args = ap.parse_args(argv)

    run = open_saved_run(args.reports)
    if run is None:
        return 2
    results, saved, members, ds = run
    inputs = [x.strip() for x in args.inputs.split(",") if x.strip()]
    unknown = [x for x in inputs if x not in INPUTS]
    if unknown:
        print(f"error: unknown input(s) {', '.join(unknown)}; choose from {', '.join(INPUTS)}", file=sys.stderr)
        return 2
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    missing = [t for t in targets if t not in results["columns"]]
    if missing:
        print(f"error: {', '.join(missing)} not among the run's targets", file=sys.stderr)
        return 2
    cfg = results["config"]
    settings = dataset_context(ds)["settings"]
    sr = int(settings.sample_rate)
    train_idx, test_idx = run_split(results)
    rows = np.concatenate([train_idx, test_idx])
    Y = ds.params[targets]
    y_test = Y.iloc[test_idx].reset_index(drop=True)
    discrete = {s.name for s in ds.specs if s.is_discrete}
    ensemble = np.mean([saved[f"pred:{m}"] for m in members], axis=0) if members else None

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    scores: dict[str, dict[str, float]] = {}
    with_ensemble: dict[str, dict[str, float]] = {}
    for name in inputs:
        if INPUTS[name] is None:  # the suite's own step and cache
            logmel = step = suite_feature_steps(sr, settings.note_length, 2)["logmel"]
            F = compute_features(ds, "logmel", step, rows, cache_dir=args.cache, log=log)
        else:
            kwargs, seconds = INPUTS[name]
            logmel = step = LogMelSpectrogram(sample_rate=sr, n_jobs=2, **kwargs)
            if seconds is not None:
                step = make_pipeline(FunctionTransformer(_head, kw_args={"n": int(seconds * sr)}), logmel)
            F = compute_features(ds, name, step, rows, log=log)  # not cached: the study's own inputs
        n_mels = int(logmel.n_mels)
        est = build_estimator("cnn", input_shape=(n_mels, F.shape[1] // n_mels), synth=results["synth"],
                              discrete=target_layout(targets, specs=ds.specs), seed=int(cfg["seed"]),
                              overrides=dict(max_epochs=int(cfg["epochs"]), patience=int(cfg["patience"])))
        t0 = time.perf_counter()
        est.fit(F[:len(train_idx)], Y.iloc[train_idx].reset_index(drop=True))
        pred = est.predict(F[len(train_idx):])
        log(f"{name}: input {n_mels}x{F.shape[1] // n_mels}, fit {time.perf_counter() - t0:.0f} s")
        scores[name], with_ensemble[name] = {}, {}
        for t in targets:
            y, p = y_test[t].to_numpy(), pred[t].to_numpy()
            if t in discrete:
                scores[name][t] = float(np.mean(np.isclose(y, p, atol=1e-6)))
            else:
                scores[name][t] = float(r2_score(y, p))
                if ensemble is not None:
                    e = ensemble[:, results["columns"].index(t)]
                    with_ensemble[name][t] = float(r2_score(y, (p + e) / 2))
    print("target".ljust(18) + "".join(f"{x:>10}" for x in inputs) + "   (R², or accuracy for discrete targets)")
    for t in targets:
        print(t.ljust(18) + "".join(f"{scores[x][t]:10.3f}" for x in inputs))
    if ensemble is not None:
        print(f"averaged with the suite's ensemble ({', '.join(members)}):")
        for t in targets:
            if t not in discrete:
                e = r2_score(y_test[t].to_numpy(), ensemble[:, results["columns"].index(t)])
                print(t.ljust(18) + "".join(f"{with_ensemble[x][t]:10.3f}" for x in inputs) + f"   (ensemble {e:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
