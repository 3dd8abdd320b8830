"""What the measured predictability is set beside: estimates of what the sound allows in context.

Plain functions of the studies' JSON data (``predictability.json``, ``sensitivity.json``,
``identifiability.json``): no study is imported. The identifiability study gives, per parameter,
the share of sampled patches where it is *distinct* (audible, no twin found) and, for a continuous
parameter, a *resolvable R²*. From those, a model that is right where the sound tells a value apart
and at chance elsewhere has roughly

* skill ≈ resolvable R² (continuous) or the distinct share (discrete: chance-corrected accuracy),
* accuracy ≈ distinct + (1 − distinct) × chance,
* MPR ≈ the study's resolvable MPR (each patch's best percentile rank when it sounds like the
  patch its twin search found; runs from before that estimate: 50 + 50 × distinct).

These are estimates, not bounds (see the identifiability part of the report).

The *headroom* of a parameter is its in-context estimate (at the identifiability run's own tolerance,
0.2 dB by default) minus the best measured skill: at or above :data:`HEADROOM_MARGIN` the models leave
skill the sound would allow (limited by the models), below it they reach what the render tells apart
(limited by the render). The estimates are only set beside a run of the same probe
(:func:`choose_identifiability`): a probe's renders may tell apart what one note cannot.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["IDENTIFIABLE_SHARE", "HEADROOM_MARGIN", "LOOSE_TOLERANCE_DB", "distinct_shares", "parameter_estimates",
           "summary_rows", "run_probe", "choose_identifiability", "headroom", "limited_by", "headroom_rows",
           "headroom_summary", "headroom_sentence"]

#: share of sampled patches in which a parameter must be distinct (audible, no twin found) to count as
#: distinct in context in the summary
IDENTIFIABLE_SHARE = 0.5

#: headroom (in-context estimate − best measured skill) below which a parameter counts as limited by the
#: render rather than by the models: the estimates are rough (16 bases, a few moves), so a gap smaller than
#: this is not read as skill the models leave
HEADROOM_MARGIN = 0.05

#: the looser tolerance (dB above the render-noise floor) whose resolvable R² is shown beside the run's own
LOOSE_TOLERANCE_DB = 0.5

#: the probe of a run that records none (the one note of the render settings)
DEFAULT_PROBE_TEXT = "default"


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


def _is_discrete(results: Mapping[str, Any], param: str) -> bool:
    return any(r["parameter"] == param and r.get("kind") == "discrete"
               for entry in results.get("models", {}).values() for r in entry.get("parameters", []))


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
        ``mpr`` (the resolvable MPR, else 50 + 50 × distinct), ``accuracy`` (discrete: distinct + (1 − distinct) × chance),
        ``r2_at`` (continuous: resolvable R² at looser tolerances, dB -> value) and ``distinct``;
        a key is left out when it cannot be estimated. Empty without a matching identifiability run.
    """
    distinct = distinct_shares(identifiability, results)
    r2 = distinct_shares(identifiability, results, "resolvable_r2")
    r2_at = distinct_shares(identifiability, results, "resolvable_r2_at")
    mprs = distinct_shares(identifiability, results, "resolvable_mpr")
    out: dict[str, dict[str, Any]] = {}
    for p, d in distinct.items():
        e: dict[str, Any] = {"distinct": d, "mpr": mprs.get(p, 50 + 50 * d)}
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
        est = parameter_estimates(results, identifiability)
        ms = [est[p]["mpr"] for p in by[best_m] if p in est]
        rows.append({"name": "best model mean MPR", "value": f"{models[best_m]['mean_mpr']:.1f} ({best_m})",
                     "context": f"≈ {float(np.mean(ms)):.1f}" if ms and len(ms) == len(by[best_m]) else "—"})
    if sensitivity and "cnn" in by and "mean" in by:
        strong = {p["name"] for p in sensitivity.get("params", []) if p.get("classification") == "strong"}
        rows += _cnn_rows(by, strong, distinct)
    if "cnn" in models and models["cnn"].get("samples_per_s") is not None:
        rows.append({"name": "CNN training speed",
                     "value": f"{models['cnn']['samples_per_s']:.0f} samples/s on {results.get('cpus')} CPU cores "
                              f"(load average {results.get('load_average', float('nan')):.1f} at the start)",
                     "context": "—"})
    return rows


