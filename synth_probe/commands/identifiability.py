"""``synth-probe identifiability``: is each parameter masked, confounded or distinct among random patches?"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, sample_rate_arg, seconds_arg, seed_arg
from synth_probe.fileio import check_output_dir
from synth_probe.probe import probe_arg
from synth_probe.util import atomic_text, json_clean
from synth_probe.report.pages import write_identifiability_report

__all__ = ["register", "run"]


def _steps(text: str) -> tuple[float, ...]:
    try:  # the values are checked by IdentifiabilityConfig
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps must be numbers separated by commas, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "identifiability",
        help="is each parameter masked, confounded or distinct among a sampler's random patches?",
        description=(
            "Move each parameter half its range on K random patches of the sampler, compare the change with the "
            "render-noise floor, and search the other varied parameters for a twin that sounds like the original. "
            "Writes identifiability.json/.csv and a section of reports/predictability.html."
        ),
    )
    p.add_argument("synth", help="built-in synth name (noisemaker) or the path of a VST2/VST3 plugin")
    p.add_argument("--sampler", default="timbral", help="sampler of the base patches (default timbral)")
    p.add_argument("--bases", type=int_arg(1), default=16, metavar="K",
                   help="random base patches per parameter (default 16)")
    p.add_argument("--budget", type=int_arg(0), default=200, metavar="N",
                   help="renders of each twin search (default 200; 0: no search, masked or not only)")
    p.add_argument("--search", choices=("hill", "cmaes"), default="hill",
                   help="twin search: hill climbing (default) or CMA-ES (through Optuna)")
    p.add_argument("--tolerance", type=float_arg(0.0), default=0.2, metavar="DB",
                   help="dB above the render-noise floor that still counts as the same sound (default 0.2)")
    p.add_argument("--steps", type=_steps, default=(0.5, 0.25, 0.1), metavar="S,S,...",
                   help="moves probed, largest first, in units of the range (default 0.5,0.25,0.1); the first "
                        "gives the masked/confounded/distinct shares, all of them the rough resolvable R²")
    p.add_argument("--params", default=None, metavar="NAMES",
                   help="comma-separated parameters (default: every parameter the sampler varies)")
    p.add_argument("--seed", type=seed_arg(), default=0, help="base patches and search seed")
    p.add_argument("--jobs", type=jobs_arg(), default=1, help="worker processes")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=22050, metavar="HZ",
                   help="render sample rate (default 22050; a sampler with its own render setup overrides it)")
    p.add_argument("--render-length", type=seconds_arg(), default=1.5, metavar="SECONDS",
                   help="seconds rendered per patch (default 1.5)")
    probe = p.add_mutually_exclusive_group()
    probe.add_argument("--probe", type=probe_arg, default=None, metavar="PROBE",
                       help="renders taken of each patch, e.g. notes=36,60,84/velocities=64,127 (default: one note); "
                            "distances sum over them")
    probe.add_argument("--probes", type=probe_arg, nargs="+", default=None, metavar="PROBE",
                       help="compare candidate probes on the same patches: writes identifiability_probes.json and "
                            "its section of the report ('default' is the one note)")
    p.add_argument("--out", default="reports", help="reports folder (default reports/)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth_probe.identifiability import IdentifiabilityConfig, run_identifiability
    from synth_probe.synths.registry import get_synth

    check_output_dir(args.out, "reports folder")  # refused before any render
    t0 = time.perf_counter()
    params = tuple(x.strip() for x in args.params.split(",") if x.strip()) if args.params else None

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    config = IdentifiabilityConfig(
        sampler=args.sampler, bases=args.bases, budget=args.budget, search=args.search, tolerance_db=args.tolerance,
        steps=args.steps, seed=args.seed,
        params=params, jobs=args.jobs, sample_rate=args.sample_rate, render_length=args.render_length,
        note_length=round(args.render_length * 2 / 3, 6), probe=(args.probe.text() if args.probe else "default"),
    )
    synth = get_synth(args.synth)
    if args.probes:
        return _run_probes(synth, config, args, log, t0)
    try:
        result = run_identifiability(synth, config, log=log)
    finally:
        synth.close()
        from synth_probe.render import close_pools

        close_pools()
    paths = write_identifiability_report(result.to_dict(), Path(args.out))
    rows = result.summary()
    print(f"{len(rows)} parameters of {result.synth.get('synth')} on {config.bases} {result.config['sampler']} "
          "patches "
          f"(share of patches: distinct / masked / confounded at a move of {config.steps[0]:g}; distinct at "
          f"{', '.join(f'{x:g}' for x in config.steps[1:]) or '-'}; rough resolvable R²)")
    for r in rows:
        comp = f"  twins moved: {', '.join(r['compensators'])}" if r["compensators"] else ""
        small = " ".join(f"{100 * r['distinct_by_step'].get(f'{x:g}', 0):4.0f} %" for x in config.steps[1:])
        resolvable = "  -  " if r["resolvable_r2"] is None else f"{r['resolvable_r2']:5.2f}"
        print(f"  {r['parameter']:<22} {100 * r['distinct']:4.0f} % / {100 * r['masked']:4.0f} % / "
              f"{100 * r['confounded']:4.0f} %; {small}; {resolvable}   effect {r['effect_db']:6.2f} dB, "
              f"floor {r['floor_db']:5.2f} dB{comp}")
    mprs = [r["resolvable_mpr"] for r in rows if r.get("resolvable_mpr") is not None]
    if mprs:
        print(f"mean distinct share {sum(r['distinct'] for r in rows) / len(rows):.3f}; resolvable MPR "
              f"(the predictability study's metric) {sum(mprs) / len(mprs):.1f} over {len(mprs)} parameters")
    print(f"wrote {paths['html']}, {paths['csv']}, {paths['json']}")
    print(f"time taken: {time.perf_counter() - t0:.1f} s")
    if not result.complete:
        print("interrupted: the report counts the probes finished so far", file=sys.stderr)
        return 130
    return 0


def _run_probes(synth, config, args: argparse.Namespace, log, t0: float) -> int:
    """``--probes``: the study once per probe on the same patches, compared per parameter."""
    from synth_probe.identifiability import PROBES_RESULTS_NAME, compare_probes
    from synth_probe.report.pages import rebuild_predictability_page

    try:
        data = compare_probes(synth, config, [p.text() for p in args.probes], log=log)
    finally:
        synth.close()
        from synth_probe.render import close_pools

        close_pools()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jpath = out / PROBES_RESULTS_NAME
    atomic_text(jpath, json.dumps(json_clean(data), indent=1, allow_nan=False))
    html = rebuild_predictability_page(out)
    probes = data["probes"]
    print(f"{len(data['rows'])} parameters of {data['synth'].get('synth')} on {config.bases} "
          f"{data['config']['sampler']} patches: distinct share (resolvable R²) per probe")
    print(f"  {'parameter':<22} " + "  ".join(f"{p[:26]:>26}" for p in probes))
    for r in data["rows"]:
        print(f"  {r['parameter']:<22} " + "  ".join(f"{_cell(r['by_probe'].get(p)):>26}" for p in probes))
    means = data["mean_distinct"]
    print(f"  {'mean distinct share':<22} " + "  ".join(
        f"{'-' if means[p] is None else f'{means[p]:.3f}':>26}" for p in probes))
    mprs = data["mean_resolvable_mpr"]
    print(f"  {'mean resolvable MPR':<22} " + "  ".join(
        f"{'-' if mprs[p] is None else f'{mprs[p]:.1f}':>26}" for p in probes))
    print(f"wrote {html}, {jpath}")
    print(f"time taken: {time.perf_counter() - t0:.1f} s")
    return 0 if data["complete"] else 130


def _cell(c: dict | None) -> str:
    if c is None:
        return "-"
    r2 = "" if c["resolvable_r2"] is None else f" ({c['resolvable_r2']:.2f})"
    return f"{100 * c['distinct']:.0f} %{r2}"
