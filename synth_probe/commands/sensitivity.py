"""``synth-probe sensitivity``: rank every parameter by how strongly it shows up in the spectrogram."""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from synth_probe.commands._args import int_arg, jobs_arg, sample_rate_arg, seconds_arg, seed_arg
from synth_probe.fileio import check_output_dir
from synth_probe.probe import probe_arg
from synth_probe.report.sensitivity_section import write_sensitivity_report

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sensitivity",
        help="rank all parameters by how strongly they show up in the spectrogram (predictability report)",
        description=(
            "Sweep every parameter on K base patches (the default plus K-1 random 'timbral' patches; gated "
            "parameters with their gate opened, and closed for comparison), measure the multi-resolution "
            "log-mel change against the render-noise floor, and write reports/predictability.html, "
            "sensitivity.csv and sensitivity.json."
        ),
    )
    p.add_argument("synth", help="built-in synth name (noisemaker) or the path of a VST2/VST3 plugin")
    p.add_argument("--bases", type=int_arg(1), default=10, metavar="K",
                   help="base patches: the default plus K-1 random ones (default 10)")
    p.add_argument("--steps", type=int_arg(3), default=9, metavar="S",
                   help="sweep points of a continuous parameter; discrete ones take every choice (default 9)")
    p.add_argument("--seed", type=seed_arg(), default=0, help="random bases, render seeds, bootstrap")
    p.add_argument("--floor-seeds", type=int_arg(2), default=3, metavar="R",
                   help="renders with different seeds per noise-floor measurement (default 3)")
    p.add_argument("--jobs", type=jobs_arg(), default=1, help="worker processes for rendering")
    p.add_argument("--out", default="reports", help="reports folder (default reports/)")
    p.add_argument("--render-length", type=seconds_arg(), default=1.5, metavar="SECONDS",
                   help="seconds rendered per patch (default 1.5)")
    p.add_argument("--note-length", type=seconds_arg(), default=None, metavar="SECONDS",
                   help="seconds the note is held (default: 2/3 of the render length)")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=22050, metavar="HZ",
                   help="render sample rate (default 22050)")
    p.add_argument("--note", type=int_arg(0, 127), default=60, help="MIDI note (default 60)")
    p.add_argument("--velocity", type=int_arg(1, 127), default=100, help="MIDI velocity (default 100)")
    p.add_argument("--probe", type=probe_arg, default=None, metavar="PROBE",
                   help="renders taken of each patch, e.g. notes=36,60,84/velocities=64,127 (default: the one note "
                        "of --note/--velocity); the spreads sum over them")
    p.add_argument("--sampler", default="timbral",
                   help="sampler of the random bases (default timbral; 'all' is used for synths without "
                        "TAL-NoiseMaker's names)")
    p.add_argument("--params", default=None, metavar="NAMES",
                   help="comma-separated parameters to study (default: all)")
    p.add_argument("--max-choices", type=int_arg(2), default=None, metavar="N",
                   help="sweep at most N choices of a discrete parameter (default: every choice)")
    p.add_argument("--audio-top", type=int_arg(0), default=None, metavar="N",
                   help="audio players for the sweep ends of the top N audible parameters only (default: every "
                        "audible parameter, resampled to fit 5 MB)")
    p.add_argument("--check-stability", action="store_true",
                   help="run a second time with seed+1 and report the Spearman rank correlation of the scores")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth_probe.sensitivity import SensitivityConfig, run_sensitivity, stability
    from synth_probe.synths.registry import get_synth

    check_output_dir(args.out, "reports folder")  # refused before any render
    t0 = time.perf_counter()
    note_length = args.note_length if args.note_length is not None else round(args.render_length * 2 / 3, 6)
    params = tuple(x.strip() for x in args.params.split(",") if x.strip()) if args.params else None

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    synth = get_synth(args.synth)
    try:
        config = SensitivityConfig(
            bases=args.bases, steps=args.steps, seed=args.seed, floor_seeds=args.floor_seeds,
            sampler=args.sampler, note=args.note, velocity=args.velocity, note_length=note_length,
            render_length=args.render_length, sample_rate=args.sample_rate, jobs=args.jobs, params=params,
            max_choices=args.max_choices, probe=args.probe.text() if args.probe else "default",
        )
        result = run_sensitivity(synth, config, log=log)
        if args.check_stability and result.complete:
            log(f"stability: second run with seed {args.seed + 1}")
            second = run_sensitivity(synth, replace(config, seed=args.seed + 1), log=log)
            if second.complete:
                result.stability = stability(result, second)
                # keep the second run's numbers too, beside the report
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                (out / "sensitivity-stability-run.json").write_text(
                    json.dumps(second.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    finally:
        synth.close()
        try:
            from synth_probe.render import close_pools
        except ImportError:  # pragma: no cover
            pass
        else:
            close_pools()
    paths = write_sensitivity_report(result.to_dict(), result.table_rows(), Path(args.out), media=result.media,
                                     audio_top=args.audio_top)
    elapsed = time.perf_counter() - t0
    ranked = result.ranked()
    counts = {c: sum(p.classification == c for p in ranked) for c in ("strong", "weak", "inaudible")}
    print(f"{len(ranked)} parameters of {result.synth.get('synth')}: {counts['strong']} strong, "
          f"{counts['weak']} weak, {counts['inaudible']} inaudible ({result.n_renders} renders)")
    for p in ranked[:10]:
        print(f"  {p.rank:3d}. {p.name:<22} {p.score:7.2f} dB [{p.ci_low:.2f}, {p.ci_high:.2f}]  "
              f"{p.classification:<9} {p.aspect or ''}")
    if len(ranked) > 10:
        print(f"  ... ({len(ranked) - 10} more in the report)")
    if result.stability is not None:
        s = result.stability
        rho = "n/a" if s["spearman"] is None else f"{s['spearman']:.3f}"
        print(f"stability: Spearman rho = {rho} over {s['n']} parameters above the noise floor in both runs "
              f"(seeds {s['seeds'][0]} and {s['seeds'][1]})")
    print(f"wrote {paths['html']}, {paths['csv']}, {paths['json']}")
    print(f"time taken: {elapsed:.1f} s")
    if not result.complete:
        print("interrupted: the report lists the parameters finished so far", file=sys.stderr)
        return 130
    return 0
