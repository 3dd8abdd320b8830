"""Tuning's verdict with its reasons: the noise of the gain, the parameter's in-context estimate, what to try.

:func:`gain_noise` is a paired bootstrap of the test-score difference between the tuned
model and the untuned default over the test rows; :func:`in_context_estimate` reads the
identifiability study's JSON from the reports folder, if there is one; :func:`verdict`
turns the summary into plain sentences that the command prints and the report shows.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.report.in_context import distinct_shares

__all__ = ["gain_noise", "in_context_estimate", "verdict", "N_BOOT"]

#: bootstrap resamples of the test rows for the noise of the gain
N_BOOT = 200


def gain_noise(score: Callable[[np.ndarray, np.ndarray], float], rows: np.ndarray, pred_a: Sequence[Any],
               pred_b: Sequence[Any], *, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any] | None:
    """Paired bootstrap of ``score(a) - score(b)`` over the evaluation rows.

    Parameters
    ----------
    score : callable
        ``score(rows, pred) -> float`` for predictions of dataset rows ``rows``.
    rows : np.ndarray [shape=(n,)]
        Dataset rows the predictions are of.
    pred_a, pred_b : sequence [shape=(n,)]
        Predictions of the two models for ``rows``.

    Returns
    -------
    dict or None
        ``se`` (standard deviation of the resampled differences), ``low``/``high`` (2.5 and
        97.5 percentiles), ``n_rows``, ``n_boot``; None with fewer than 5 rows or mismatched lengths.
    """
    rows = np.asarray(rows)
    a, b = np.asarray(pred_a), np.asarray(pred_b)
    n = len(rows)
    if n < 5 or len(a) != n or len(b) != n:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(int(n_boot)):
        i = rng.integers(0, n, n)
        d = score(rows[i], a[i]) - score(rows[i], b[i])
        if math.isfinite(d):
            diffs.append(d)
    if len(diffs) < 10:
        return None
    d = np.asarray(diffs)
    return {"se": float(d.std(ddof=1)), "low": float(np.percentile(d, 2.5)), "high": float(np.percentile(d, 97.5)),
            "n_rows": int(n), "n_boot": len(diffs)}


def in_context_estimate(reports: str | os.PathLike, param: str) -> dict[str, Any] | None:
    """The parameter's in-context identifiability from ``<reports>/identifiability.json``, if measured.

    Returns
    -------
    dict or None
        ``distinct`` (share of sampled patches where the parameter is audible and has no twin),
        ``resolvable_r2`` (continuous parameters; may be None), ``sampler``, ``path``; None when the
        file is missing, unreadable or does not hold the parameter.
    """
    path = Path(reports) / "identifiability.json"
    try:
        ident = json.loads(path.read_text(encoding="utf-8"))
        sampler = ident.get("config", {}).get("sampler")
        distinct = distinct_shares(ident, {"sampler": sampler}).get(param)
        r2 = distinct_shares(ident, {"sampler": sampler}, "resolvable_r2").get(param)
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if distinct is None:
        return None
    return {"distinct": float(distinct), "resolvable_r2": None if r2 is None else float(r2), "sampler": sampler,
            "path": str(path)}


def _f(v: float) -> str:
    return f"{v:+.3f}"


def verdict(summary: Mapping[str, Any], estimate: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Whether tuning beat the untuned default, why it may not have, and what to try.

    Parameters
    ----------
    summary : dict
        The run's summary (:func:`synth_probe.tuning.summarize` plus ``gain_noise``).
    estimate : dict, optional
        :func:`in_context_estimate` of the parameter.

    Returns
    -------
    dict
        ``beats`` (bool or None without a test score), ``headline`` (one sentence), ``reasons``
        and ``next`` (lists of sentences; empty when tuning beat the default beyond the noise).
    """
    metric = "R²" if summary.get("metric") == "r2" else "balanced accuracy"
    gain = (summary.get("gain_test") or {}).get("over_default")
    noise = summary.get("gain_noise")
    fp = summary.get("fingerprint") or {}
    if gain is None:
        return {"beats": None, "headline": "no test score: the study has no finished trial or no test rows",
                "reasons": [], "next": []}
    beats = bool(summary.get("beats_default"))
    within = noise is not None and noise["low"] <= 0.0 <= noise["high"]
    if beats and not within:
        head = f"tuning beats the untuned default by {_f(gain)} test {metric}"
        if noise is not None:
            head += f" (95 % interval {_f(noise['low'])} to {_f(noise['high'])} over the test rows)"
        return {"beats": True, "headline": head, "reasons": [], "next": []}
    head = (f"tuning {'beats' if beats else 'does not beat'} the untuned default: {_f(gain)} test {metric}"
            + (", within the test rows' sampling noise" if within else ""))
    reasons = []
    if noise is not None:
        reasons.append(f"The gain's sampling noise on the {noise['n_rows']} test rows is about ±{noise['se']:.3f} "
                       f"(standard error of a paired bootstrap, {noise['n_boot']} resamples; 95 % interval "
                       f"{_f(noise['low'])} to {_f(noise['high'])}): a difference this size "
                       f"{'cannot be told from' if within else 'is beyond'} noise.")
    gv = (summary.get("gain_val") or {}).get("over_default")
    n_val = fp.get("n_val")
    if gv is not None and n_val:
        reasons.append(f"The search picked the best of {summary.get('n_trials')} trials on the same {n_val} "
                       f"validation rows (gain there {_f(gv)}): with many trials the best partly fits that "
                       "split's noise, and the gain shrinks on unseen rows.")
    if estimate is not None:
        txt = (f"In context the parameter is distinct (audible, no sound-alike twin) in "
               f"{100 * estimate['distinct']:.0f} % of sampled patches ({estimate.get('sampler')} sampler)")
        if estimate.get("resolvable_r2") is not None:
            txt += f"; the resolvable {metric} is about {estimate['resolvable_r2']:.2f}"
        ceiling = summary.get("default", {}).get("test")
        if estimate.get("resolvable_r2") is not None and ceiling is not None and ceiling >= estimate["resolvable_r2"] - 0.05:
            txt += ", which the default already nearly reaches: the sound may allow little more"
        reasons.append(txt + ".")
    else:
        reasons.append("The parameter's in-context identifiability was not measured (no identifiability.json "
                       "in the reports folder; `synth-probe identifiability` measures it).")
    nxt = [f"more data: the default dataset has {fp.get('n_train', '?')} training rows; a larger --data lowers "
           "both the models' error and the noise of the comparison",
           "another probe or render (a longer note, other notes, the gate opened) if the parameter hides in the "
           "default one",
           "other families (--families) or a longer search (--timeout/--trials) if one family dominated"]
    return {"beats": beats, "headline": head, "reasons": reasons, "next": nxt}
