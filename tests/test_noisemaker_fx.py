"""Effects section of the NoiseMaker emulation (``synths/noisemaker/fx.lib``), tested standalone.

A small Faust program (a header with the ``P_*`` sliders fx.lib uses, ``SEED``, ``BPM``,
then fx.lib and ``process = effects;``) is compiled once with DawDreamer and fed known
stereo signals through a playback processor; every check is a real render.

Run ``python tests/test_noisemaker_fx.py --bench`` to measure the cost of the effects.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import dawdreamer as daw
import numpy as np
import pytest

from synth_probe.spectral import multi_resolution_log_mel_distance

FX_PATH = Path(__file__).resolve().parents[1] / "synth_probe" / "synths" / "noisemaker" / "fx.lib"
SR = 22050
N = int(0.5 * SR)
ADDR = "/dawdreamer/"
# Defaults of the startup program (specs.py) for the parameters the effects read.
DEFAULTS = {
    "delaywet": 0.0, "delaytime": 0.5, "delaysync": 0.0, "delayfactorl": 0.0, "delayfactorr": 0.0,
    "delayhighshelf": 0.0, "delaylowshelf": 0.0, "delayfeedback": 0.5,
    "chorus1enable": 0.0, "chorus2enable": 0.0,
    "reverbwet": 0.0, "reverbdecay": 0.5, "reverbpredelay": 0.0, "reverbhighcut": 0.0, "reverblowcut": 1.0,
}
DELAY_ON = {"delaywet": 0.5, "delaytime": 0.2}  # 0.21 s: echoes at 0.21 s and 0.42 s fit in 0.5 s
REVERB_ON = {"reverbwet": 0.7}


def _exp20(v: float) -> float:
    return (20.0**v - 1.0) / 19.0


def fx_source() -> str:
    return FX_PATH.read_text()


def program(body: str = "process = effects;\n", *, bpm: float = 120.0) -> str:
    """Header declaring the sliders fx.lib reads (defaults as in specs.py), then fx.lib and ``body``."""
    src = fx_source()
    used = sorted(set(re.findall(r"\bP_(\w+)", src)))
    unknown = [n for n in used if n not in DEFAULTS]
    assert not unknown, f"fx.lib reads parameters this test does not know: {unknown}"
    head = ['import("stdfaust.lib");']
    head += [f'P_{n} = hslider("{n}", {DEFAULTS[n]}, 0, 1, 0.000001);' for n in used]
    head += ['SEED = hslider("ctl_seed", 0, 0, 1000000, 1);', f"BPM = {bpm};"]
    return "\n".join(head) + "\n" + src + "\n" + body


class FxRig:
    """One compiled effects program, fed by a playback processor."""

    def __init__(self, sr: int = SR, body: str = "process = effects;\n") -> None:
        self.sr = sr
        self.engine = daw.RenderEngine(sr, 256)
        self.faust = self.engine.make_faust_processor("fx")
        self.faust.set_dsp_string(program(body))
        assert self.faust.compile()
        names = {d["name"] for d in self.faust.get_parameters_description()}
        self.params = sorted(n[len(ADDR):] for n in names)
        self.play = self.engine.make_playback_processor("src", np.zeros((2, 16), np.float32))
        self.engine.load_graph([(self.play, []), (self.faust, ["src"])])

    def render(self, x: np.ndarray, seed: int = 0, **params: float) -> np.ndarray:
        """Render stereo ``x`` (shape (2, n)) with the defaults plus ``params``; returns (2, n)."""
        for name in params:
            assert name in DEFAULTS, f"unknown effect parameter {name!r}"
        values = {**DEFAULTS, **params}
        for name in self.params:
            if name == "ctl_seed":
                self.faust.set_parameter(ADDR + name, float(seed))
            else:
                self.faust.set_parameter(ADDR + name, float(values[name]))
        self.play.set_data(np.ascontiguousarray(x, dtype=np.float32))
        n = x.shape[1]
        self.engine.render(n / self.sr)
        y = self.engine.get_audio()
        assert y.shape[0] == 2 and y.shape[1] >= n
        return y[:, :n]


def burst(n: int = N, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A 40 ms stereo noise burst (different in L and R), then silence; shape (2, n)."""
    rng = np.random.default_rng(1234)
    x = np.zeros((2, n), np.float32)
    m = int(0.04 * sr)
    x[:, :m] = amp * rng.uniform(-1, 1, size=(2, m))
    return x


