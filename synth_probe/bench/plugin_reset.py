"""What each plugin reset buys and costs: history dependence against throughput.

Run ``python -m synth_probe.bench.plugin_reset`` (amsynth by default; a plugin that needs
an X display under ``xvfb-run -a``). For each program set it renders every program
fresh (a new instance, twice: the second render gives the program's own floor, which
only a plugin's private random generator makes non-zero), then, in each reset mode, the
program after each of K different predecessors, in one plugin process per mode. It
prints, per mode, the multi-resolution log-mel distance of the program after a
predecessor to the fresh render and to the same program after the first predecessor
(p50/p95/max, over all programs and over the programs whose floor is 0), and the
renders/s of the whole sequence with the ratio to ``none`` measured in the same run
(modes take turns program by program, so load from other processes hits all alike).

Program sets: ``random`` (uniform unit values over every parameter) and ``effects``
(the same, with every parameter whose name speaks of a tail — reverb, delay, chorus,
release, decay, feedback, distortion, crunch, drive — drawn from [0.5, 1]). The
predecessors are always drawn like ``effects``: the worst case for carried-over tails.
Every render uses seed 0, so what a plugin draws from ``rand()`` is the same each time.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from synth_probe.bench.render import AMSYNTH, random_patches
from synth_probe.spectral import multi_resolution_log_mel_distance
from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["TAIL_WORDS", "program_set", "measure", "main"]

#: parameter-name fragments of the ``effects`` set: what makes a sound leave a tail
TAIL_WORDS = ("reverb", "delay", "chorus", "release", "decay", "feedback", "distortion", "crunch", "drive")
#: a program whose two fresh renders differ by more than this (dB) is "not repeatable"
REPEATABLE_DB = 0.01


def program_set(synth: Synth, kind: str, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors of the ``random`` or ``effects`` set (see the module docstring).

    Returns
    -------
    vectors : np.ndarray [shape=(n, n_params)]
    """
    vecs = random_patches(synth, n, seed=seed)
    if kind == "effects":
        rng = np.random.default_rng([seed, 1])
        cols = [k for k, s in enumerate(synth.specs) if any(w in s.name.lower() for w in TAIL_WORDS)]
        vecs[:, cols] = rng.uniform(0.5, 1.0, size=(n, len(cols)))
    elif kind != "random":
        raise ValueError(f"unknown program set {kind!r}; use random or effects")
    return vecs


def _stats(x: Sequence[float]) -> str:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return f"{'-':>6} {'-':>6} {'-':>6}"
    return f"{np.median(a):6.2f} {np.percentile(a, 95):6.2f} {a.max():6.2f}"


def measure(plugin: str, kind: str, modes: Sequence[str], n_programs: int, k_pred: int, settings: RenderSettings,
            seed: int) -> dict[str, Any]:
    """Render the program set fresh and after predecessors in every mode; return distances and timings.

    Returns
    -------
    result : dict
        ``floor`` (per program, dB), ``fresh`` and ``between`` (per mode: distances, one
        per program and predecessor, dB), ``repeatable`` (per program, bool), ``renders``
        and ``seconds`` (per mode), ``flush`` (the flush mode's reset statistics).
    """
    from synth_probe.synths.plugin import PluginSynth

    sr = settings.sample_rate
    fresh_synth = PluginSynth(plugin, reset="reload")
    try:
        programs = program_set(fresh_synth, kind, n_programs, seed)
        preds = program_set(fresh_synth, "effects", k_pred, seed + 1000)
        twice = fresh_synth.render_batch(np.repeat(programs, 2, axis=0), settings)
    finally:
        fresh_synth.close()
    ref, again = twice[0::2], twice[1::2]
    floor = [float(multi_resolution_log_mel_distance(a, b, sr)) for a, b in zip(ref, again)]
    synths = {m: PluginSynth(plugin, reset=m) for m in modes}
    res: dict[str, Any] = {"floor": floor, "repeatable": [f <= REPEATABLE_DB for f in floor],
                           "fresh": {m: [] for m in modes}, "between": {m: [] for m in modes},
                           "renders": dict.fromkeys(modes, 0), "seconds": dict.fromkeys(modes, 0.0)}
    try:
        for m, s in synths.items():  # start every child process before the clock runs
            s.render_batch(preds[:1], settings)
        for p, prog in enumerate(programs):
            seq = np.empty((2 * k_pred, programs.shape[1]))
            seq[0::2], seq[1::2] = preds, prog
            for m, s in synths.items():
                t0 = time.perf_counter()
                out = s.render_batch(seq, settings)
                res["seconds"][m] += time.perf_counter() - t0
                res["renders"][m] += len(seq)
                after = out[1::2]
                res["fresh"][m].append([float(multi_resolution_log_mel_distance(a, ref[p], sr)) for a in after])
                res["between"][m].append([float(multi_resolution_log_mel_distance(a, after[0], sr))
                                          for a in after[1:]])
        res["flush"] = synths["flush"].reset_stats() if "flush" in synths else None
    finally:
        for s in synths.values():
            s.close()
    return res


