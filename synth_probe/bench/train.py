"""Training throughput of every torch model: ``python -m synth_probe.bench.train``.

Fits each torch estimator for a few epochs on random spectrogram-shaped data
(speed does not depend on the values) and prints the training throughput that
the estimator itself measured (``train_samples_per_s_``: rows per second of
optimizer steps, forward + backward + update), plus the autoencoder's
pretraining throughput. The first epoch (allocator and oneDNN warm-up) is
reported separately from the steady state of the later epochs.

The default input is 64 mel bands x 65 frames (1.5 s at 22,050 Hz, hop 512);
``--n-frames 130`` gives hop 256, ``LogMelSpectrogram``'s default. Issue 6
asks for >= 500 samples/s for the CNN on 2 CPU cores.

On a machine whose cores are shared with other busy processes, torch's
OpenMP threads spin-wait for each other and a 2-thread fit can run ~7x slower
than a 1-thread one; ``OMP_WAIT_POLICY=PASSIVE`` in the environment (set
before Python starts) or ``--threads 1`` avoids that. The header line prints
the thread count, the policy and the load average so numbers can be compared.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from synth_probe.pipeline import FAMILIES, build_estimator

__all__ = ["BENCH_MODELS", "main", "measure"]

#: benchmark name -> (family, extra constructor arguments): the families' ``bench`` variants
BENCH_MODELS: dict[str, tuple[str, dict]] = {
    name: (f.name, dict(extra)) for f in FAMILIES.values() for name, extra in f.bench.items()
}


def measure(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    input_shape: tuple[int, int],
    epochs: int,
    batch_size: int,
    device: str,
) -> dict[str, float]:
    """Fit one benchmark model and return its measured throughputs.

    Parameters
    ----------
    name : str
        A key of :data:`BENCH_MODELS`.
    X : np.ndarray [shape=(n, n_mels * n_frames), dtype=float32]
    y : np.ndarray [shape=(n, n_targets)]
    input_shape : (int, int)
    epochs : int
        Supervised epochs (and autoencoder pretraining epochs).
    batch_size : int
    device : str

    Returns
    -------
    dict
        ``samples_per_s`` (all epochs), ``first_epoch``, ``steady`` (epochs
        after the first; nan with one epoch), ``pretrain`` (autoencoder only),
        ``fit_seconds`` (wall time of ``fit``), ``n_parameters``.
    """
    family, extra = BENCH_MODELS[name]
    est = build_estimator(family, input_shape=input_shape, seed=0, device=device, overrides=dict(
        max_epochs=epochs, batch_size=batch_size, validation_fraction=0.0, patience=None,
        **({"pretrain_epochs": epochs} if family == "autoencoder" else {}), **extra))
    t0 = time.perf_counter()
    est.fit(X, y)
    wall = time.perf_counter() - t0
    hist = est.history_
    later = [h for h in hist[1:]]
    steady = (
        sum(len(X) for _ in later) / sum(h["seconds"] for h in later) if later else float("nan")
    )
    return {
        "samples_per_s": float(est.train_samples_per_s_),
        "first_epoch": float(hist[0]["samples_per_s"]),
        "steady": float(steady),
        "pretrain": float(getattr(est, "pretrain_samples_per_s_", float("nan"))),
        "fit_seconds": wall,
        "n_parameters": float(sum(p.numel() for p in est.module_.parameters())),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints one line per model and returns 0."""
    p = argparse.ArgumentParser(prog="python -m synth_probe.bench.train", description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(BENCH_MODELS), help="comma-separated, from: " + ", ".join(BENCH_MODELS))
    p.add_argument("--n", type=int, default=1024, help="training rows (default 1024)")
    p.add_argument("--n-mels", type=int, default=64)
    p.add_argument("--n-frames", type=int, default=65)
    p.add_argument("--n-targets", type=int, default=20, help="continuous targets (default 20)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per model (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in BENCH_MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {list(BENCH_MODELS)}")
    old_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        _run(names, args)
    finally:
        torch.set_num_threads(old_threads)
    return 0


def _run(names: list[str], args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    shape = (args.n_mels, args.n_frames)
    X = rng.normal(size=(args.n, shape[0] * shape[1])).astype(np.float32)
    y = rng.uniform(size=(args.n, args.n_targets))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, load average {load:.2f}; input {shape[0]}x{shape[1]}, {args.n} rows, batch {args.batch_size}, "
        f"{args.epochs} epochs"
    )
    print(f"{'model':<14} {'samples/s':>10} {'1st epoch':>10} {'steady':>10} {'pretrain':>10} {'params':>9} {'fit s':>7}")
    for name in names:
        r = measure(name, X, y, shape, args.epochs, args.batch_size, args.device)
        print(
            f"{name:<14} {r['samples_per_s']:>10.0f} {r['first_epoch']:>10.0f} {r['steady']:>10.0f} "
            f"{r['pretrain']:>10.0f} {r['n_parameters']:>9.0f} {r['fit_seconds']:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