def click(n: int = N) -> np.ndarray:
    x = np.zeros((2, n), np.float32)
    x[:, 0] = 1.0
    return x


@pytest.fixture(scope="module")
def rig() -> FxRig:
    return FxRig()


@pytest.fixture(scope="module")
def sig() -> np.ndarray:
    return burst()


def _differs(a: np.ndarray, b: np.ndarray, rel: float = 1e-3) -> bool:
    """True when a and b differ by more than ``rel`` of b's RMS (in RMS)."""
    return float(np.sqrt(np.mean((a - b) ** 2))) > rel * float(np.sqrt(np.mean(b**2)))


def test_parameters_are_the_documented_ones(rig: FxRig) -> None:
    assert set(rig.params) == set(DEFAULTS) | {"ctl_seed"}


def test_off_is_exact_bypass(rig: FxRig, sig: np.ndarray) -> None:
    # Defaults: delay wet 0, chorus off, reverb wet 0 -> input bit for bit.
    assert np.array_equal(rig.render(sig), sig)
    # Every other effect knob moved, the three switches still off: still bit for bit.
    moved = {"delaytime": 0.9, "delaysync": 1.0, "delayfactorl": 1.0, "delayfactorr": 1.0,
             "delayhighshelf": 0.7, "delaylowshelf": 0.7, "delayfeedback": 1.0, "reverbdecay": 1.0,
             "reverbpredelay": 0.5, "reverbhighcut": 0.8, "reverblowcut": 0.3}
    assert np.array_equal(rig.render(sig, seed=77, **moved), sig)


def test_reverb_low_cut_zero_silences_the_reverb(rig: FxRig, sig: np.ndarray) -> None:
    assert np.array_equal(rig.render(sig, reverbwet=1.0, reverblowcut=0.0), sig)


@pytest.mark.parametrize(
    "base, name, value",
    [
        (DELAY_ON, "delaywet", 1.0),
        (DELAY_ON, "delaytime", 0.1),
        (DELAY_ON, "delaysync", 1.0),
        (DELAY_ON, "delayhighshelf", 0.7),
        (DELAY_ON, "delaylowshelf", 0.7),
        (DELAY_ON, "delayfeedback", 0.9),
        ({"chorus1enable": 1.0}, "chorus2enable", 1.0),
        ({"chorus2enable": 1.0}, "chorus1enable", 1.0),
        (REVERB_ON, "reverbwet", 1.0),
        (REVERB_ON, "reverbdecay", 0.9),
        (REVERB_ON, "reverbpredelay", 0.3),
        (REVERB_ON, "reverbhighcut", 0.6),
        (REVERB_ON, "reverblowcut", 0.4),
    ],
)
def test_each_parameter_changes_the_output(rig: FxRig, sig: np.ndarray, base, name, value) -> None:
    a = rig.render(sig, **base)
    b = rig.render(sig, **{**base, name: value})
    assert not np.array_equal(a, sig), "the effect under test is not on"
    assert _differs(a, b), f"{name} {DEFAULTS.get(name)} -> {value} did not change the output"


def test_each_chorus_alone_differs_from_dry_and_from_the_other(rig: FxRig, sig: np.ndarray) -> None:
    one = rig.render(sig, chorus1enable=1.0)
    two = rig.render(sig, chorus2enable=1.0)
    assert _differs(one, sig) and _differs(two, sig) and _differs(one, two)
    # Opposite LFO phases left/right: identical L/R input gives different L/R output.
    mono = np.repeat(sig[:1], 2, axis=0)
    y = rig.render(mono, chorus1enable=1.0)
    assert _differs(y[0], y[1], rel=1e-2)


def _first_echo(y: np.ndarray, x: np.ndarray) -> int:
    """Where the echo of the click x peaks in y (the loop EQ low-passes it, so it spreads a little)."""
    d = np.abs(y - x)
    d[0] = 0.0
    assert d.max() > 0.2, "no echo found"
    return int(np.argmax(d))


