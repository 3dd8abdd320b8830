"""Render throughput: the built-in emulation beside plugins, in-process and in a child process.

Run ``python -m synth_probe.bench.render`` (``make bench-render``). For each synth it
renders batches of random patches — uniform unit values over the non-inert
parameters, defaults elsewhere — of 1.5 s (a 1.0 s note) at 44.1 kHz in one
process, and prints renders/s, times real time and, for plugins, the
throughput of the child-process path relative to in-process rendering. Plugins
render without a reset between renders (``reset="none"``); what a reset costs is
``python -m synth_probe.bench.plugin_reset``.

``--against REF`` also renders the same patches with the emulation of git revision
``REF`` (exported with ``git archive`` into a temporary folder and run in a child
process, batch by batch alternating with the current one) and prints the throughput
ratio current / REF of the same run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["random_patches", "time_renders", "OldEmulation", "main"]

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"


def random_patches(synth: Synth, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: uniform over non-inert parameters, defaults for inert ones.

    Returns
    -------
    vectors : np.ndarray [shape=(n, n_params)]
    """
    rng = np.random.default_rng(seed)
    specs = list(synth.specs)
    vecs = np.tile(np.array([s.default for s in specs], dtype=np.float64), (n, 1))
    live = [k for k, s in enumerate(specs) if not s.inert]
    vecs[:, live] = rng.uniform(0.0, 1.0, size=(n, len(live)))
    return vecs


def time_renders(synth: Synth, vectors: np.ndarray, settings: RenderSettings, warmup: int | None = None) -> float:
    """Seconds to render every row of ``vectors`` after ``warmup`` untimed renders.

    By default the untimed pass renders every row once, so that whatever a patch needs is
    built before the clock runs (NoiseMaker compiles or loads one program variant per
    filter family and effects state; a plugin starts its child process).
    """
    synth.render_batch(vectors if warmup is None else vectors[:warmup], settings)
    t0 = time.perf_counter()
    synth.render_batch(vectors, settings)  # one batch: a plugin's child process answers it in one round trip
    return time.perf_counter() - t0


#: run in the child process of :class:`OldEmulation`, with the old tree first on sys.path
_OLD_SCRIPT = """
import sys, time, numpy as np
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.registry import get_synth
s = get_synth("noisemaker")
st = RenderSettings(note=60, velocity=100, note_length=1.0, render_length=1.5, sample_rate=int(sys.argv[1]))
for line in sys.stdin:
    v = np.load(line.strip())
    s.render_batch(v, st)
    t0 = time.perf_counter()
    s.render_batch(v, st)
    print(time.perf_counter() - t0, flush=True)
"""


