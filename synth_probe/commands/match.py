"""``synth-probe match``: find a patch that sounds like a recording."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synth_probe.commands._args import int_arg, seed_arg

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    from synth_probe.errors import ParameterValueError
    from synth_probe.fileio import check_output_dir
    from synth_probe.matching import DISTANCE_LABELS, load_audio, load_match_model, match, write_match
    from synth_probe.models.io import choose_synth
    from synth_probe.synths.registry import get_synth

    if args.refine < 0:
        raise ParameterValueError(f"--refine must be a number of renders >= 0, got {args.refine}")
    out = Path(args.out) if args.out else Path(f"match-{Path(args.target).stem}")
    check_output_dir(out, "match folder")  # refused before the model is loaded, predicted and rendered
    model = load_match_model(args.model)
    synth_name, notices = choose_synth(model.synth, args.synth, recorded_sha256=model.synth_sha256,
                                       source=f"model {args.model!r}", allow_other_plugin=args.allow_other_plugin)
    for n in notices:
        print(f"notice: {n}", file=sys.stderr)
    synth = get_synth(synth_name)
    try:
        missing = [c for c in model.columns if c not in synth.param_names]
        if missing:
            from synth_probe.errors import UnknownParameterError

            raise UnknownParameterError(missing[0], synth.param_names, synth=synth.name)
        target = load_audio(args.target, target_rate=model.settings.sample_rate, n_samples=model.settings.n_samples)
        result = match(target, synth, model, note=args.note, refine_budget=args.refine, method=args.method,
                       seed=args.seed, samples=args.samples)
        paths = write_match(result, synth, out, extra={"target_file": str(args.target), "model": str(args.model)})
    finally:
        synth.close()
    for n in result.notices:
        print(f"notice: {n}", file=sys.stderr)
    start = f"best of {len(result.sample_distances)} draws" if result.sample_distances else "model"
    rows = [(start, result.start_distances)]
    if result.search is not None:
        rows.append((f"+ {result.search.method} ({result.search.n_renders} renders)", result.distances))
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  " + "  ".join(f"{k:>22}" for k in DISTANCE_LABELS))
    for label, d in rows:
        print(f"{label:{width}}  " + "  ".join(f"{d[k]:22.3f}" for k in DISTANCE_LABELS))
    print(f"(distances: {'; '.join(DISTANCE_LABELS.values())})")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "match", help="predict a patch for a recording (and refine it by local search)",
        description="Predict the synth patch of TARGET.wav with a trained model, render it, and report its "
                    "distances to the target (multi-resolution log-mel, spectral convergence, MFCC). The target "
                    "is resampled, downmixed, trimmed or padded to the model's format (with a notice), and its "
                    "pitch chooses the render note. --refine N runs a local search from the prediction within N "
                    "renders that never returns a patch that sounds further from the target than the "
                    "prediction; it brings the sound closer, not the knob values (README, Sound matching).",
    )
    p.add_argument("target", metavar="TARGET.wav", help="the sound to match (WAV, FLAC, OGG or AIFF)")
    p.add_argument("--model", required=True, metavar="MODEL_PATH", help="a model folder from `synth-probe train`")
    p.add_argument("--synth", default=None,
                   help="synth name or plugin path (default: the model's synth if it is built in; a plugin is "
                        "never loaded from the model folder and must be given here)")
    p.add_argument("--allow-other-plugin", action="store_true",
                   help="use a --synth plugin whose sha256 differs from the one the model was trained with "
                        "(default: refuse it)")
    p.add_argument("--refine", type=int_arg(0), default=0, metavar="N", help="renders for the local search (default 0: none)")
    p.add_argument("--samples", type=int_arg(1), default=None, metavar="K",
                   help="a posterior model (family posterior) starts from the closest of K drawn patches (default "
                        "8); the draws count in the budget: the search gets max(0, N - (K - 1)) of --refine N renders")
    p.add_argument("--method", choices=["hill", "cmaes"], default="hill",
                   help="local search: hill climber (default; measured better at small budgets) or CMA-ES (Optuna)")
    p.add_argument("--note", type=int_arg(0, 127), default=None, help="render note (default: from the target's pitch)")
    p.add_argument("--seed", type=seed_arg(), default=0, help="search and render seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: match-<target name>)")
    p.set_defaults(func=run)