@pytest.mark.parametrize(
    "params, seconds",
    [
        ({"delaytime": 0.2}, 4.0 * (0.01 + 0.99 * _exp20(0.2))),  # free time, TAL's curve
        ({"delaytime": 0.0}, 0.04),  # shortest free time
        ({"delaytime": 0.0, "delaysync": 1.0}, 0.125),  # 1/16 of a 120 BPM bar
        ({"delaytime": 1.0 / 17.0, "delaysync": 1.0}, 0.25),  # 1/8
        ({"delaytime": 7.0 / 17.0, "delaysync": 1.0}, 0.25 * 2.0 / 3.0),  # 1/8 triplet
        ({"delaytime": 13.0 / 17.0, "delaysync": 1.0}, 0.25 * 1.5),  # 1/8 dotted
        ({"delaytime": 14.0 / 17.0 - 1e-3, "delaysync": 1.0}, 0.25 * 1.5),  # truncation, not rounding
    ],
)
def test_delay_time_mapping(rig: FxRig, params, seconds: float) -> None:
    x = click()
    y = rig.render(x, delaywet=1.0, delayfeedback=0.0, **params)
    expected = int(seconds * SR + 0.5)
    assert _first_echo(y[0], x[0]) == pytest.approx(expected, abs=1)
    assert _first_echo(y[1], x[1]) == pytest.approx(expected, abs=1)


def test_x2_halves_only_its_side(rig: FxRig) -> None:
    x = click()
    base = {"delaywet": 1.0, "delayfeedback": 0.0, "delaytime": 0.2}
    full = int(4.0 * (0.01 + 0.99 * _exp20(0.2)) * SR + 0.5)
    y = rig.render(x, delayfactorl=1.0, **base)
    assert _first_echo(y[0], x[0]) == pytest.approx(full / 2, abs=1)
    assert _first_echo(y[1], x[1]) == pytest.approx(full, abs=1)
    y = rig.render(x, delayfactorr=1.0, **base)
    assert _first_echo(y[0], x[0]) == pytest.approx(full, abs=1)
    assert _first_echo(y[1], x[1]) == pytest.approx(full / 2, abs=1)


def test_delay_wet_is_linear_and_feedback_repeats(rig: FxRig) -> None:
    x = click()
    d = int(4.0 * (0.01 + 0.99 * _exp20(0.2)) * SR + 0.5)
    one = (rig.render(x, delaywet=1.0, delayfeedback=0.0, delaytime=0.2) - x)[0]
    y = rig.render(x, delaywet=0.3, delayfeedback=0.0, delaytime=0.2)
    np.testing.assert_allclose(y[0] - x[0], 0.3 * one, atol=1e-6)  # out = in + wet * echo
    assert np.abs(one[d - 2: d + 3]).max() > 0.5  # the echo, low-passed by the loop EQ
    assert np.abs(one[2 * d - 5: 2 * d + 6]).max() < 1e-4  # no feedback: a single echo
    y = (rig.render(x, delaywet=1.0, delayfeedback=0.5, delaytime=0.2) - x)[0]
    # feedback 0.5 is TAL's loop gain 1: the second echo is the first one through the EQ again
    assert abs(y[2 * d - 5: 2 * d + 6]).max() > 0.5 * np.abs(one[d - 2: d + 3]).max()


def test_delay_feedback_above_half_saturates_instead_of_running_away(rig: FxRig) -> None:
    rng = np.random.default_rng(3)
    x = np.zeros((2, N), np.float32)
    x[:, : int(0.02 * SR)] = 0.3 * rng.uniform(-1, 1, size=(2, int(0.02 * SR)))
    d = int(4.0 * (0.01 + 0.99 * _exp20(0.0)) * SR + 0.5)  # 40 ms: ~12 passes in 0.5 s
    late = slice(N - int(0.1 * SR), N)
    rms = lambda v: float(np.sqrt(np.mean(v**2)))  # noqa: E731
    level = {fb: rms(rig.render(x, delaywet=1.0, delaytime=0.0, delayfeedback=fb)[0, late]) for fb in (0.25, 0.5, 1.0)}
    assert level[0.25] < level[0.5] < level[1.0]  # gain 0.875 < 1 < 2
    assert 0.1 < level[1.0] < 2.5  # gain 2 builds up to the saturator's level and stays bounded
    assert d < N


def test_reverb_predelay_and_stereo(rig: FxRig) -> None:
    x = click()
    y = rig.render(x, reverbwet=1.0, reverbpredelay=0.3)
    pre = int(_exp20(0.3) * SR)
    wet = y - x
    assert np.abs(wet[:, : pre - 1]).max() == 0.0  # nothing before the pre-delay
    assert np.abs(wet[:, pre: pre + int(0.1 * SR)]).max() > 1e-4
    assert _differs(wet[0], wet[1], rel=0.1)  # mono in, decorrelated L/R out


