"""``synth-probe compare A B``: how close synth A sounds to synth B or to a reference folder of audio."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, sample_rate_arg, seconds_arg, seed_arg
from synth_probe.errors import PatchFileError, ReferenceDataError
from synth_probe.fileio import check_output_dir
from synth_probe.report.fidelity_section import write_fidelity_report

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="how close synth A sounds to synth B (or a reference folder of audio) on the same patches",
        description=(
            "Render probes with synth A and compare them, probe by probe, with B: another synth with the same "
            "parameter names rendered on the same patches (from --sampler or --patches), or a reference folder "
            "(probes.csv with an id, optional set/note/velocity, one column per parameter and a file column; "
            "optional settings.json). Writes fidelity.html, fidelity.csv and fidelity.json to --out."
        ),
    )
    p.add_argument("a", metavar="A", help="the synth to check: noisemaker or the path of a plugin")
    p.add_argument("b", metavar="B", help="the reference: a plugin path, a built-in synth, or a reference folder")
    p.add_argument("--sampler", default=None,
                   help="random patches for a synth B (default timbral; all for synths without TAL-NoiseMaker's "
                        "names)")
    p.add_argument("--n", type=int_arg(1), default=None, help="patches drawn by the sampler (default 200)")
    p.add_argument("--seed", type=seed_arg(), default=None, help="sampler seed (default 0)")
    p.add_argument("--patches", default=None, metavar="TABLE",
                   help="a synth B plays these patches instead (.csv probe table with optional id/set/note/velocity "
                        "and text label columns, or .json)")
    p.add_argument("--render-seed", type=seed_arg(), default=0,
                   help="render seed of every probe (default 0); B's floor renders use the next one")
    p.add_argument("--note", type=int_arg(0, 127), default=60, help="MIDI note where a probe has none")
    p.add_argument("--velocity", type=int_arg(1, 127), default=100,
                   help="MIDI velocity where a probe has none")
    p.add_argument("--note-length", type=seconds_arg(zero=True), default=None,
                   metavar="SECONDS", help="note-off time (default: the folder's settings.json, else 1.0)")
    p.add_argument("--render-length", type=seconds_arg(), default=None, metavar="SECONDS",
                   help="seconds rendered (default: the folder's settings or its files' length, else 2.0)")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=None, metavar="HZ",
                   help="for a synth B (default 44100); a folder's files set it")
    p.add_argument("--floor-n", type=int_arg(0), default=40, metavar="N",
                   help="probes a synth B renders twice for its own floor (default 40)")
    p.add_argument("--sensitivity", nargs=2, default=None, metavar=("A_JSON", "B_TABLE"),
                   help="two sensitivity results (sensitivity.json or the CSV table) to compare ranks and classes")
    p.add_argument("--jobs", type=jobs_arg(), default=1, help="worker processes for rendering")
    p.add_argument("--out", default="reports", help="reports folder (default reports/)")
    p.add_argument("--audio-pairs", type=int_arg(0), default=24, metavar="N",
                   help="listenable A/B pairs of the worst probes (plus each set's worst; default 24)")
    p.add_argument("--report-mb", type=float_arg(0.0, above=True), default=10.0, metavar="MB",
                   help="size budget of the report's audio and pictures (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def _refuse_for_folder(args: argparse.Namespace) -> None:
    given = [f for f, v in (("--sampler", args.sampler), ("--n", args.n), ("--seed", args.seed),
                            ("--patches", args.patches), ("--sample-rate", args.sample_rate)) if v is not None]
    if given:
        raise ReferenceDataError(f"{', '.join(given)} apply to a synth B; a reference folder brings its own patches "
                                 "(probes.csv) and sample rate (its files)")


def _print(summary: dict, paths: dict, elapsed: float) -> None:
    o, fl = summary["overall"], summary["floor"]
    print(f"{summary['a'].get('synth')} against {summary['b'].get('folder') or summary['b'].get('synth')}: "
          f"{o['n']} probes")
    print(f"  median distance {o['median_db']:.2f} dB (mean {o['mean_db']:.2f}, 90th percentile {o['p90_db']:.2f}, "
          f"max {o['max_db']:.2f})")
    print(f"  retrieval {100 * o['retrieval']:.1f} % ({o['n_retrieved']} of {o['n']})")
    print(f"  B sounds, A silent: {o['b_sounds_a_silent']}; A sounds, B silent: {o['a_sounds_b_silent']}")
    print("  B's floor: " + (f"median {fl['median_db']:.2f} dB, max {fl['max_db']:.2f} dB over {fl['n']} "
                             f"({fl['how']})" if fl.get("measurable") else f"not measurable ({fl.get('why')})"))
    if summary.get("by_set"):
        print("  by set (median dB): " + ", ".join(f"{s['name']} {s['median_db']:.2f}" for s in summary["by_set"]))
    ag = summary.get("sensitivity")
    if ag:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  sensitivity ranks: Spearman rho {fmt(ag['spearman_all'])} over {ag['n']}, "
              f"{fmt(ag['spearman_audible'])} over the {ag['n_audible']} above the floor in either; "
              f"same class {ag['class_agree']} of {ag['n']}")
    print(f"wrote {paths['html']}, {paths['csv']}, {paths['json']}")
    print(f"time taken: {elapsed:.1f} s")


def run(args: argparse.Namespace) -> int:
    from synth_probe.fidelity import Timing, compare_folder, compare_synths
    from synth_probe.rank_agreement import load_sensitivity_table, sensitivity_agreement
    from synth_probe.reference import open_reference_folder, patch_table_probes, sampled_probes
    from synth_probe.render import close_pools
    from synth_probe.synths.registry import PLUGIN_SUFFIXES, get_synth

    t0 = time.perf_counter()

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    check_output_dir(args.out, "reports folder")  # refused before anything is rendered
    tables = [load_sensitivity_table(p) for p in args.sensitivity] if args.sensitivity else None
    folder_b = Path(args.b).is_dir() and not args.b.lower().rstrip("/").endswith(PLUGIN_SUFFIXES)
    if folder_b:
        _refuse_for_folder(args)
    a = get_synth(args.a)
    b = None
    try:
        if folder_b:
            folder = open_reference_folder(args.b, a, note_length=args.note_length, render_length=args.render_length)
            result = compare_folder(a, folder, seed=args.render_seed, jobs=args.jobs, progress=not args.quiet, log=log)
        else:
            b = get_synth(args.b)
            if args.patches is not None:
                if args.sampler is not None or args.n is not None:
                    raise PatchFileError("give either --patches or --sampler/--n, not both")
                probes = patch_table_probes(args.patches, a, note=args.note, velocity=args.velocity)
            else:
                probes = sampled_probes(a, args.n or 200, sampler=args.sampler, seed=args.seed or 0, note=args.note,
                                        velocity=args.velocity)
            rl = args.render_length or 2.0
            timing = Timing(args.sample_rate or 44100, args.note_length if args.note_length is not None else
                            min(1.0, rl), rl)
            result = compare_synths(a, b, probes, timing, seed=args.render_seed, floor_n=args.floor_n,
                                    jobs=args.jobs, progress=not args.quiet, log=log)
        if tables:
            result.summary["sensitivity"] = sensitivity_agreement(*tables, labels=tuple(args.sensitivity))
        media = result.media(result.listening(args.audio_pairs, args.report_mb))
        paths = write_fidelity_report(result.summary, result.rows, media, args.out, budget_mb=args.report_mb)
    finally:
        a.close()
        if b is not None:
            b.close()
        close_pools()
    _print(result.summary, paths, time.perf_counter() - t0)
    return 0