def _report(kind: str, res: dict[str, Any], modes: Sequence[str], k_pred: int) -> None:
    rep = np.asarray(res["repeatable"])
    print(f"\nprogram set {kind!r}: {len(rep)} programs, each after {k_pred} predecessors; "
          f"{int(rep.sum())} repeatable (two fresh renders within {REPEATABLE_DB} dB; "
          f"fresh-vs-fresh floor p50/p95/max {_stats(res['floor']).strip()} dB)")
    print(f"{'mode':<7} {'vs fresh: all p50 p95 max':>27} {'repeatable p50 p95 max':>24} "
          f"{'between preds: all p95 max':>28} {'repeatable p95 max':>19} {'renders/s':>10} {'/ none':>7}")
    base = res["renders"].get("none", 0) / res["seconds"]["none"] if "none" in modes else None
    for m in modes:
        fresh, between = np.asarray(res["fresh"][m]), np.asarray(res["between"][m])
        rate = res["renders"][m] / res["seconds"][m]
        ratio = f"{rate / base:7.3f}" if base else f"{'-':>7}"
        b_all, b_rep = _stats(between.ravel()).split()[1:], _stats(between[rep].ravel()).split()[1:]
        print(f"{m:<7} {_stats(fresh.ravel()):>27} {_stats(fresh[rep].ravel()):>24} "
              f"{' '.join(f'{x:>6}' for x in b_all):>28} {' '.join(f'{x:>6}' for x in b_rep):>19} "
              f"{rate:10.1f} {ratio}")
    fl = res.get("flush")
    if fl and fl["flushes"]:
        print(f"flush: {fl['flushes']} flushes, {fl['seconds'] / fl['flushes'] * 1000:.0f} ms of silence each on "
              f"average, {fl['bounded']} stopped at the bound")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth_probe.bench.plugin_reset",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--plugin", default=AMSYNTH, help=f"plugin path (default {AMSYNTH})")
    ap.add_argument("--programs", type=int, default=24, help="programs per set (default 24)")
    ap.add_argument("--predecessors", type=int, default=4, help="predecessors per program, K (default 4)")
    ap.add_argument("--sets", default="random,effects", help="program sets (default random,effects)")
    ap.add_argument("--modes", default="flush,reload,fork,none", help="reset modes (default flush,reload,fork,none)")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.programs < 1 or args.predecessors < 2:
        ap.error("--programs must be at least 1 and --predecessors at least 2")
    from synth_probe.synths._plugin_worker import RESET_MODES

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in RESET_MODES]
    if bad or not modes:
        ap.error(f"--modes takes {', '.join(RESET_MODES)}; got {args.modes!r}")
    settings = RenderSettings(note=60, velocity=100, note_length=1.0, render_length=1.5, sample_rate=args.sample_rate)
    print(f"plugin reset benchmark: {args.plugin}, {settings.render_length} s renders ({settings.note_length} s note) "
          f"at {settings.sample_rate} Hz, seed {args.seed}; distances: multi-resolution log-mel, dB")
    for kind in [k.strip() for k in args.sets.split(",") if k.strip()]:
        res = measure(args.plugin, kind, modes, args.programs, args.predecessors, settings, args.seed)
        _report(kind, res, modes, args.predecessors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