def test_seed_determinism(rig: FxRig, sig: np.ndarray) -> None:
    on = {"reverbwet": 1.0, "reverbdecay": 0.8, "delaywet": 0.5, "delaytime": 0.2,
          "chorus1enable": 1.0}
    a = rig.render(sig, seed=5, **on)
    b = rig.render(sig, seed=5, **on)
    c = rig.render(sig, seed=6, **on)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # ... but only slightly: the seed moves the comb modulation, not the sound (the real
    # engine's seeds differ by up to 2.3 dB; the waveforms of an undamped tail drift apart).
    assert multi_resolution_log_mel_distance(a.mean(0), c.mean(0), SR) < 2.3
    assert multi_resolution_log_mel_distance(a.mean(0), sig.mean(0), SR) > 10.0


def test_extreme_settings_stay_finite_and_bounded(rig: FxRig) -> None:
    rng = np.random.default_rng(7)
    x = (0.9 * rng.uniform(-1, 1, size=(2, N))).astype(np.float32)  # loud, continuous
    extreme = {"delaywet": 1.0, "delaytime": 0.0, "delayfeedback": 1.0, "chorus1enable": 1.0,
               "chorus2enable": 1.0, "reverbwet": 1.0, "reverbdecay": 1.0}
    y = rig.render(x, **extreme)
    assert np.isfinite(y).all()
    assert np.abs(y).max() < 30.0
    # The delay loop alone: the tanh bounds what re-enters the line (|w| <= |in| + 1) and the
    # loop EQ's peak gain is at most 2, so |out| <= |in| + wet * 2 * (|in| + 1).
    y = rig.render(x, delaywet=1.0, delaytime=0.0, delayfeedback=1.0)
    assert np.isfinite(y).all() and np.abs(y).max() <= 0.9 + 2 * (0.9 + 1.0) + 1e-5


@pytest.mark.parametrize("sr", [16000, 48000])
def test_other_sample_rates(sr: int) -> None:
    r = FxRig(sr)
    x = click(int(0.3 * sr))
    y = r.render(x, delaywet=1.0, delayfeedback=0.0, delaytime=0.1, chorus1enable=1.0, reverbwet=0.5)
    assert np.isfinite(y).all()
    d = int(4.0 * (0.01 + 0.99 * _exp20(0.1)) * sr + 0.5)
    # the echo (through the chorus, so spread over ~7 ms) lands after d samples
    late = np.abs(y[0, d: d + int(0.012 * sr)]).max()
    assert late > 0.2


def bench(repeats: int = 40) -> dict[str, float]:
    """Best-of-``repeats`` cost (ms) of a 1.5 s stereo render at 44.1 kHz, all effects on.

    A Faust noise source is rendered alone ("bare") and through the effects; the
    difference is the cost of the effects. Runs are interleaved so load hits both alike.
    """
    body_src = "src = no.noise * 0.3, no.noise * 0.2;\n"
    on = {"delaywet": 0.5, "chorus1enable": 1.0, "chorus2enable": 1.0, "reverbwet": 0.7}
    engines = {}
    for label, body in (("bare", "process = src;\n"), ("effects", "process = src : effects;\n"),
                        ("delay", "process = src : fx_delay;\n"), ("chorus", "process = src : fx_chorus;\n"),
                        ("reverb", "process = src : fx_reverb;\n")):
        e = daw.RenderEngine(44100, 512)
        f = e.make_faust_processor("fx")
        f.set_dsp_string(program(body_src + body))
        assert f.compile()
        known = {d["name"] for d in f.get_parameters_description()}
        for k, v in on.items():
            if ADDR + k in known:
                f.set_parameter(ADDR + k, v)
        e.load_graph([(f, [])])
        e.render(1.5)
        engines[label] = e
    best = {k: float("inf") for k in engines}
    for _ in range(repeats):
        for k, e in engines.items():
            t = time.perf_counter()
            e.render(1.5)
            best[k] = min(best[k], time.perf_counter() - t)
    return {k: 1e3 * (v - best["bare"]) if k != "bare" else 1e3 * v for k, v in best.items()}


if __name__ == "__main__":
    if "--bench" in sys.argv:
        for k, v in bench().items():
            print(f"{k:8s} {v:.3f} ms" + (" (render of the source alone)" if k == "bare" else " above bare"))
