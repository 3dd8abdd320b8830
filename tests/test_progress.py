"""synth_probe.progress: the time-left arithmetic on a fake clock, plain lines off a terminal, and one real command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth_probe.bench.progress import parse_seconds
from synth_probe.errors import ParameterValueError
from synth_probe.progress import INTERVAL_ENV, EtaEstimator, Progress, format_seconds

ROOT = Path(__file__).resolve().parents[1]


def test_format_seconds():
    assert format_seconds(None) == "?"
    assert format_seconds(4.4) == "4 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3 * 3600 + 125) == "3 h 02 min"


def test_estimate_leaves_out_a_slow_start():
    """60 s of start-up (compiles), then 10 units/s: from 10 % on, the estimate is within 25 % of the truth.

    The whole-run average (what the command printed before) would say about twice the truth at 10 %.
    """
    total, warm, rate = 10_000, 60.0, 10.0
    eta = EtaEstimator(total)
    worst = 1.0
    for k in range(1, total + 1, 50):
        t = warm + k / rate
        eta.add(t, k)
        if k >= total // 10 and k < total:
            truth = (total - k) / rate
            worst = max(worst, eta.remaining(t) / truth, truth / eta.remaining(t))
            naive = t / k * (total - k)
            if k < total // 10 + 50:
                assert naive / truth > 1.4  # the naive estimate is far off at 10 %
    assert worst < 1.25


def test_estimate_follows_a_change_of_pace():
    eta = EtaEstimator(10_000)
    assert eta.remaining() is None
    eta.add(1.0, 10)
    assert eta.rate() is None  # one completion: no rate yet
    for t in range(2, 101):  # 10/s ...
        eta.add(float(t), 10 * t)
    assert eta.rate() == pytest.approx(10.0)
    eta.add(100.5, 900)  # a count that does not grow is ignored
    for t in range(101, 301):  # ... then 5/s for 200 s: the latest half of the time is all at the new pace
        eta.add(float(t), 1000 + 5 * (t - 100))
    assert eta.rate() == pytest.approx(5.0)
    assert eta.remaining() == pytest.approx((10_000 - 2000) / 5.0)
    assert eta.remaining(now=310.0) == pytest.approx((10_000 - 2000) / 5.0 - 10.0)


def test_plain_lines_off_a_terminal():
    now = [0.0]
    lines: list[str] = []
    p = Progress(100, "work", unit="items", log=lines.append, tty=False, interval=10.0, clock=lambda: now[0])
    assert lines == ["work: 100 items to do; starting"]
    for i in range(100):
        now[0] += 1.0
        p.update(1, extra=f"{i // 10} groups")
    p.close()
    p.close()  # once only
    # a line every 10 s (not after every unit), then the closing line
    assert 8 <= len(lines) - 2 <= 10, lines
    assert all("\r" not in s for s in lines)
    mid = lines[5]
    assert mid.startswith("work: ") and "items (" in mid and "elapsed" in mid and "left" in mid and "groups" in mid
    assert lines[-1] == "work: 100/100 items, 9 groups in 1 min 40 s"


def test_disabled_progress_prints_nothing():
    lines: list[str] = []
    p = Progress(10, "x", log=lines.append, enabled=False)
    p.update(5)
    p.close()
    assert lines == []


def test_sensitivity_command_prints_progress_lines_to_a_pipe(tmp_path):
    """A real short run with stderr to a pipe: a first line at once, plain lines, no carriage returns."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "synth_probe", "sensitivity", "noisemaker", "--bases", "2",
                        "--params", "cutoff,resonance", "--steps", "3", "--render-length", "0.5",
                        "--sample-rate", "16000", "--out", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    err = r.stderr.splitlines()
    assert "\r" not in r.stderr
    assert any(line.startswith("sensitivity: ") and line.endswith("renders to do; starting") for line in err), err
    done = [line for line in err if line.startswith("sensitivity: ") and " in " in line and "parameters" in line]
    assert done and done[-1].split(" renders")[0].split(": ")[1].split("/")[0] == done[-1].split("/")[1].split(" ")[0]


def test_interval_from_the_environment(monkeypatch):
    """$SYNTH_PROBE_PROGRESS_INTERVAL sets the seconds between plain lines; a bad value is a clear error."""
    now = [0.0]
    lines: list[str] = []
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    p = Progress(100, "work", log=lines.append, tty=False, interval=10.0, clock=lambda: now[0])
    assert p.interval == 2.5
    for _ in range(10):
        now[0] += 1.0
        p.update(1)
    # the start line, then a line once 2.5 s have passed since the last one: at 3, 6 and 9 s
    assert [s.split(" elapsed")[0].rsplit(", ", 1)[1] for s in lines[1:]] == ["3 s", "6 s", "9 s"]
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(ParameterValueError, match=INTERVAL_ENV):
            Progress(1, "x", log=lines.append, tty=False)


def test_bench_reads_back_the_printed_durations():
    for s in (0.0, 4.4, 59.0, 61.0, 185.0, 3599.0, 3 * 3600 + 125):
        text = format_seconds(s)
        assert parse_seconds(text) == pytest.approx(s, abs=60 if s >= 3600 else 0.5), text
    with pytest.raises(ValueError):
        parse_seconds("soon")


def test_program_variants_are_the_distinct_variants_of_the_rows(noisemaker):
    from synth_probe.synths.noisemaker import program_variant, program_variants

    rng = np.random.default_rng(0)
    vecs = np.repeat(noisemaker.patch_vector()[None, :], 300, axis=0)
    for name in ("filtertype", "delaywet", "reverbwet", "chorus1enable", "chorus2enable"):
        i = noisemaker.param_names.index(name)
        vecs[:, i] = np.where(rng.random(300) < 0.5, 0.0, rng.random(300))
    got = program_variants(vecs)
    assert sorted(got) == sorted({program_variant(v) for v in vecs})
    assert len(got) == 10  # five filter families, effects on and off
    assert got[-1] == (0, False)  # the shortest compile last


def test_missing_programs_are_built_before_the_renders(noisemaker, monkeypatch, tmp_path):
    """On an empty private cache the patch's program is built in its own phase (one compile), then never again."""
    from synth_probe.render import build_programs
    from synth_probe.synths.base import RenderSettings
    from synth_probe.synths.noisemaker import CACHE_ENV, NoiseMaker, program_variant

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "faust"))
    synth = NoiseMaker()
    settings = RenderSettings(60, 100, 0.2, 0.3, 16000)
    vecs = noisemaker.patch_vector()[None, :]
    assert synth.programs_to_build(vecs, settings) == [program_variant(vecs[0])]
    lines: list[str] = []
    assert build_programs(synth, vecs, settings, jobs=1, log=lines.append, desc="t") == 1
    assert lines[0] == "t: building programs: 1 programs to do; starting"
    assert lines[-1].startswith("t: building programs: 1/1 programs in ")
    assert len(list((tmp_path / "faust").glob("*.bc"))) == 1
    assert synth.programs_to_build(vecs, settings) == []
    assert build_programs(synth, vecs, settings, jobs=1, log=lines.append) == 0
    # the built program renders what a process restoring it from the cache renders
    y = synth.render_vector(vecs[0], settings, seed=3)
    assert np.array_equal(y, NoiseMaker().render_vector(vecs[0], settings, seed=3))
    synth.close()
