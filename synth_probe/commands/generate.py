"""``synth-probe generate``: render a sharded, resumable dataset."""
from __future__ import annotations

import argparse
import sys

from synth_probe.commands._args import float_arg, int_arg, jobs_arg, sample_rate_arg, seconds_arg, seed_arg
from synth_probe.dataset import DEFAULT_SHARD_SIZE, generate
from synth_probe.fileio import check_output_dir
from synth_probe.probe import probe_arg
from synth_probe.sampling import SAMPLERS, sampler_render_defaults
from synth_probe.synths.base import MAX_RENDER_SECONDS, RenderSettings
from synth_probe.synths.registry import get_synth
from synth_probe.synths.values import patch_from_assignments

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="render a dataset of random (or given) patches into sharded files with a manifest",
        description=(
            "Render N patches of SYNTH into OUT: shards written atomically with sha256 checksums and a manifest. "
            "Patch i depends only on (seed, i). Rerunning the same command completes missing or corrupted "
            "shards; a larger --n extends the dataset along the same seed stream."
        ),
    )
    p.add_argument("synth", help="built-in synth name (noisemaker) or path of a VST2/VST3 plugin")
    p.add_argument("--n", type=int_arg(1), default=None, help="number of patches (default: all rows of --patches)")
    p.add_argument("--out", required=True, help="dataset folder")
    p.add_argument("--sampler", default="all", choices=sorted(SAMPLERS),
                   help="all: every parameter; timbral: the 43 timbral TAL-NoiseMaker parameters; "
                        "inversynth: InverSynth II's parameters and grids")
    p.add_argument("--seed", type=seed_arg(), default=0, help="seed of the patch stream")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold one parameter at a value; repeat the flag for more. VALUE as in `synth-probe render "
                        "--set`: a unit value, a choice label or a physical value (1.5kHz, 20ms, LP24)")
    p.add_argument("--vary", default=None, metavar="A,B,...", help="vary only these parameters")
    p.add_argument("--grid", type=int_arg(2), default=None, metavar="K", help="quantize continuous values to K levels")
    p.add_argument("--patches", default=None, metavar="TABLE",
                   help="render the patches of a .csv or .json table; text columns that are not parameters "
                        "(a program name, a bank) and columns named meta:NAME are kept as metadata")
    p.add_argument("--note", type=int_arg(0, 127), default=None, help="MIDI note (default 60; inversynth: 70)")
    p.add_argument("--velocity", type=int_arg(1, 127), default=None, help="MIDI velocity (default 100; inversynth: 127)")
    p.add_argument("--probe", type=probe_arg, default=None, metavar="PROBE",
                   help="renders taken of each patch, e.g. notes=36,60,84/velocities=64,127 (default: the one note "
                        "of --note/--velocity); each patch's audio is then (n_renders, n_samples)")
    p.add_argument("--note-length", type=seconds_arg(zero=True), default=None, help="seconds the note is held (default 1.0)")
    p.add_argument("--render-length", type=seconds_arg(), default=None,
                   help=f"seconds rendered (default 1.5; at most {MAX_RENDER_SECONDS:g}, see `synth-probe render --help`)")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=None, help="Hz (default 44100; inversynth: 16384)")
    p.add_argument("--jobs", type=jobs_arg(), default=1, help="worker processes (process backend)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="render only shards k with k %% N == I (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    p.add_argument("--shard-size", type=int_arg(1), default=DEFAULT_SHARD_SIZE, help="patches per shard")
    p.add_argument("--backend", default="process", choices=["process", "loky", "dask"],
                   help="process: synth_probe's supervised worker processes on this machine (a crashed or hung "
                        "worker fails only its own shard; joblib's loky pool would fail every pending task, so "
                        "'loky' is accepted as a synonym for this pool); dask: an existing dask.distributed "
                        "cluster (its workers must see --out at the same path)")
    p.add_argument("--scheduler", default=None, metavar="ADDR", help="dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--timeout", type=float_arg(0.0), default=120.0, help="seconds one render may take (0: no limit)")
    p.add_argument("--wait", action="store_true",
                   help="if another generate run is writing --out, wait for it to finish instead of refusing "
                        "(one run writes a folder at a time; the parts of a --shard array run together)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "dataset folder")  # an existing file or an unwritable place: refused before any work
    base = sampler_render_defaults(args.sampler) if args.patches is None else None
    base = base or RenderSettings()
    note_length = args.note_length if args.note_length is not None else base.note_length
    render_length = args.render_length if args.render_length is not None else max(base.render_length, note_length)
    settings = RenderSettings(
        note=args.note if args.note is not None else base.note,
        velocity=args.velocity if args.velocity is not None else base.velocity,
        note_length=note_length,
        render_length=render_length,
        sample_rate=args.sample_rate if args.sample_rate is not None else base.sample_rate,
    )
    vary = [v.strip() for v in args.vary.split(",")] if args.vary is not None else None
    synth = get_synth(args.synth)
    try:
        fix = patch_from_assignments(synth, args.fix)
        result = generate(
            synth, args.out, args.n, sampler=args.sampler, seed=args.seed, fix=fix,
            vary=vary, grid=args.grid, patches=args.patches, settings=settings, probe=args.probe, shard_size=args.shard_size,
            jobs=args.jobs, part=args.shard, backend="process" if args.backend == "loky" else args.backend,
            scheduler=args.scheduler, timeout=args.timeout if args.timeout and args.timeout > 0 else None,
            progress=not args.no_progress, wait=args.wait,
            on_wait=lambda msg: print(f"synth-probe generate: {msg}", file=sys.stderr, flush=True),
        )
    finally:
        synth.close()
    print(result.summary(), file=sys.stderr if not result.ok else sys.stdout)
    return 0 if result.ok else 1
