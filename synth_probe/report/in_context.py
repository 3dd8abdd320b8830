"""What the measured predictability is set beside: estimates of what the sound allows in context.

Plain functions of the studies' JSON data (``predictability.json``, ``sensitivity.json``,
``identifiability.json``): no study is imported. The identifiability study gives, per parameter,
the share of sampled patches where it is *distinct* (audible, no twin found) and, for a continuous
parameter, a *resolvable R²*. From those, a model that is right where the sound tells a value apart
and at chance elsewhere has roughly

* skill ≈ resolvable R² (continuous) or the distinct share (discrete: chance-corrected accuracy),
* accuracy ≈ distinct + (1 − distinct) × chance,
* MPR ≈ 50 + 50 × distinct.

These are estimates, not bounds (see the identifiability part of the report).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["IDENTIFIABLE_SHARE", "distinct_shares", "parameter_estimates", "summary_rows"]

#: share of sampled patches in which a parameter must be distinct (audible, no twin found) to count as
#: distinct in context in the summary
IDENTIFIABLE_SHARE = 0.5


def distinct_shares(identifiability: Mapping[str, Any] | None, results: Mapping[str, Any],
                    key: str = "distinct") -> dict[str, Any]:
    """Parameter -> distinct share (or another summary ``key``, e.g. ``resolvable_r2``).

    Parameters
    ----------
    identifiability : dict or None
        ``identifiability.json``.
    results : dict
        ``predictability.json``; only an identifiability run of the same sampler is used.
    key : str
        Column of the identifiability summary.

    Returns
    -------
    shares : dict of str to float (or dict, for a nested column such as ``resolvable_r2_at``)
        Empty when the samplers differ or there is no identifiability run.
    """
    if not identifiability or identifiability.get("config", {}).get("sampler") != results.get("sampler"):
        return {}
    return {r["parameter"]: r[key] if isinstance(r[key], dict) else float(r[key])
            for r in identifiability.get("summary", []) if r.get(key) is not None}


def _chance(results: Mapping[str, Any], param: str) -> float | None:
    for entry in results.get("models", {}).values():
        for r in entry.get("parameters", []):
            if r["parameter"] == param and r.get("kind") == "discrete":
                return r.get("chance_accuracy")
    return None


def parameter_estimates(results: Mapping[str, Any],
                        identifiability: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per parameter, the in-context estimates on the scales of the measured numbers.

    Returns
    -------
    estimates : dict of str to dict
        ``skill`` (resolvable R² of a continuous parameter, distinct share of a discrete one),
        ``mpr`` (50 + 50 × distinct), ``accuracy`` (discrete: distinct + (1 − distinct) × chance),
        ``r2_at`` (continuous: resolvable R² at looser tolerances, dB -> value) and ``distinct``;
        a key is left out when it cannot be estimated. Empty without a matching identifiability run.
    """
    distinct = distinct_shares(identifiability, results)
    r2 = distinct_shares(identifiability, results, "resolvable_r2")
    r2_at = distinct_shares(identifiability, results, "resolvable_r2_at")
    out: dict[str, dict[str, Any]] = {}
    for p, d in distinct.items():
        e: dict[str, Any] = {"distinct": d, "mpr": 50 + 50 * d}
        chance = _chance(results, p)
        if chance is not None:
            e["skill"], e["accuracy"] = d, d + (1 - d) * chance
        elif p in r2:
            e["skill"] = r2[p]
            e["r2_at"] = dict(sorted(r2_at.get(p, {}).items(), key=lambda kv: float(kv[0])))
        out[p] = e
    return out


def _cnn_rows(by: Mapping[str, Mapping[str, Any]], strong: set[str],
              distinct: Mapping[str, float]) -> list[dict[str, str]]:
    """The CNN against MeanBaseline on the strong parameters, and on those distinct in context."""
    common = sorted(strong & set(by["cnn"]) & set(by["mean"]))
    losers = []
    for p in common:
        c, b = by["cnn"][p], by["mean"][p]
        if c["kind"] == "continuous":
            better = (c.get("mae") or 1.0) < (b.get("mae") or 0.0)
        else:
            better = (c.get("accuracy") or 0.0) > (b.get("accuracy") or 0.0)
        if not better:
            losers.append(p)

    def named(ps: Sequence[str]) -> str:
        return ", ".join(p + (f" [distinct {100 * distinct[p]:.0f} %]" if p in distinct else "") for p in ps)

    row = {"name": "strong parameters where the CNN beats MeanBaseline",
           "value": f"{len(common) - len(losers)}/{len(common)}" + (f" (not: {named(losers)})" if losers else ""),
           "context": "—"}
    if distinct:
        ident = [p for p in common if distinct.get(p, 0.0) >= IDENTIFIABLE_SHARE]
        lost = [p for p in losers if p in ident]
        row["context"] = (f"{len(ident) - len(lost)}/{len(ident)} of the strong parameters distinct in ≥ "
                          f"{100 * IDENTIFIABLE_SHARE:.0f} % of the sampled patches"
                          + (f" (not: {named(lost)})" if lost else ""))
    return [row]


def summary_rows(results: Mapping[str, Any], sensitivity: Mapping[str, Any] | None,
                 identifiability: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """The run's summary figures, each measured number beside its in-context estimate.

    Parameters
    ----------
    results : dict
        ``predictability.json``.
    sensitivity : dict or None
        ``sensitivity.json``: gives the strong parameters (without it their row is left out).
    identifiability : dict or None
        ``identifiability.json`` of the same sampler: gives the in-context estimates.

    Returns
    -------
    rows : list of dict
        ``name``, ``value`` (measured, as text) and ``context`` (the estimate, or "—").
    """
    models = results.get("models", {})
    if not models:
        return []
    by = {m: {r["parameter"]: r for r in e["parameters"]} for m, e in models.items()}
    learned = [m for m in models if m != "mean"]
    distinct = distinct_shares(identifiability, results)
    rows: list[dict[str, str]] = []
    if learned:
        best_m = max(learned, key=lambda m: models[m].get("mean_mpr") or 0.0)
        ds = [distinct[p] for p in by[best_m] if p in distinct]
        rows.append({"name": "best model mean MPR", "value": f"{models[best_m]['mean_mpr']:.1f} ({best_m})",
                     "context": f"≈ {50 + 50 * float(np.mean(ds)):.1f}" if ds and len(ds) == len(by[best_m])
                     else "—"})
    if sensitivity and "cnn" in by and "mean" in by:
        strong = {p["name"] for p in sensitivity.get("params", []) if p.get("classification") == "strong"}
        rows += _cnn_rows(by, strong, distinct)
    if "cnn" in models and models["cnn"].get("samples_per_s") is not None:
        rows.append({"name": "CNN training speed",
                     "value": f"{models['cnn']['samples_per_s']:.0f} samples/s on {results.get('cpus')} CPU cores "
                              f"(load average {results.get('load_average', float('nan')):.1f} at the start)",
                     "context": "—"})
    return rows