# ----------------------------------------------------------------------------- headroom
def run_probe(data: Mapping[str, Any] | None) -> str:
    """The probe (text form) of ``predictability.json`` or ``identifiability.json``; ``"default"`` when none.

    ``predictability.json`` records it at the top (``probe``), ``identifiability.json`` in its ``config``
    (left out for the one note).
    """
    if not data:
        return DEFAULT_PROBE_TEXT
    p = data.get("probe") if "probe" in data else (data.get("config") or {}).get("probe")
    return str(p) if p else DEFAULT_PROBE_TEXT


def _probe_run(probes: Mapping[str, Any], probe: str) -> dict[str, Any] | None:
    """The run of ``probe`` in ``identifiability_probes.json`` as an ``identifiability.json``-like dict."""
    if probe not in (probes.get("probes") or []):
        return None
    run = (probes.get("runs") or {}).get(probe)
    if run and run.get("summary") is not None:
        return {**run, "config": {**(probes.get("config") or {}), **(run.get("config") or {}), "probe": probe}}
    summary = []  # a file without the runs: the per-probe cells of its table (no looser tolerances)
    for r in probes.get("rows") or []:
        c = (r.get("by_probe") or {}).get(probe)
        if c:
            summary.append({"parameter": r["parameter"], **c, "resolvable_r2_at": {}})
    if not summary:
        return None
    return {"config": {**(probes.get("config") or {}), "probe": probe}, "summary": summary}


