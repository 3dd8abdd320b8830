"""``synth-probe render SYNTH``: render one note of a patch to a WAV file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The render settings every rendering command shares."""
    g = p.add_argument_group("render settings")
    g.add_argument("--note", type=int, default=60, help="MIDI note (default 60)")
    g.add_argument("--velocity", type=int, default=100, help="MIDI velocity 1..127 (default 100)")
    g.add_argument("--note-length", type=float, default=1.0, help="seconds the note is held (default 1.0)")
    g.add_argument("--render-length", type=float, default=1.5, help="seconds rendered (default 1.5)")
    g.add_argument("--sample-rate", type=int, default=44100, help="Hz (default 44100)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import soundfile as sf

    from synth_probe.synths import get_synth
    from synth_probe.synths.base import parse_assignments, read_patch_file

    patch: dict[str, float] = {}
    if args.patch:
        patch.update(read_patch_file(args.patch))
    patch.update(parse_assignments(args.set or []))
    with get_synth(args.synth) as synth:
        audio = synth.render(
            patch,
            note=args.note,
            velocity=args.velocity,
            note_length=args.note_length,
            render_length=args.render_length,
            sample_rate=args.sample_rate,
            seed=args.seed,
        )
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), audio, args.sample_rate, subtype="FLOAT")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    print(f"wrote {out} ({len(audio) / args.sample_rate:.2f} s, {args.sample_rate} Hz, peak {peak:.3f})",
          file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render one note of a patch to a WAV file")
    p.add_argument("synth", metavar="SYNTH", help="'noisemaker' or a plugin path")
    p.add_argument("--set", nargs="+", metavar="NAME=VALUE", help="unit values (0..1) to set")
    p.add_argument("--patch", metavar="PATCH.json", help="a JSON object of parameter names to unit values")
    add_render_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the synth's random sources (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav")
    p.set_defaults(func=run)
