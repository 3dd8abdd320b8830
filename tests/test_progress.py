"""synth_probe.progress: the time-left arithmetic on a fake clock, plain lines off a terminal, and one real command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth_probe.progress import EtaEstimator, Progress, format_seconds

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
