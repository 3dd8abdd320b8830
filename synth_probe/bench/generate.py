"""Benchmark of ``generate``: throughput at 1 and 2 jobs against a bare DawDreamer loop, peak memory vs n,
and the error int16 storage adds to a log-mel spectrogram.

Run ``python -m synth_probe.bench.generate [--n 400] [--render-length 1.5] [--sample-rate 44100]``.
Every figure comes from this run; the targets are printed beside them.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dawdreamer as daw
import numpy as np

from synth_probe.dataset import decode_audio, encode_audio, generate
from synth_probe.render import close_pools, get_pool, render_many
from synth_probe.sampling import make_plan
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.noisemaker import NoiseMaker, program_variant


def bare_loop(vectors: np.ndarray, seeds: np.ndarray, settings) -> float:
    """Renders/s of a plain DawDreamer loop over the same patches (engine built and compiled first)."""
    nm = NoiseMaker()
    # build (compile or load bitcode) every program variant these patches use, outside the timing;
    # from here on the loop makes only DawDreamer calls
    variants = [program_variant(v) for v in vectors]
    engines = {k: nm._engine(settings.sample_rate, k) for k in set(variants)}
    assert all(isinstance(e.engine, daw.RenderEngine) for e in engines.values())
    t = time.perf_counter()
    for v, s, k in zip(vectors, seeds, variants):
        eng = engines[k]
        proc, ctl = eng.proc, eng.control_index
        for i, x in zip(eng.param_index, v):
            proc.set_parameter(i, float(x))
        proc.set_parameter(ctl["ctl_note"], float(settings.note))
        proc.set_parameter(ctl["ctl_velocity"], float(settings.velocity))
        proc.set_parameter(ctl["ctl_notelen"], float(settings.note_length))
        proc.set_parameter(ctl["ctl_seed"], float(int(s) % 1_000_000))
        eng.engine.render(settings.render_length)
        eng.engine.get_audio().mean(axis=0)
    return len(vectors) / (time.perf_counter() - t)


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak summed RSS in MiB of it and its children)."""
    import psutil  # only this measurement needs it

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            total = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with {proc.returncode}")
    return time.perf_counter() - t, peak / 2**20


def storage_error(n: int = 40) -> dict[str, float]:
    """Error (dB) of a 128-band log-mel (top 80 dB) after int16 and float16 storage, on timbral patches."""
    import librosa  # heavy (numba); only this measurement needs it

    st = RenderSettings(render_length=1.0, note_length=0.8, sample_rate=22050)
    nm = NoiseMaker()
    v, s = make_plan(nm, "timbral").rows(0, 0, n)
    audio = render_many(nm, v, st, s)

    def lm(x):
        m = librosa.feature.melspectrogram(y=x, sr=st.sample_rate, n_fft=1024, hop_length=256, n_mels=128)
        return librosa.power_to_db(m, ref=np.max, top_db=80)

    out = {}
    q, sc = encode_audio(audio)
    for name, y in (("int16", decode_audio(q, sc)), ("float16", audio.astype(np.float16).astype(np.float32))):
        e = np.concatenate([np.abs(lm(b) - lm(a)).ravel() for a, b in zip(audio, y)])
        out[name] = (float(e.mean()), float(np.percentile(e, 99)), float(e.max()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1500, help="renders per throughput measurement (large enough that a worker's one-time start-up does not count as per-render overhead)")
    ap.add_argument("--render-length", type=float, default=1.5)
    ap.add_argument("--note-length", type=float, default=1.0)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--memory-n", default="200,800", help="two dataset sizes for the peak-memory check")
    ap.add_argument("--skip-storage", action="store_true")
    args = ap.parse_args(argv)

    st = RenderSettings(note_length=args.note_length, render_length=args.render_length, sample_rate=args.sample_rate)
    nm = NoiseMaker()
    plan = make_plan(nm, "timbral")
    vec, seeds = plan.rows(0, 0, args.n)
    print(f"settings: {args.n} timbral patches, {st.render_length} s at {st.sample_rate} Hz, note {st.note_length} s")

    bare = bare_loop(vec, seeds, st)
    print(f"bare DawDreamer loop (1 core):         {bare:8.1f} renders/s")

    tmp = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    rates = {}
    try:
        shard = max(25, args.n // 8)
        for jobs in (1, 2):
            pool = get_pool(nm, jobs)
            # warm the workers (engine build) outside the timing, as the bare loop's compile is outside it
            # (every program variant these patches use gets built in every worker: short renders of the same patches)
            short = RenderSettings(note_length=0.02, render_length=0.02, sample_rate=st.sample_rate)
            generate(nm, tmp / f"warm{jobs}", args.n, sampler="timbral", seed=0, settings=short,
                     shard_size=max(1, args.n // 16), jobs=jobs)
            t = time.perf_counter()
            r = generate(nm, tmp / f"j{jobs}", args.n, sampler="timbral", seed=0, settings=st, shard_size=shard,
                         jobs=jobs)
            rates[jobs] = args.n / (time.perf_counter() - t)
            assert r.ok, r.summary()
            del pool
        close_pools()
        over = (bare / rates[1] - 1) * 100
        print(f"generate --jobs 1:                     {rates[1]:8.1f} renders/s  (overhead {over:+.1f} %, target <= 10 %)")
        print(f"generate --jobs 2:                     {rates[2]:8.1f} renders/s  (speed-up x{rates[2] / rates[1]:.2f} "
              "over 1 job, target >= 1.8)")

        mem = []
        for n in (int(x) for x in args.memory_n.split(",")):
            secs, peak = peak_rss_of([
                sys.executable, "-m", "synth_probe", "generate", "noisemaker", "--n", str(n), "--out",
                str(tmp / f"m{n}"), "--sampler", "timbral", "--render-length", str(st.render_length), "--note-length",
                str(st.note_length), "--sample-rate", str(st.sample_rate), "--shard-size", "100", "--jobs", "2",
                "--no-progress"])
            mem.append(peak)
            print(f"peak RSS (main + workers), n={n:6d}:  {peak:8.1f} MiB  ({secs:.1f} s)")
        print(f"peak memory ratio largest/smallest n:  {mem[-1] / mem[0]:8.2f}  (target: ~1, independent of n)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if not args.skip_storage:
        for name, (mean, p99, mx) in storage_error().items():
            print(f"log-mel error of {name:7s} storage (dB): mean {mean:.4f}, p99 {p99:.4f}, max {mx:.2f}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
