"""``synth-probe predictability``: train the estimator suite and add measured predictability to the report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, key_value, seed_arg
from synth_probe.fileio import check_output_dir
from synth_probe.probe import probe_arg
from synth_probe.report.pages import write_predictability_report

__all__ = ["register", "run", "DEFAULT_N"]

#: default dataset size (renders of the chosen sampler); the README's "Figures" give the suite's time on it
#: and what more data adds
DEFAULT_N = 20000


def _parse_sets(items: list[str] | None) -> dict[str, dict[str, Any]]:
    from synth_probe.errors import ParameterValueError

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, value = key_value(item)
        model, dot, name = key.partition(".")
        if not dot or not name:
            raise ParameterValueError(f"--set expects MODEL.KEY=VALUE (e.g. cnn.max_epochs=20), got {item!r}")
        out.setdefault(model, {})[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    from synth_probe.errors import ParameterValueError
    from synth_probe.predictability import PredictabilityConfig, default_dataset_path, ensure_dataset, run_predictability
    from synth_probe.predictability_probe import patches_for_budget, read_against
    from synth_probe.probe import DEFAULT_PROBE
    from synth_probe.training import load_training_dataset

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    check_output_dir(args.out, "reports folder")  # refused before any dataset is read or rendered
    if not args.no_cache:
        check_output_dir(args.cache, "feature cache folder")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    config = PredictabilityConfig(
        models=models, params=args.params, test_fraction=args.test_fraction, seed=args.seed, epochs=args.epochs,
        patience=args.patience, jobs=args.jobs, audio=args.audio, pairs=args.pairs, overrides=_parse_sets(args.set),
        mel_bands=args.mel_bands, mel_hop=args.mel_hop,
    )
    if args.n is not None and args.n < 20:
        raise ParameterValueError(f"--n must be at least 20, got {args.n}")
    against = read_against(args.against or [])  # a bad file is refused before any work
    probe = args.probe or DEFAULT_PROBE
    n = (patches_for_budget(args.renders, probe) if args.renders is not None
         else args.n if args.n is not None else DEFAULT_N)
    data = Path(args.data) if args.data else default_dataset_path(args.synth, args.sampler, n, probe=probe)
    if args.data and (data / "manifest.json").exists() and args.n is None and args.renders is None:
        ds = load_training_dataset(str(data))  # a dataset given by --data is used as it is
        if args.probe is not None and ds.probe != args.probe:
            raise ParameterValueError(f"{data} was made with the probe {ds.probe.text()!r}, not {args.probe.text()!r}; "
                                      "leave --probe out to use it, or give another --data")
    else:
        per = f" x {probe.n_renders()} renders of the probe {probe.text()}" if not probe.is_default else " renders"
        log(f"dataset {data}: {n} patches{per} of the {args.sampler} sampler (rendered where missing)")
        ds = ensure_dataset(args.synth, data, n, sampler=args.sampler, seed=args.data_seed, jobs=args.jobs,
                            progress=not args.no_progress, log=log, probe=probe)
    try:
        results = run_predictability(ds, config, out=args.out, synth=args.synth, against=against,
                                     cache_dir=None if args.no_cache else args.cache, resume=not args.fresh, log=log)
    except KeyboardInterrupt:  # the run saved what it finished: the page shows that, then the interrupt goes on
        log(f"wrote {write_predictability_report(None, args.out)['html']}")
        raise
    log(f"wrote {write_predictability_report(results, args.out)['html']}")
    return 0


def register(subparsers: Any) -> None:
    from synth_probe.families import MEL_HOP, N_MELS
    from synth_probe.predictability import SUITE

    p = subparsers.add_parser(
        "predictability", help="train the estimator suite and add measured predictability to the report",
        description="Train every model of the suite on one train/test split of a dataset (built if missing), score "
                    "each parameter (R²/accuracy/MPR against MeanBaseline and chance), re-render predictions for "
                    "audio distances, and write reports/predictability.json and the measured part of "
                    "reports/predictability.html (beside the sensitivity part, in one page).",
    )
    p.add_argument("synth", help="built-in synth name (noisemaker) or a plugin path")
    p.add_argument("--data", default=None,
                   help="dataset folder; default data/<synth>-<sampler>-<n>, rendered (or completed) when missing")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--n", type=int_arg(20), default=None,
                      help=f"patches in the dataset (default {DEFAULT_N} for a new one; an existing dataset given by "
                           "--data is used whole unless --n asks to extend it)")
    size.add_argument("--renders", type=int_arg(20), default=None, metavar="N",
                      help="a render budget instead of --n: N // (renders of the --probe) patches, e.g. --renders "
                           "3000 --probe notes=36,60,84 renders 1,000 patches at 3 notes")
    p.add_argument("--probe", type=probe_arg, default=None, metavar="PROBE",
                   help="renders taken of each patch of a dataset that is built, e.g. notes=36,60,84 or "
                        "velocities=64,127 (default: one note); the models read every render (features per render, "
                        "the spectrogram models' input channels). The default dataset folder names the probe")
    p.add_argument("--against", action="append", metavar="PREDICTABILITY_JSON",
                   help="another run's predictability.json (or its reports folder) to compare with per parameter in "
                        "the report, e.g. a one-note run at the same number of renders; repeatable")
    p.add_argument("--sampler", default="timbral", choices=["timbral", "inversynth", "all"],
                   help="sampler of a dataset that is built")
    p.add_argument("--data-seed", type=seed_arg(), default=0, help="seed of the patch stream of a dataset that is built")
    p.add_argument("--models", default=",".join(SUITE), help="comma-separated models, from: " + ",".join(SUITE))
    p.add_argument("--params", default="all", help="'all' (every varying parameter) or NAME,NAME,...")
    p.add_argument("--test-fraction", type=float_arg(0.0, 1.0, above=True, below=True), default=0.1, help="held-out test rows")
    p.add_argument("--seed", type=seed_arg(), default=0, help="split and model seed")
    p.add_argument("--epochs", type=int_arg(1), default=20, help="max epochs of the torch models")
    p.add_argument("--patience", type=int_arg(0), default=4, help="early-stopping patience of the torch models")
    p.add_argument("--mel-bands", type=int_arg(8), default=N_MELS, metavar="N",
                   help=f"mel bands of the log-mel image the spectrogram models read (default {N_MELS}); a change "
                        "refits them (README: Figures)")
    p.add_argument("--mel-hop", type=int_arg(16), default=MEL_HOP, metavar="SAMPLES",
                   help=f"hop of that image in samples (default {MEL_HOP}); a change refits them")
    p.add_argument("--jobs", type=jobs_arg(), default=2, help="worker processes (rendering, features) and model threads")
    p.add_argument("--audio", type=int_arg(0), default=24, help="test patches re-rendered for the audio metrics (0: none)")
    p.add_argument("--pairs", type=int_arg(0), default=4, help="listenable target/prediction pairs in the report")
    p.add_argument("--set", action="append", metavar="MODEL.KEY=VALUE",
                   help="hyperparameter of one model (JSON value), repeatable, e.g. --set gbm.n_estimators=500")
    p.add_argument("--out", default="reports", help="reports folder")
    p.add_argument("--cache", default=".cache/features", help="feature cache folder")
    p.add_argument("--no-cache", action="store_true", help="do not cache features")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every model (default: keep models an earlier run finished with the same settings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while rendering")
    p.set_defaults(func=run)
