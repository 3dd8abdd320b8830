"""``synth-probe render SYNTH``: render one note of a patch to a WAV file."""
from __future__ import annotations

import argparse
import sys

from synth_probe.commands._args import int_arg, sample_rate_arg, seconds_arg, seed_arg
from synth_probe.fileio import AUDIO_FORMATS
from synth_probe.synths.base import MAX_RENDER_SECONDS

__all__ = ["register"]


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The render settings every rendering command shares."""
    g = p.add_argument_group("render settings")
    g.add_argument("--note", type=int_arg(0, 127), default=60, help="MIDI note (default 60)")
    g.add_argument("--velocity", type=int_arg(1, 127), default=100,
                   help="MIDI velocity 1..127 (default 100)")
    g.add_argument("--note-length", type=seconds_arg(zero=True), default=1.0,
                   help="seconds the note is held (default 1.0)")
    g.add_argument("--render-length", type=seconds_arg(), default=1.5,
                   help=f"seconds rendered (default 1.5; at most {MAX_RENDER_SECONDS:g}: the slowest "
                        "TAL-NoiseMaker decay takes about 104 s to fall silent, and one render at 192 kHz then "
                        "takes 92 MB per channel)")
    g.add_argument("--sample-rate", type=sample_rate_arg(), default=44100, help="Hz, 8000..192000 (default 44100)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from synth_probe.fileio import check_audio_output, write_audio
    from synth_probe.synths import get_synth
    from synth_probe.synths.base import RenderSettings, read_patch_file
    from synth_probe.synths.values import patch_from_assignments, split_assignment

    out, _fmt, _subtype = check_audio_output(args.output)  # before any work
    settings = RenderSettings(args.note, args.velocity, args.note_length, args.render_length, args.sample_rate)
    patch: dict[str, float] = {}
    if args.patch:
        patch.update(read_patch_file(args.patch))
    for item in args.set or []:
        split_assignment(item)  # a malformed NAME=VALUE is refused before the synth loads
    with get_synth(args.synth) as synth:
        patch.update(patch_from_assignments(synth, args.set or []))
        audio = synth.render(patch, seed=args.seed, **settings.to_dict())
    write_audio(out, audio, settings.sample_rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    print(f"wrote {out} ({len(audio) / settings.sample_rate:.2f} s, {settings.sample_rate} Hz, peak {peak:.3f})",
          file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render one note of a patch to a WAV file",
                       description="Render one note of a patch to an audio file; the extension of -o chooses the "
                                   "format: " + ", ".join(f"{e} ({v[2]})" for e, v in AUDIO_FORMATS.items()) + ".")
    p.add_argument("synth", metavar="SYNTH", help="'noisemaker' or a plugin path")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="set one parameter; repeat the flag for more (--set cutoff=1.5kHz --set filtertype=LP24). "
                        "VALUE is a unit value in [0, 1], a choice label, or a physical value with its unit "
                        "(20ms, 1.5kHz, -6dB, 50%%, +12st), as `synth-probe params SYNTH` shows the ranges")
    p.add_argument("--patch", metavar="PATCH.json", help="a JSON object of parameter names to unit values")
    add_render_options(p)
    p.add_argument("--seed", type=seed_arg(), default=0, help="seed of the synth's random sources (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav",
                   help="audio file: .wav or .aiff (32-bit float), .flac (24-bit); checked before rendering")
    p.set_defaults(func=run)
