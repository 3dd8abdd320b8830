"""``synth-probe tune``: an Optuna study per (synth, parameter), its refit best model and report."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, seed_arg
from synth_probe.fileio import check_output_dir
from synth_probe.probe import probe_arg
from synth_probe.families import TUNED
from synth_probe.report.tuning_section import write_tune_report
from synth_probe.synths.registry import get_synth

# The CLI imports every command module to build its parser, so the library (scikit-learn, torch, Optuna)
# is imported inside run(), when the command runs, not here.

__all__ = ["register", "run", "DEFAULT_N"]

#: renders of the default dataset (5,000: a 1,000-row validation split, so that hundreds of trials do not
#: simply find the split's noise)
DEFAULT_N = 5000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="search model family, hyperparameters and features for one parameter (Optuna, resumable)",
        description=(
            f"Tune an estimator of one parameter of SYNTH: model family ({', '.join(TUNED)}) "
            "x hyperparameters x feature settings, scored on a fixed validation split (R² or balanced accuracy), "
            "with pruning. The study lives in studies/<synth>/<param>/ (journal file, or --storage URL); "
            "rerunning resumes it and several processes may work on it at once. At the end the best configuration "
            "is refit on train+validation, saved in the study folder and compared on a test split with the "
            "untuned default model and MeanBaseline in OUT/tune_<param>.html."
        ),
    )
    p.add_argument("synth", help="built-in synth name (noisemaker) or path of a VST2/VST3 plugin")
    p.add_argument("--param", required=True, help="the parameter to tune an estimator for")
    p.add_argument("--data", default=None,
                   help=f"dataset folder (default: data/<synth>-timbral-default, rendered first if missing: "
                        f"{DEFAULT_N} patches of the timbral sampler, 22.05 kHz, 1.5 s; for a parameter that sampler "
                        "holds, data/<synth>-timbral+<param>-default also varies it, with its gate open)")
    p.add_argument("--probe", type=probe_arg, default=None, metavar="PROBE",
                   help="renders taken of each patch, e.g. notes=36,60,84 or velocities=64,127: the default dataset "
                        "is rendered with it (folder ...-default-<probe>), a --data dataset must have been made with "
                        "it; the models read every render (default: one note, or whatever --data holds)")
    p.add_argument("--trials", type=int_arg(0), default=None,
                   help="trials this command runs (split over --jobs); default: until --timeout")
    p.add_argument("--timeout", type=float_arg(0.0, above=True), default=None,
                   help="seconds to optimize (default 1800, i.e. 30 min, when --trials is not given; "
                        "the budget is printed at the start)")
    p.add_argument("--jobs", type=jobs_arg(), default=2, help="worker processes on this host")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="study storage: a journal file (journal:PATH or *.journal) or a database URL such as "
                        "postgresql://user:pass@host/db (default: studies/<synth>/<param>/study.journal)")
    p.add_argument("--study", default=None, help="study name (default <synth>-<param>)")
    p.add_argument("--exclude", default=None, metavar="FAMILY,...",
                   help=f"model families not to search ({', '.join(TUNED)})")
    p.add_argument("--families", default=None, metavar="FAMILY,...", help="search only these families")
    p.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                   help="median: per-family median of finished trials at the same budget; hyperband: Optuna's")
    p.add_argument("--force", action="store_true",
                   help="tune a parameter that the sensitivity study classes inaudible")
    p.add_argument("--out", default="reports", help="folder of the HTML report")
    p.add_argument("--studies", default="studies", help="folder of the study folders")
    p.add_argument("--seed", type=seed_arg(), default=0, help="seeds the split, the models and the samplers")
    p.add_argument("--max-epochs", type=int_arg(1), default=30, help="epoch budget of a torch trial")
    p.add_argument("--max-rounds", type=int_arg(1), default=600, help="boosting-round budget of a LightGBM trial")
    p.add_argument("--limit", type=int_arg(1), default=None, help="use only the first N rows of the dataset")
    p.add_argument("--heartbeat", type=int_arg(1), default=15, help="seconds between heartbeats of a running trial")
    p.add_argument("--grace", type=int_arg(1), default=60,
                   help="seconds without a heartbeat after which a running trial is failed (and retried once)")
    p.add_argument("--no-report", action="store_true", help="skip the refit and the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth_probe.tuning import (
        TuneConfig,
        check_audible,
        default_dataset,
        open_storage,
        parse_families,
        run_tuning,
        study_dir,
        synth_label,
    )

    check_output_dir(args.out, "reports folder")  # refused before any synth, storage or dataset is opened
    check_output_dir(args.studies, "studies folder")
    families = parse_families(args.exclude, args.families)
    synth = get_synth(args.synth)
    try:
        spec = synth.spec(args.param)  # UnknownParameterError: valid names and the closest match
        label = synth_label(synth, args.synth)
    finally:
        synth.close()
    audibility = check_audible(spec.name, Path(args.out) / "sensitivity.json", label, force=args.force)
    # a storage that cannot be reached fails now, before any dataset is rendered
    folder = study_dir(args.studies, label, spec.name)
    open_storage(args.storage, folder / "study.journal", heartbeat_interval=args.heartbeat, grace_period=args.grace)
    data = args.data or str(default_dataset(args.synth, label, spec.name, args.jobs, DEFAULT_N, probe=args.probe))
    timeout = args.timeout if args.timeout is not None else (1800.0 if args.trials is None else None)
    cfg = TuneConfig(
        synth=args.synth, param=spec.name, data=data, trials=args.trials, timeout=timeout, jobs=args.jobs,
        storage=args.storage, study=args.study, families=families, pruner=args.pruner,
        studies_root=args.studies, out=args.out, seed=args.seed, max_epochs=args.max_epochs,
        max_rounds=args.max_rounds, limit=args.limit, heartbeat_interval=args.heartbeat,
        grace_period=args.grace, report=not args.no_report, probe=args.probe.text() if args.probe else None,
    )
    t0 = time.perf_counter()
    s = run_tuning(cfg, audibility)
    if "report_data" in s:
        s["report"] = str(write_tune_report(s.pop("report_data"), cfg.out))
    if args.no_report:
        print(f"{s['study']}: {s['n_trials']} trials in the study ({time.perf_counter() - t0:.0f} s); "
              "no refit or report (--no-report)")
        return 0
    metric = "R²" if s["metric"] == "r2" else "balanced accuracy"

    def f(v: object) -> str:
        return "—" if v is None else f"{v:+.4f}" if isinstance(v, float) else str(v)

    best = s["best"]
    print(f"{s['study']}: {s['n_trials']} trials ({', '.join(f'{v} {k}' for k, v in sorted(s['states'].items()))}) "
          f"in {time.perf_counter() - t0:.0f} s")
    if best["val"] is not None:
        refit = best.get("refit") or {}
        print(f"best: trial {refit.get('trial')} {refit.get('family')} — validation {metric} {best['val']:.4f}, "
              f"test {metric} {best['test']:.4f} (refit on train+validation, saved in {refit.get('path')})")
    print(f"untuned default ({s['default']['family']}): test {metric} {s['default']['test']:.4f}; "
          f"MeanBaseline: test {metric} {s['mean']['test']:.4f}")
    print(f"gain over the default: {f(s['gain_test']['over_default'])} (test), "
          f"{f(s['gain_val']['over_default'])} (validation); over MeanBaseline: {f(s['gain_test']['over_mean'])} (test)")
    v = s.get("verdict") or {}
    if v.get("headline"):
        print(f"verdict: {v['headline']}")
        for line in v.get("reasons", []):
            print(f"  why: {line}")
        for line in v.get("next", []):
            print(f"  try: {line}")
    if s.get("report"):
        print(f"report: {s['report']}")
    return 0