def choose_identifiability(results: Mapping[str, Any], identifiability: Mapping[str, Any] | None,
                           probes: Mapping[str, Any] | None = None
                           ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The identifiability figures to set beside a predictability run, and where they come from.

    The figures must be of the run's sampler. Of those, the first that fits:

    1. a run with the predictability run's probe: for a probe run, the probe's run in
       ``identifiability_probes.json`` first, then ``identifiability.json`` if it was run with that probe;
       for a one-note run, ``identifiability.json`` of one note first, then the ``default`` run of the
       probes file;
    2. ``identifiability.json`` of another probe (``matches`` False): shown, but marked, and no headroom
       is judged from it.

    Parameters
    ----------
    results : dict
        ``predictability.json``.
    identifiability : dict or None
        ``identifiability.json``.
    probes : dict or None
        ``identifiability_probes.json`` (:func:`synth_probe.identifiability.compare_probes`).

    Returns
    -------
    data : dict or None
        An ``identifiability.json``-like dict (``config``, ``summary``); None when nothing fits.
    source : dict
        ``file`` (the file name, or None), ``probe`` (the figures' probe, or None), ``run_probe`` (the
        predictability run's) and ``matches`` (the probes are the same).
    """
    want = run_probe(results)
    sampler = results.get("sampler")

    def same_sampler(d: Mapping[str, Any] | None) -> bool:
        return bool(d) and (d.get("config") or {}).get("sampler") == sampler

    ident = dict(identifiability) if same_sampler(identifiability) else None
    from_probes = _probe_run(probes, want) if probes else None
    from_probes = from_probes if same_sampler(from_probes) else None
    own = ident if ident is not None and run_probe(ident) == want else None
    order = [("identifiability_probes.json", from_probes), ("identifiability.json", own)]
    if want == DEFAULT_PROBE_TEXT:
        order.reverse()
    for name, d in order:
        if d is not None:
            return d, {"file": name, "probe": want, "run_probe": want, "matches": True}
    if ident is not None:
        return ident, {"file": "identifiability.json", "probe": run_probe(ident), "run_probe": want,
                       "matches": False}
    return None, {"file": None, "probe": None, "run_probe": want, "matches": False}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def headroom(best_skill: float | None, estimate: float | None) -> float | None:
    """In-context estimate minus the best measured skill; None when either is missing or not finite."""
    if not (_finite(best_skill) and _finite(estimate)):
        return None
    return float(estimate) - float(best_skill)


def limited_by(room: float | None, margin: float = HEADROOM_MARGIN) -> str | None:
    """``"render"`` when the headroom is below ``margin``, ``"models"`` at or above it, None without one.

    The headroom is rounded to 9 decimals first, so a difference that is the margin on paper (0.85 − 0.80)
    counts as the margin.
    """
    if room is None:
        return None
    return "render" if round(room, 9) < margin else "models"


def headroom_rows(results: Mapping[str, Any], estimates: Mapping[str, Mapping[str, Any]], *,
                  judge: bool = True, loose_db: float = LOOSE_TOLERANCE_DB) -> list[dict[str, Any]]:
    """Per parameter of the run (``columns`` with a best model), its estimates, headroom and verdict.

    Parameters
    ----------
    results : dict
        ``predictability.json`` (``columns``, ``best``: parameter -> ``skill``).
    estimates : dict
        :func:`parameter_estimates` of the chosen identifiability figures.
    judge : bool
        False when the figures are of another probe (:func:`choose_identifiability`): the estimates are
        kept, the headroom and verdict are None.
    loose_db : float
        The looser tolerance whose resolvable R² is ``loose``.

    Returns
    -------
    rows : list of dict
        ``parameter``, ``discrete`` (bool), ``best_skill``, ``estimate`` (resolvable R² at the run's
        tolerance of a continuous parameter, the distinct share of a discrete one), ``loose`` (resolvable
        R² at ``loose_db``; None for a discrete parameter, whose distinct share is not re-judged),
        ``headroom`` and ``limited_by`` (None where not judged).
    """
    best = results.get("best") or {}
    rows = []
    for p in results.get("columns", []):
        if p not in best:
            continue
        e = estimates.get(p) or {}
        discrete = "accuracy" in e or _is_discrete(results, p)
        est = e.get("skill")
        loose = None if discrete else (e.get("r2_at") or {}).get(f"{loose_db:g}")
        room = headroom(best[p].get("skill"), est) if judge else None
        rows.append({"parameter": p, "discrete": discrete, "best_skill": best[p].get("skill"),
                     "estimate": est if _finite(est) else None, "loose": float(loose) if _finite(loose) else None,
                     "headroom": room, "limited_by": limited_by(room)})
    return rows


def headroom_summary(rows: Sequence[Mapping[str, Any]], n_largest: int = 5) -> dict[str, Any]:
    """Counts of the verdicts of :func:`headroom_rows` and the largest headrooms.

    Returns
    -------
    summary : dict
        ``total`` (rows), ``render``, ``models`` (rows with that verdict), ``unjudged`` (without one) and
        ``largest``: up to ``n_largest`` (parameter, headroom) pairs, largest first.
    """
    judged = [r for r in rows if r.get("limited_by") is not None]
    n_render = sum(r["limited_by"] == "render" for r in judged)
    largest = sorted(((r["parameter"], float(r["headroom"])) for r in judged), key=lambda kv: (-kv[1], kv[0]))
    return {"total": len(rows), "render": n_render, "models": len(judged) - n_render,
            "unjudged": len(rows) - len(judged), "largest": largest[:n_largest]}


def headroom_sentence(summary: Mapping[str, Any]) -> str:
    """The summary as one line: "N of M parameters limited by the render, K by the models; ..."."""
    s = (f"{summary['render']} of {summary['total']} parameters limited by the render, "
         f"{summary['models']} by the models")
    if summary.get("unjudged"):
        s += f" ({summary['unjudged']} without an in-context estimate)"
    if summary.get("largest"):
        s += "; largest headroom: " + ", ".join(f"{p} {h:+.2f}" for p, h in summary["largest"])
    return s + "."
