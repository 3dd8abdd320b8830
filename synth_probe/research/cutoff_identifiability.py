"""How much of the cutoff can the audio tell apart from the filter envelope?

On the ``timbral`` sampler the filter's pre-square cutoff during the sustain of a
note is, before LFOs and the free AD, ``cutoff + (2·contour − 1)³ · (20^sustain − 1) / 19``
(depth and sustain level of reference ``tal-noisemaker.md`` §1–2; keyfollow adds at most 0.023 at note
60). A spectrogram shows that sum; only the envelope's motion (attack, decay,
release, when the amp envelope leaves them audible) separates its terms.

This script trains one CNN, with the predictability suite's settings, on two
targets at once — the cutoff knob and that sum — on the same rows and split,
and prints the R² of each on held-out rows: if the sum were recovered much
better than the knob, the envelope would be what hides the knob. It then
breaks the knob's error down by filter family (a twelfth of the patches have
the filter off) and, for the low-pass types, by range of the knob.

    .venv/bin/python -m synth_probe.research.cutoff_identifiability --data data/noisemaker-timbral-10k
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from synth_probe.pipeline import build_estimator, input_shape
from synth_probe.predictability import PredictabilityConfig, compute_features, ensure_dataset, suite_feature_steps
from synth_probe.synths.registry import get_synth
from synth_probe.training import dataset_context, split_indices


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/noisemaker-timbral-10k",
                    help="a timbral dataset (rendered or completed first: --n renders, as `predictability` does)")
    ap.add_argument("--n", type=int, default=10000, help="renders in the dataset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=".cache/features", help="feature cache (the predictability study's)")
    args = ap.parse_args(argv)

    ds = ensure_dataset("noisemaker", args.data, args.n, sampler="timbral", progress=False,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    ctx = dataset_context(ds)
    settings = ctx["settings"]
    config = PredictabilityConfig(models=("cnn",), seed=args.seed)
    n = len(ds.params)
    train_idx, test_idx = split_indices(n, config.test_fraction, config.seed)
    step = suite_feature_steps(int(settings.sample_rate), settings.note_length, config.jobs)["logmel"]
    F = compute_features(ds, "logmel", step, np.concatenate([train_idx, test_idx]), cache_dir=args.cache,
                         log=lambda s: print(s, file=sys.stderr, flush=True))
    F_tr, F_te = F[:len(train_idx)], F[len(train_idx):]
    p = ds.params
    offset = (2 * p["filtercontour"] - 1) ** 3 * (20.0 ** p["filtersustain"] - 1) / 19  # envelope depth x level
    Y = pd.DataFrame({"cutoff": p["cutoff"], "cutoff_plus_envelope_at_sustain": (p["cutoff"] + offset + 1) / 3})
    print(f"{args.data}: {n} rows; variance of cutoff {p['cutoff'].var():.4f}, "
          f"of the envelope's sustain offset {offset.var():.4f}")
    est = build_estimator("cnn", input_shape=input_shape(step, settings.n_samples), seed=config.seed,
                          overrides=dict(max_epochs=config.epochs, patience=config.patience))
    t0 = time.perf_counter()
    est.fit(F_tr, Y.iloc[train_idx].reset_index(drop=True))
    pred = est.predict(F_te)
    truth = Y.iloc[test_idx].reset_index(drop=True)
    print(f"CNN fit {time.perf_counter() - t0:.0f} s on {len(train_idx)} rows; held-out R² on {len(test_idx)} rows:")
    for c in Y.columns:
        print(f"  {c:32s} {r2_score(truth[c], pred[c]):.3f}")
    # where the knob is lost: per filter family, and per range of the knob
    spec = get_synth(str(ctx["synth"]) if ctx.get("synth") else "noisemaker").spec("filtertype")
    names = np.asarray(spec.choices)[np.rint(p["filtertype"].to_numpy()[test_idx] * (spec.n_choices - 1)).astype(int)]
    family = np.select([np.char.find(names.astype(str), "LP") >= 0, np.char.find(names.astype(str), "HP") >= 0,
                        np.char.find(names.astype(str), "BP") >= 0], ["low-pass", "high-pass", "band-pass"],
                       default=names.astype(str))
    t, e = truth["cutoff"].to_numpy(), pred["cutoff"].to_numpy()
    print("cutoff by filter family (rows, R², MAE):")
    for f in ("low-pass", "high-pass", "band-pass", "Notch", "Off"):
        m = family == f
        if m.sum() > 10:
            print(f"  {f:10s} {m.sum():5d}  {r2_score(t[m], e[m]):6.3f}  {np.abs(t[m] - e[m]).mean():.3f}")
    print("cutoff MAE by range of the knob, low-pass only (f_c = ((8^v - 1) / 7)^2 * 22.05 kHz):")
    lp = family == "low-pass"
    for lo in np.arange(0.0, 1.0, 0.2):
        m = lp & (t >= lo) & (t < lo + 0.2)
        f_lo, f_hi = (((8.0 ** np.array([lo, lo + 0.2]) - 1) / 7) ** 2 * 22050)
        print(f"  {lo:.1f}-{lo + 0.2:.1f} ({f_lo:6.0f}-{f_hi:6.0f} Hz) {m.sum():5d}  MAE {np.abs(t[m] - e[m]).mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
