"""Argument types shared by the commands: numbers checked when the command line is parsed.

A value out of range (0, negative, NaN, infinite, absurdly large) is refused by
argparse before any file is read or any synth is built, on one line:
``synth-probe CMD: error: argument --jobs: must be >= 1, got 0``.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

from synth_probe.errors import ParameterValueError
from synth_probe.fileio import loads_json
from synth_probe.synths.base import MAX_RENDER_SECONDS

__all__ = ["int_arg", "float_arg", "jobs_arg", "seed_arg", "seconds_arg", "sample_rate_arg", "key_value", "MAX_JOBS", "MAX_SEED"]

#: the most worker processes a command starts (each holds a synth and its audio; more is a typo)
MAX_JOBS = 256
#: the largest seed (LightGBM takes a 32-bit signed int)
MAX_SEED = 2**31 - 1


def int_arg(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in ``[lo, hi]`` (either bound may be None)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if lo is not None and v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}, got {v}")
        return v

    return parse


def float_arg(lo: float | None = None, hi: float | None = None, *, above: bool = False, below: bool = False
              ) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number between ``lo`` and ``hi``.

    The bounds are included; ``above`` excludes ``lo``, ``below`` excludes ``hi``; either may be None.
    """

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if lo is not None and (v <= lo if above else v < lo):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {lo:g}, got {v:g}")
        if hi is not None and (v >= hi if below else v > hi):
            raise argparse.ArgumentTypeError(f"must be {'<' if below else '<='} {hi:g}, got {v:g}")
        return v

    return parse


def jobs_arg() -> Callable[[str], int]:
    """A number of worker processes, 1..:data:`MAX_JOBS`."""
    return int_arg(1, MAX_JOBS)


def seed_arg() -> Callable[[str], int]:
    """A seed, 0..2**31-1 (the range every library here accepts: NumPy, LightGBM, torch)."""
    return int_arg(0, MAX_SEED)


def seconds_arg(*, zero: bool = False) -> Callable[[str], float]:
    """A note or render length in seconds.

    > 0 (>= 0 with ``zero``) and at most :data:`~synth_probe.synths.base.MAX_RENDER_SECONDS`
    (see there for why).
    """
    return float_arg(0.0, MAX_RENDER_SECONDS, above=not zero)


def sample_rate_arg() -> Callable[[str], int]:
    """A render sample rate, 8000..192000 Hz (what :class:`~synth_probe.synths.base.RenderSettings` allows)."""
    return int_arg(8000, 192000)


def _parse_value(raw: str) -> Any:
    """A ``--set`` value: JSON where it parses (numbers, lists, true/null), else the text itself."""
    if raw.startswith(("[", "{")):  # meant as JSON: a fault in it is an error, not a string
        return loads_json(raw, error=ParameterValueError, what=f"--set value {raw[:40]!r}")
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def key_value(item: str) -> tuple[str, Any]:
    """A ``--set KEY=VALUE`` item as ``(key, value)``, the value read as JSON where it parses.

    Raises
    ------
    ParameterValueError
        No ``=``, or a value meant as JSON (``[``/``{``) that does not parse.
    """
    if "=" not in item:
        raise ParameterValueError(f"--set expects KEY=VALUE, got {item!r}")
    k, _, v = item.partition("=")
    return k.strip(), _parse_value(v.strip())
