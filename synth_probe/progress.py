"""Progress of long commands: one tqdm bar on a terminal, plain periodic lines otherwise.

Every long command (generate, sensitivity, identifiability, compare, the feature and fit
stages of predictability, tune) reports through :class:`Progress`:

- on a terminal, one tqdm bar on stderr redrawn in place, with the time left of
  :class:`EtaEstimator` (not tqdm's own estimate);
- otherwise (a file, a pipe, CI), one line at the start, one every ``interval`` seconds
  while work finishes, and one at the end, each with the count, percentage, elapsed
  time and time left.

The time left is the remaining work divided by the rate of the *recent* completions:
the time before the first completion (worker start-up, program compiles, model
warm-up) is left out, and of the time since then only the latest half counts, so a
slow start does not inflate the estimate for the rest of the run.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from synth_probe.errors import ParameterValueError

__all__ = ["EtaEstimator", "Progress", "format_seconds", "plain_interval", "INTERVAL_ENV"]

#: environment variable that sets the seconds between plain progress lines of every command
INTERVAL_ENV = "SYNTH_PROBE_PROGRESS_INTERVAL"


def plain_interval(default: float) -> float:
    """Seconds between plain progress lines: ``$SYNTH_PROBE_PROGRESS_INTERVAL`` when set, else ``default``."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1e6:
        raise ParameterValueError(f"{INTERVAL_ENV} must be a number of seconds above 0, got {text!r}")
    return value


def format_seconds(s: float | None) -> str:
    """``s`` for people: "45 s", "3 min 05 s", "1 h 02 min"; "?" for None."""
    if s is None:
        return "?"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec:02d} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h} h {rest // 60:02d} min"


class EtaEstimator:
    """Time left from the rate of recent completions.

    Parameters
    ----------
    total : float
        Units of work in the run.
    recent : float, default=0.5
        Fraction of the time since the first completion over which the rate is measured
        (the latest part of it).
    min_span : float, default=5.0
        Shortest span (seconds) the rate is measured over, while the run is long enough.

    Notes
    -----
    With samples ``(t_i, done_i)``, the rate is ``(done_now - done_ref) / (t_now - t_ref)``
    where ``ref`` is the latest sample at or before ``t_now - max(min_span, recent *
    (t_now - t_first))`` and ``t_first`` is the time of the first completion; the time
    left is ``(total - done_now) / rate``.
    """

    def __init__(self, total: float, *, recent: float = 0.5, min_span: float = 5.0) -> None:
        self.total = float(total)
        self.recent = float(recent)
        self.min_span = float(min_span)
        self._samples: list[tuple[float, float]] = []

    def add(self, t: float, done: float) -> None:
        """Record that ``done`` units (cumulative) were finished at time ``t`` (seconds)."""
        if done <= 0:
            return
        if self._samples and done <= self._samples[-1][1]:
            return
        self._samples.append((float(t), float(done)))

    def rate(self) -> float | None:
        """Units per second over the recent completions; None before two completions."""
        if len(self._samples) < 2:
            return None
        t_first = self._samples[0][0]
        t_now, d_now = self._samples[-1]
        span = max(self.min_span, self.recent * (t_now - t_first))
        cut = t_now - span
        ref = self._samples[0]
        for s in self._samples:
            if s[0] <= cut:
                ref = s
            else:
                break
        if t_now <= ref[0] or d_now <= ref[1]:
            return None
        return (d_now - ref[1]) / (t_now - ref[0])

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left (None while unknown); ``now`` past the last completion is not counted as done."""
        r = self.rate()
        if r is None:
            return None
        t_last, d = self._samples[-1]
        left = max(0.0, self.total - d) / r
        if now is not None:
            left = max(0.0, left - max(0.0, now - t_last))
        return left


class Progress:
    """Progress of one stage of a long command.

    Parameters
    ----------
    total : int
        Units of work (renders, rows, trials, seconds of a budget).
    desc : str
        Label at the start of every line / of the bar.
    unit : str, default="renders"
        Plural name of the units.
    log : callable, optional
        Receives the plain lines (default: print to stderr).
    enabled : bool, default=True
        False makes every method a no-op.
    tty : bool, optional
        Draw a bar (default: whether stderr is a terminal).
    interval : float, default=10.0
        Seconds between plain lines (``$SYNTH_PROBE_PROGRESS_INTERVAL`` overrides it).
    clock : callable, default=time.monotonic
        Seconds; replaceable for tests.
    """

    def __init__(self, total: int, desc: str, *, unit: str = "renders", log: Callable[[str], None] | None = None,
                 enabled: bool = True, tty: bool | None = None, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.enabled = bool(enabled)
        self.interval = plain_interval(interval)
        self._clock = clock
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.t0 = clock()
        self.n = 0
        self.extra = ""
        self.eta = EtaEstimator(self.total)
        self._last_line = self.t0
        self._bar: Any = None
        self._closed = False
        if not self.enabled:
            return
        if tty is None:
            tty = sys.stderr.isatty()
        if tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit.rstrip("s") or unit, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
                             postfix="starting")
        else:
            self._log(f"{desc}: {self.total} {unit} to do; starting")

    def elapsed(self) -> float:
        """Seconds since the start."""
        return self._clock() - self.t0

    def remaining(self) -> float | None:
        """Estimated seconds left (None until two completions)."""
        return self.eta.remaining(self._clock() - self.t0)

    def line(self) -> str:
        """The status line: count, percentage, elapsed, time left, and the extra text."""
        pct = 100.0 * self.n / self.total if self.total else 100.0
        extra = f", {self.extra}" if self.extra else ""
        left = self.remaining()
        eta = "time left unknown yet" if left is None else f"about {format_seconds(left)} left"
        return (f"{self.desc}: {self.n}/{self.total} {self.unit} ({pct:.0f} %){extra}, "
                f"{format_seconds(self.elapsed())} elapsed, {eta}")

    def update(self, n: int = 1, *, extra: str | None = None) -> None:
        """Count ``n`` more finished units (``extra``: text shown beside the count, e.g. parameters done)."""
        if not self.enabled or self._closed:
            return
        self.n += int(n)
        if extra is not None:
            self.extra = extra
        now = self._clock()
        self.eta.add(now - self.t0, self.n)
        if self._bar is not None:
            left = self.remaining()
            post = "time left ?" if left is None else f"{format_seconds(left)} left"
            if self.extra:
                post = f"{self.extra}, {post}"
            self._bar.set_postfix_str(post, refresh=False)
            self._bar.update(int(n))
        elif now - self._last_line >= self.interval and self.n < self.total:
            self._last_line = now
            self._log(self.line())

    def write(self, msg: str) -> None:
        """Print ``msg`` without breaking the bar."""
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            self._log(msg)

    def close(self) -> None:
        """End the bar or print the final line (once)."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            extra = f", {self.extra}" if self.extra else ""
            self._log(f"{self.desc}: {self.n}/{self.total} {self.unit}{extra} in {format_seconds(self.elapsed())}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
