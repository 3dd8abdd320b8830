"""Reference figures of the real TAL-NoiseMaker engine, for the emulation's regression tests.

The calibration renders of a real engine (800 probes, FLAC, ``probes.csv``) are not part of the
repository; their small figures are. This module measures the figures of a render — level,
peak, centroid, audible length, whether it sounds — and, run as a script, derives them for chosen
probes of a calibration folder into a JSON file under ``tests/data/``::

    python tests/calibration_figures.py --ref ../shared/calibration/tal-noisemaker-gpl \\
        --probes 'delay_0(0|1)\\d' --out tests/data/calibration_delay.json

The tests render the same probes with the emulation (:func:`render_probe`) and compare figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: render settings of the calibration folder (its README): 44.1 kHz, note-off at 1.0 s, 2.0 s files
SAMPLE_RATE = 44100
NOTE_LENGTH = 1.0
RENDER_LENGTH = 2.0
#: a render whose peak stays below this is silent (the calibration README's threshold)
SILENT_PEAK = 1e-3


def _frame_levels_db(audio: np.ndarray, hop: int = 512) -> np.ndarray:
    n = len(audio) // hop
    frames = np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def figures(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, float | bool]:
    """Small figures of one mono render.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,)]
    sample_rate : int

    Returns
    -------
    figures : dict
        ``level_db`` (RMS over the note, 0–1 s, dB re full scale), ``tail_db`` (RMS after
        note-off, 1–2 s), ``peak``, ``centroid_st`` (spectral centroid of the note as a MIDI
        note number), ``audible_s`` (end of the last 11.6 ms frame above −60 dB), ``sounds``.
        :func:`derive` adds ``true_peak`` (the folder's unclipped peak over both channels)
        where the folder has ``render_peaks.csv``.
    """
    x = np.asarray(audio, dtype=np.float64)
    note = x[: int(NOTE_LENGTH * sample_rate)]
    tail = x[int(NOTE_LENGTH * sample_rate):]
    spec = np.abs(np.fft.rfft(note * np.hanning(len(note)))) ** 2
    freqs = np.fft.rfftfreq(len(note), 1.0 / sample_rate)
    centroid = float((spec * freqs).sum() / (spec.sum() + 1e-20))
    levels = _frame_levels_db(x)
    loud = np.nonzero(levels > -60.0)[0]
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return {
        "level_db": float(10.0 * np.log10(np.mean(note**2) + 1e-20)),
        "tail_db": float(10.0 * np.log10(np.mean(tail**2) + 1e-20)) if len(tail) else -200.0,
        "peak": peak,
        "centroid_st": float(12.0 * np.log2(max(centroid, 1.0) / 440.0) + 69.0),
        "audible_s": 0.0 if len(loud) == 0 else float((loud[-1] + 1) * 512 / sample_rate),
        "sounds": peak >= SILENT_PEAK,
    }


def render_probe(synth, probe: Mapping[str, float | int]) -> np.ndarray:
    """Render one calibration probe (its 88 unit values, note and velocity) with ``synth``.

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,), dtype=float32]
    """
    from synth_probe.synths.base import RenderSettings

    vec = np.array([float(probe[name]) for name in synth.param_names])
    settings = RenderSettings(int(probe["note"]), int(probe["velocity"]), NOTE_LENGTH, RENDER_LENGTH, SAMPLE_RATE)
    return synth.render_vector(vec, settings, seed=0)


def derive(ref: Path, pattern: str) -> dict[str, dict]:
    """Figures of the real renders of every probe whose id matches ``pattern``, with the probe itself."""
    import pandas as pd
    import soundfile as sf

    probes = pd.read_csv(ref / "probes.csv")
    rows = probes[probes["probe_id"].str.contains(pattern, regex=True)]
    # the audio files clip at full scale; the folder's true float peaks (both channels) are kept apart
    peaks_csv = ref / "render_peaks.csv"
    true_peaks = pd.read_csv(peaks_csv).set_index("probe_id")["peak"] if peaks_csv.exists() else None
    out: dict[str, dict] = {}
    for _, row in rows.iterrows():
        audio, sr = sf.read(ref / row["file"], dtype="float64", always_2d=True)
        patch = {k: float(v) for k, v in row.items() if k not in ("probe_id", "set", "file")}
        real = figures(audio.mean(axis=1), sr)
        if true_peaks is not None and row["probe_id"] in true_peaks.index:
            real["true_peak"] = float(true_peaks[row["probe_id"]])
        out[row["probe_id"]] = {"probe": patch, "real": real}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, default=Path("../shared/calibration/tal-noisemaker-gpl"))
    ap.add_argument("--probes", required=True, help="regular expression over probe ids")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    data = derive(args.ref, args.probes)
    if not data:
        print(f"no probe id matches {args.probes!r}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(data)} probes to {args.out}")
    return 0


def load(path: Path) -> dict[str, dict]:
    """Read a figures file written by :func:`main`."""
    return json.loads(Path(path).read_text())


if __name__ == "__main__":
    sys.exit(main())