class OldEmulation:
    """The ``noisemaker`` of git revision ``ref``, timed in a child process on the patches it is sent.

    Raises
    ------
    RuntimeError
        ``git archive`` fails (no git, not a checkout, unknown revision).
    """

    def __init__(self, ref: str, sample_rate: int) -> None:
        self.ref = ref
        self._tmp = tempfile.TemporaryDirectory(prefix="synth_probe_bench_")
        root = Path(__file__).resolve().parents[2]
        tree = Path(self._tmp.name) / "tree"
        tree.mkdir()
        arch = subprocess.run(["git", "-C", str(root), "archive", ref, "synth_probe"], capture_output=True)
        if arch.returncode != 0:
            raise RuntimeError(f"git archive {ref}: {arch.stderr.decode(errors='replace').strip()}")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=arch.stdout, check=True)
        self._proc = subprocess.Popen([sys.executable, "-c", _OLD_SCRIPT, str(sample_rate)], text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(tree),
                                      env={**__import__("os").environ, "PYTHONPATH": str(tree)})
        self._k = 0

    def time_renders(self, vectors: np.ndarray) -> float:
        """Seconds the old emulation takes for ``vectors`` (after an untimed pass over them)."""
        self._k += 1
        path = Path(self._tmp.name) / f"batch{self._k}.npy"
        np.save(path, vectors)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{path}\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulation of {self.ref} stopped (exit {self._proc.wait()})")
        return float(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._tmp.cleanup()


def _modes(name: str) -> list[tuple[str, dict[str, Any]]]:
    from synth_probe.synths.registry import BUILTIN_SYNTHS

    if name in BUILTIN_SYNTHS:
        return [("in-process", {})]
    # no reset between renders: this measures rendering and isolation; bench.plugin_reset measures resets
    return [("in-process", {"isolate": False, "reset": "none"}), ("child", {"isolate": True, "reset": "none"})]


def main(argv: Sequence[str] | None = None) -> int:
    from synth_probe.errors import SynthProbeError
    from synth_probe.synths.registry import get_synth

    ap = argparse.ArgumentParser(prog="python -m synth_probe.bench.render", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="renders per batch (default 100)")
    ap.add_argument("--batches", type=int, default=1, help="batches per synth and mode (default 1)")
    ap.add_argument("--synths", default=f"noisemaker,{AMSYNTH}",
                    help=f"comma-separated synth names or plugin paths (default noisemaker,{AMSYNTH})")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--against", default=None, metavar="REF",
                    help="also time the emulation of git revision REF on the same patches (same run) and print "
                         "the ratio")
    args = ap.parse_args(argv)
    if args.n < 1 or args.batches < 1:
        ap.error("--n and --batches must be at least 1")
    settings = RenderSettings(note=60, velocity=100, note_length=1.0, render_length=1.5,
                              sample_rate=args.sample_rate)
    rows: list[tuple[str, str, list[float] | None]] = []
    print(f"render benchmark: {args.batches} batch(es) of {args.n} random patches, "
          f"{settings.render_length} s renders ({settings.note_length} s note) at {settings.sample_rate} Hz, one process")
    for name in [s.strip() for s in args.synths.split(",") if s.strip()]:
        synths: dict[str, Synth] = {}
        for mode, kwargs in _modes(name):
            try:
                synths[mode] = get_synth(name, **kwargs)
            except (SynthProbeError, Exception) as e:  # e.g. a Faust program that does not compile yet
                print(f"  {name} [{mode}]: skipped: {type(e).__name__}: {e}", file=sys.stderr)
                rows.append((name, mode, None))
        rates: dict[str, list[float]] = {m: [] for m in synths}
        try:
            # modes alternate batch by batch on the same patches, so that load from other
            # processes on the machine hits both alike
            for b in range(args.batches):
                for mode, synth in synths.items():
                    vecs = random_patches(synth, args.n, seed=args.seed + b)
                    rates[mode].append(args.n / time_renders(synth, vecs, settings))
        except Exception as e:
            print(f"  {name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            for synth in synths.values():
                synth.close()
        for mode, synth in synths.items():
            rows.append((getattr(synth, "name", name), mode, rates[mode] or None))
    against: tuple[list[float], list[float]] | None = None
    if args.against:
        against = _time_against(args.against, args, settings)
    print()
    print(f"{'synth':<16} {'mode':<11} {'renders/s':>10} {'x real time':>12}   batches (renders/s)")
    by_synth: dict[str, dict[str, list[float]]] = {}
    for name, mode, r in rows:
        if r is None:
            print(f"{name[:16]:<16} {mode:<11} {'-':>10} {'-':>12}   failed or skipped")
            continue
        median = float(np.median(r))
        by_synth.setdefault(name, {})[mode] = r
        detail = " ".join(f"{x:.1f}" for x in r)
        print(f"{name[:16]:<16} {mode:<11} {median:>10.1f} {median * settings.render_length:>11.0f}x   {detail}")
    print("(renders/s: median over batches; x real time: seconds of audio rendered per second)")
    print()
    for name, modes in by_synth.items():
        if "child" in modes and "in-process" in modes:
            n = min(len(modes["child"]), len(modes["in-process"]))
            ratio = float(np.median([modes["child"][k] / modes["in-process"][k] for k in range(n)]))
            verdict = "met" if ratio >= 0.9 else "NOT met"
            print(f"{name}: child / in-process throughput = {ratio:.3f} (median of per-batch ratios); "
                  f"the child path costs {100 * (1 - ratio):.1f} % (target at most 10 %: {verdict})")
        elif "in-process" in modes:
            print(f"{name}: in-process only (a built-in synth has no child-process path)")
    inproc = {name: float(np.median(m["in-process"])) for name, m in by_synth.items() if "in-process" in m}
    if "noisemaker" in inproc:
        for name, rate in inproc.items():
            if name != "noisemaker":
                print(f"noisemaker / {name} in-process throughput = {inproc['noisemaker'] / rate:.2f} (same run)")
        print(f"noisemaker: {inproc['noisemaker'] * settings.render_length:.0f}x real time; target: at least the "
              "real TAL-NoiseMaker engine's 170-185x on one core here (amsynth: about 150-190x)")
    if against is not None:
        new, old = against
        ratio = float(np.median([a / b for a, b in zip(new, old)]))
        print(f"noisemaker now / noisemaker at {args.against}: {np.median(new):.1f} / {np.median(old):.1f} renders/s, "
              f"ratio {ratio:.3f} (median of per-batch ratios, same patches, batches alternating); "
              f"{'a loss' if ratio < 1 else 'a gain'} of {100 * abs(1 - ratio):.1f} %")
    return 0


def _time_against(ref: str, args: argparse.Namespace, settings: RenderSettings
                  ) -> tuple[list[float], list[float]] | None:
    """renders/s of the current and of ``ref``'s emulation, batch by batch on the same patches."""
    from synth_probe.synths.registry import get_synth

    try:
        old = OldEmulation(ref, settings.sample_rate)
    except (RuntimeError, OSError) as e:
        print(f"  --against {ref}: skipped: {e}", file=sys.stderr)
        return None
    synth = get_synth("noisemaker")
    new_rates, old_rates = [], []
    try:
        for b in range(args.batches):
            vecs = random_patches(synth, args.n, seed=args.seed + b)
            new_rates.append(args.n / time_renders(synth, vecs, settings))
            old_rates.append(args.n / old.time_renders(vecs))
    finally:
        synth.close()
        old.close()
    return new_rates, old_rates


if __name__ == "__main__":
    sys.exit(main())
