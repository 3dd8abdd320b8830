"""Sound matching judged on amsynth's factory presets: ``python -m synth_probe.bench.match_eval``.

1. Render ``--n-train`` random amsynth patches (sampler ``all``) into a dataset
   folder (kept, so a rerun reuses it) and fit a model on log-mel statistics.
2. Read amsynth's factory banks, map ``--n-presets`` randomly chosen presets into
   the plugin's unit space (:mod:`synth_probe.presets.amsynth`), render each: the
   targets. Silent or clipped targets are skipped and counted.
3. For every target, measure the distance (multi-resolution log-mel, spectral
   convergence, MFCC) of

   * the model's prediction (model only),
   * the model + a hill climber with ``--budget`` renders,
   * a hill climber from amsynth's default patch with the same ``--budget``,
   * the mean patch of the training set (one patch for all targets),
   * with ``--posterior``: a posterior (``--posterior-model``: ``posterior``, the
     :class:`~synth_probe.models.posterior.FlowMatchingPosterior`, or ``neighbours``, the
     :class:`~synth_probe.models.knn.NeighbourPosterior`, on the same training set and, unless
     ``--posterior-features`` says otherwise, the same features) draws ``--posterior-samples`` K patches, the
     closest is kept (posterior best-of-K) and a hill climber spends the rest of the same
     budget from it (``budget - (K - 1)`` renders: the draws count, so both it and
     model + hill climber make ``budget + 1`` renders per preset), paired per preset
     against model + hill climber; with ``--posterior-rerank`` (neighbours only) the K
     "draws" are instead the K of the posterior's neighbours whose stored training renders
     are closest to the target by the multi-resolution log-mel distance (retrieval: no
     synth renders, the training renders are already there); with ``--posterior-features matching``
     the neighbours posterior searches all training renders by the match distance itself
     (:class:`~synth_probe.features.MatchingSpectrogram`; the model is not saved: it holds every
     training render's spectrograms),
   * the target preset rendered a second time (the plugin's own render-to-render
     noise: free-running oscillators and effect tails differ between renders),

   and on the first ``--cmaes-presets`` targets the same two searches with CMA-ES
   (Optuna) instead of the hill climber.
4. Write ``reports/matching.json`` and ``reports/matching_per_preset.csv``, and
   ``reports/matching.html`` through :mod:`synth_probe.report.matching_section`
   (distributions, means and medians, paired win rates, search curves, listenable
   examples); print the targets this benchmark checks.

The default sizes (4,000 training renders, 120 presets, 24-render searches, CMA-ES on 24
presets; model: 1-nearest-neighbour on log-mel statistics) take about 12 minutes on 2 busy
cores.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from synth_probe.dataset import generate, load_dataset
from synth_probe.errors import AudioError, ParameterValueError, RenderError, SynthProbeError
from synth_probe.matching import (
    DISTANCE_LABELS,
    MatchObjective,
    audio_distances,
    closest_draw,
    closest_stored,
    prepare_audio,
    refine,
    sample_patches,
    whole_patches,
)
from synth_probe.models.io import save_model
from synth_probe.presets.amsynth import load_factory_presets, preset_to_unit
from synth_probe.report import write_index
from synth_probe.report.matching_section import write_matching_report
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.plugin import PluginSynth
from synth_probe.pipeline import build_pipeline
from synth_probe.training import target_layout

__all__ = ["main", "run_eval", "AMSYNTH_PATH", "CONDITIONS"]

AMSYNTH_PATH = "/usr/lib/vst/amsynth_vst.so"
#: condition key -> label in the report
CONDITIONS = {
    "model": "model only",
    "model_hill": "model + hill climber",
    "default_hill": "hill climber from default patch",
    "mean": "mean patch",
    "default": "default patch",
    "model_cmaes": "model + CMA-ES",
    "default_cmaes": "CMA-ES from default patch",
    "posterior": "posterior best-of-K",
    "posterior_hill": "posterior best-of-K + hill climber",
    "rerender": "target preset, rendered again",
}
METRICS = ("log_mel", "spectral_convergence", "mfcc")

_W: dict[str, Any] = {}


def _init_worker(plugin: str) -> None:
    _W["synth"] = PluginSynth(plugin)


def _eval_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run every condition on one target (in a worker process); an error is returned, not raised."""
    try:
        return _eval_conditions(task)
    except SynthProbeError as e:
        return {"key": task["key"], "error": f"{type(e).__name__}: {e}"}


def _eval_conditions(task: dict[str, Any]) -> dict[str, Any]:
    synth = _W["synth"]
    settings = RenderSettings(**task["settings"])
    target = np.asarray(task["target"], dtype=np.float32)
    sr = settings.sample_rate
    out: dict[str, Any] = {"key": task["key"], "dist": {}, "curves": {}, "vectors": {}}

    keep_audio = ("model", "model_hill", "default_hill")

    def measure(name: str, obj: MatchObjective, vec: np.ndarray) -> None:
        audio = obj.audio_for(vec)
        out["dist"][name] = audio_distances(target, audio, sr)
        if name in keep_audio:  # the very render that was measured, for the listening examples
            peak = max(1.0, float(np.max(np.abs(audio))))  # above full scale: scaled down, not clipped
            out.setdefault("audio", {})[name] = np.round(np.clip(audio / peak, -1, 1) * 32767).astype(np.int16)

    starts = {"model": np.asarray(task["model_vec"]), "default": np.asarray(task["default_vec"])}
    methods = ["hill"] + (["cmaes"] if task["cmaes"] else [])
    for start_name, vec in starts.items():
        base = MatchObjective(synth, target, settings, seed=0)
        d0 = base(vec)
        measure(start_name, base, vec)
        for method in methods:
            obj = MatchObjective(synth, target, settings, seed=0)
            # the start's measured render is shared, so both searches start from the same incumbent
            key = obj.snap(vec).tobytes()
            obj._cache[key], obj._audio[key] = d0, base.audio_for(vec)
            res = refine(obj, vec, task["budget"], method=method, seed=task["seed"], start_distance=d0)
            name = f"{start_name}_{method}"
            measure(name, obj, res.vector)
            out["curves"][name] = [d0] + list(res.history)
            out["vectors"][name] = obj.snap(res.vector).tolist()
            out.setdefault("seconds", {})[name] = res.seconds
    if task.get("posterior_vecs") is not None:
        _posterior_conditions(task, synth, settings, target, measure, out)
    mobj = MatchObjective(synth, target, settings, seed=0)
    measure("mean", mobj, np.asarray(task["mean_vec"]))
    robj = MatchObjective(synth, target, settings, seed=0)
    measure("rerender", robj, np.asarray(task["true_vec"]))
    return out


def _posterior_conditions(task: dict[str, Any], synth: Any, settings: RenderSettings, target: np.ndarray,
                          measure: Any, out: dict[str, Any]) -> None:
    """Posterior best-of-K, then a hill climber with the rest of the budget (the K draws counted in it)."""
    obj = MatchObjective(synth, target, settings, seed=0)
    vecs = np.asarray(task["posterior_vecs"])
    start, dists, _ = closest_draw(obj, vecs)
    d0 = float(np.min(dists))
    measure("posterior", obj, start)
    res = refine(obj, start, max(0, task["budget"] - (len(vecs) - 1)), method="hill", seed=task["seed"],
                 start_distance=d0)
    measure("posterior_hill", obj, res.vector)
    # the curve counts the draws as renders: best so far after each draw, then after each search render
    out["curves"]["posterior_hill"] = list(np.minimum.accumulate(dists)) + list(res.history)
    out["vectors"]["posterior_hill"] = obj.snap(res.vector).tolist()
    out.setdefault("seconds", {})["posterior_hill"] = res.seconds


def _summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
            "q75": float(np.percentile(v, 75)), "n": int(v.size)}


def _preset_targets(synth: Any, settings: RenderSettings, n_presets: int,
                    seed: int) -> tuple[list[Any], np.ndarray, np.ndarray, dict[str, list[str]]]:
    """Draw factory presets and render them: the targets, without the silent, clipped or failed ones.

    Returns
    -------
    chosen : list of presets
    true_vecs : np.ndarray [shape=(n_targets, n_params)]
    targets : np.ndarray [shape=(n_targets, n_samples), dtype=float32]
    skipped : dict of str to list of str
        Reason -> preset keys.
    """
    presets = load_factory_presets()
    rng = np.random.default_rng(seed)
    chosen = [presets[i] for i in sorted(rng.choice(len(presets), size=min(n_presets, len(presets)),
                                                    replace=False))]
    true_vecs = np.stack([synth.patch_vector(preset_to_unit(p, synth.param_names)) for p in chosen])
    targets = np.zeros((len(chosen), settings.n_samples), dtype=np.float32)
    keep: list[int] = []
    skipped: dict[str, list[str]] = {}
    sr = settings.sample_rate
    for i, p in enumerate(chosen):
        try:
            targets[i] = synth.render_vector(true_vecs[i], settings)
        except RenderError:
            skipped.setdefault("render failed", []).append(p.key)
            continue
        try:
            prepare_audio(targets[i], sr, target_rate=sr, n_samples=settings.n_samples, trim_onset=False)
            keep.append(i)
        except AudioError as e:
            reason = "silent" if "silent" in str(e) else ("clipped" if "clipped" in str(e) else "invalid")
            skipped.setdefault(reason, []).append(p.key)
    return [chosen[i] for i in keep], true_vecs[keep], targets[keep], skipped


def _patch_vectors(synth: Any, pred: pd.DataFrame, columns: list[str], Y: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's patches (predicted columns on the default patch) and the training set's mean patch.

    Returns
    -------
    model_vecs : np.ndarray [shape=(n_targets, n_params)]
    mean_vec : np.ndarray [shape=(n_params,)]
    """
    names = synth.param_names
    specs = {s.name: s for s in synth.specs}
    default = synth.patch_vector()
    model_vecs = np.tile(default, (len(pred), 1))
    for c in columns:
        j = names.index(c)
        model_vecs[:, j] = [specs[c].quantize(float(np.clip(v, 0, 1))) for v in pred[c].to_numpy()]
    mean_vec = default.copy()
    for c in columns:
        mean_vec[names.index(c)] = specs[c].quantize(float(Y[c].mean()))
    return model_vecs, mean_vec


def _run_searches(tasks: list[dict[str, Any]], plugin: str, jobs: int, log) -> list[dict[str, Any]]:
    """Every condition on every target, in ``jobs`` worker processes that each open the plugin once."""
    t = time.perf_counter()
    results: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_init_worker,
                                initargs=(plugin,)) as ex:
        for k, r in enumerate(ex.map(_eval_one, tasks, chunksize=1)):
            results.append(r)
            if (k + 1) % 20 == 0 or k + 1 == len(tasks):
                log(f"  matched {k + 1}/{len(tasks)} presets ({time.perf_counter() - t:.0f} s)")
    return results


def _per_preset_table(chosen: list[Any], results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per preset: ``preset``, ``name``, ``bank`` and ``"<condition>.<metric>"`` distances."""
    rows = []
    for p, r in zip(chosen, results):
        row = {"preset": p.key, "name": p.name, "bank": p.bank}
        for cond, d in r["dist"].items():
            for m in METRICS:
                row[f"{cond}.{m}"] = d[m]
        rows.append(row)
    return pd.DataFrame(rows)


def _win(table: pd.DataFrame, a: str, b: str, m: str = "log_mel") -> dict[str, float]:
    """Paired comparison of conditions ``a`` and ``b`` on metric ``m`` over the presets."""
    sub = table[[f"{a}.{m}", f"{b}.{m}"]].dropna()
    x, y = sub.iloc[:, 0].to_numpy(), sub.iloc[:, 1].to_numpy()
    try:
        p = float(wilcoxon(x, y).pvalue) if np.any(x != y) else 1.0
    except ValueError:
        p = float("nan")
    return {"n": int(len(x)), "a_better": float(np.mean(x < y)), "ties": float(np.mean(x == y)),
            "median_difference": float(np.median(x - y)), "wilcoxon_p": p}


def _statistics(table: pd.DataFrame, results: list[dict[str, Any]]) -> tuple[dict, dict, dict]:
    """Summaries per metric and condition, paired comparisons, and median search curves."""
    conds = [c for c in CONDITIONS if f"{c}.log_mel" in table.columns]
    summary: dict[str, Any] = {m: {c: _summary(table[f"{c}.{m}"].dropna().to_numpy()) for c in conds}
                               for m in METRICS}
    paired: dict[str, Any] = {}
    for m in METRICS:
        paired[m] = {
            "model_vs_mean": _win(table, "model", "mean", m),
            "model_hill_vs_default_hill": _win(table, "model_hill", "default_hill", m),
            "model_hill_vs_model": _win(table, "model_hill", "model", m),
        }
        if "posterior_hill" in conds:
            paired[m]["posterior_hill_vs_model_hill"] = _win(table, "posterior_hill", "model_hill", m)
            paired[m]["posterior_vs_model"] = _win(table, "posterior", "model", m)
        if "model_cmaes" in conds:
            paired[m]["model_hill_vs_model_cmaes"] = _win(table, "model_hill", "model_cmaes", m)
            paired[m]["default_hill_vs_default_cmaes"] = _win(table, "default_hill", "default_cmaes", m)
    curves = {}
    for name in ("model_hill", "default_hill", "model_cmaes", "default_cmaes", "posterior_hill"):
        cs = [r["curves"][name] for r in results if name in r["curves"]]
        if cs:
            n = min(len(c) for c in cs)
            arr = np.array([c[:n] for c in cs])
            curves[name] = {"median": np.median(arr, axis=0).tolist(), "mean": arr.mean(axis=0).tolist(),
                            "n": len(cs)}
    return summary, paired, curves


def _targets(summary: dict[str, Any], paired: dict[str, Any]) -> dict[str, Any]:
    """The targets this benchmark checks (``main`` prints them; the page shows the measurements only)."""
    s_lm = summary["log_mel"]
    out = {
        "model_hill_median_beats_default_hill_median": s_lm["model_hill"]["median"] < s_lm["default_hill"]["median"],
        "model_beats_mean_patch_fraction": paired["log_mel"]["model_vs_mean"]["a_better"],
        "model_beats_mean_patch_on_90_percent": paired["log_mel"]["model_vs_mean"]["a_better"] >= 0.9,
    }
    if "posterior_hill" in s_lm:  # issue 20: median <= 6.0 dB, better than model + hill on >= 60 % of presets
        win = paired["log_mel"]["posterior_hill_vs_model_hill"]["a_better"]
        out.update(posterior_hill_median=s_lm["posterior_hill"]["median"],
                   posterior_hill_median_at_most_6_db=s_lm["posterior_hill"]["median"] <= 6.0,
                   posterior_hill_beats_model_hill_fraction=win,
                   posterior_hill_beats_model_hill_on_60_percent=win >= 0.6)
    return out


def _train_model(synth: Any, work: Path, settings: RenderSettings, *, n_train: int, model: str, features: str,
                 model_params: dict[str, Any] | None, plugin: str, seed: int, jobs: int, timings: dict[str, float],
                 log) -> tuple[Any, np.ndarray, pd.DataFrame, list[str], Path]:
    """Render the training set (resumable, under ``work``), fit and save the model; what the later steps need."""
    sample_rate, render_length, note_length = settings.sample_rate, settings.render_length, settings.note_length
    t = time.perf_counter()
    data_dir = work / f"train-{n_train}-{sample_rate}-{render_length:g}s-seed{seed}"
    res = generate(synth, data_dir, n_train, sampler="all", seed=seed, settings=settings, jobs=jobs)
    if not res.ok:
        raise RuntimeError(f"generating the training set failed: {res.summary()}")
    ds = load_dataset(data_dir)
    timings["train_renders_s"] = time.perf_counter() - t
    t = time.perf_counter()
    audio = np.asarray(ds.audio[:])
    Y = ds.params
    columns = [c for c in Y.columns if Y[c].nunique() > 1]
    pipe = build_pipeline(model, features=features, synth=plugin, sample_rate=sample_rate,
                          note_length=note_length, n_samples=audio.shape[1], seed=seed, jobs=jobs,
                          overrides=model_params, discrete=target_layout(columns, synth=synth))
    pipe.fit(audio, Y[columns].reset_index(drop=True))
    model_dir = work / f"model-{model}-{features}-{n_train}"
    save_model(pipe, model_dir, metadata={"data": str(data_dir), "render": settings.to_dict(), "model": model,
                                         "features": features, "n_train": len(audio), "params": columns})
    timings["fit_s"] = time.perf_counter() - t
    log(f"model {model} on {features}: {len(audio)} renders, fit {timings['fit_s']:.0f} s -> {model_dir}")
    return pipe, audio, Y, columns, data_dir


def run_eval(
    *,
    work: Path,
    reports: Path,
    n_train: int = 4000,
    n_presets: int = 120,
    budget: int = 24,
    cmaes_presets: int = 24,
    model: str = "knn",
    features: str = "logmel-stats",
    model_params: dict[str, Any] | None = None,
    jobs: int = 2,
    seed: int = 0,
    note: int = 60,
    render_length: float = 1.0,
    note_length: float = 0.75,
    sample_rate: int = 22050,
    plugin: str = AMSYNTH_PATH,
    n_examples: int = 6,
    posterior: bool = False,
    posterior_samples: int = 8,
    posterior_params: dict[str, Any] | None = None,
    posterior_model: str = "posterior",
    posterior_rerank: bool = False,
    posterior_features: str | None = None,
    log=print,
) -> dict[str, Any]:
    """Run the whole evaluation; returns the summary that ``matching.json`` holds.

    With ``posterior``, a posterior of family ``posterior_model`` (``"posterior"`` or ``"neighbours"``;
    hyperparameters ``posterior_params``) fitted on the same training set, on ``posterior_features`` (default: the
    model's ``features``; ``"matching"``: the neighbours the match distance ranks closest) adds the conditions
    ``posterior`` and ``posterior_hill`` (:func:`_posterior_vectors`: its draws, or the retrieved neighbours
    with ``posterior_rerank``; then the hill climber with the rest of the budget).
    """
    if posterior_rerank and posterior_model != "neighbours":
        raise ParameterValueError("--posterior-rerank needs --posterior-model neighbours (its draws are training rows)")
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    work.mkdir(parents=True, exist_ok=True)
    settings = RenderSettings(note, 100, note_length, render_length, sample_rate)
    synth = PluginSynth(plugin)

    # 1. training set and model ------------------------------------------------------------
    pipe, audio, Y, columns, data_dir = _train_model(synth, work, settings, n_train=n_train, model=model,
                                                     features=features, model_params=model_params, plugin=plugin,
                                                     seed=seed, jobs=jobs, timings=timings, log=log)
    post_features = posterior_features or features
    post = _fit_posterior(audio, Y[columns], work, family=posterior_model, features=post_features, plugin=plugin,
                          synth=synth, settings=settings, data_dir=data_dir, seed=seed, jobs=jobs,
                          params=posterior_params, timings=timings, log=log) if posterior else None
    # 2. targets, 3. predictions and the mean patch ------------------------------------------
    t = time.perf_counter()
    chosen, true_vecs, targets, skipped = _preset_targets(synth, settings, n_presets, seed)
    timings["targets_s"] = time.perf_counter() - t
    log(f"{len(chosen)} preset targets ({sum(len(v) for v in skipped.values())} skipped: "
        f"{ {k: len(v) for k, v in skipped.items()} })")
    t = time.perf_counter()
    pred = pipe.predict(targets)
    pred = pred if isinstance(pred, pd.DataFrame) else pd.DataFrame(pred, columns=columns)
    model_vecs, mean_vec = _patch_vectors(synth, pred, columns, Y)
    default = synth.patch_vector()
    post_vecs = None if post is None else _posterior_vectors(post, synth, targets, posterior_samples, seed=seed,
                                                             rerank=posterior_rerank, audio=audio, Y=Y[columns],
                                                             sample_rate=settings.sample_rate, jobs=jobs)
    timings["predict_s"] = time.perf_counter() - t
    synth.close()
    # 4. the searches, in worker processes ------------------------------------------------
    t = time.perf_counter()
    tasks = [
        {"key": p.key, "target": targets[i], "model_vec": model_vecs[i], "default_vec": default,
         "mean_vec": mean_vec, "true_vec": true_vecs[i], "budget": budget, "seed": seed + i,
         "cmaes": i < cmaes_presets, "settings": settings.to_dict(),
         "posterior_vecs": None if post_vecs is None else post_vecs[i]} for i, p in enumerate(chosen)]
    results = _run_searches(tasks, plugin, jobs, log)
    timings["search_s"] = time.perf_counter() - t
    for r in (r for r in results if "error" in r):
        skipped.setdefault("search failed", []).append(f"{r['key']} ({r['error'][:200]})")
    ok = [k for k, r in enumerate(results) if "error" not in r]
    chosen, results, targets = [chosen[k] for k in ok], [results[k] for k in ok], targets[ok]
    # 5. numbers --------------------------------------------------------------------------
    table = _per_preset_table(chosen, results)
    reports.mkdir(parents=True, exist_ok=True)
    table.to_csv(reports / "matching_per_preset.csv", index=False)
    summary, paired, curves = _statistics(table, results)
    timings["total_s"] = time.perf_counter() - t_all
    out = {
        "config": {"n_train": int(len(audio)), "n_presets_requested": n_presets, "n_presets": len(chosen),
                   "budget": budget, "cmaes_presets": min(cmaes_presets, len(chosen)), "model": model,
                   "features": features, "model_params": model_params or {}, "seed": seed, "jobs": jobs,
                   "settings": settings.to_dict(), "plugin": plugin, "n_params": len(synth.param_names),
                   "predicted_params": len(columns),
                   "posterior": {"model": posterior_model, "samples": posterior_samples, "rerank": posterior_rerank,
                                 "features": post_features, "params": posterior_params or {}} if posterior else None,
                   "command": "python -m synth_probe.bench.match_eval " + " ".join(sys.argv[1:])},
        "skipped": skipped, "summary": summary, "paired": paired, "figures": _targets(summary, paired),
        "curves": curves, "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    _write_outputs(out, table, chosen, targets, results, reports, n_examples, log)
    return out


def _posterior_vectors(post: Any, synth: Any, targets: np.ndarray, k: int, *, seed: int, rerank: bool,
                       audio: np.ndarray, Y: pd.DataFrame, sample_rate: int, jobs: int = 1) -> np.ndarray:
    """The posterior's K start patches per target ``(n, K, n_params)``: its draws, or with ``rerank`` the K of
    its neighbours whose stored training renders (``audio``, patches ``Y``) are closest to the target."""
    if not rerank:
        return sample_patches(post, synth, targets, k, random_state=seed)
    _, rows = post[-1].neighbours(post[:-1].transform(targets))
    best = closest_stored(targets, audio, rows, sample_rate, k, n_jobs=jobs)
    return whole_patches(synth, list(Y.columns), Y.to_numpy(dtype=np.float64)[best])


def _fit_posterior(audio: np.ndarray, Y: pd.DataFrame, work: Path, *, family: str, features: str, plugin: str,
                   synth: Any, settings: RenderSettings, data_dir: Path, seed: int, jobs: int,
                   params: dict[str, Any] | None, timings: dict[str, float], log) -> Any:
    """Fit the posterior pipeline on the training renders ``(n, n_samples)`` and their patches; save it in ``work``
    (not on the ``matching`` features, where it would hold every training render's spectrograms)."""
    t = time.perf_counter()
    Y = Y.reset_index(drop=True)
    columns = list(Y.columns)
    pipe = build_pipeline(family, features=features, synth=plugin, sample_rate=settings.sample_rate,
                          note_length=settings.note_length, n_samples=audio.shape[1], seed=seed, jobs=jobs,
                          overrides=params, discrete=target_layout(columns, synth=synth))
    pipe.fit(audio, Y)
    saved = features != "matching"  # on the matching features a neighbours model holds GBs (its training spectrograms)
    if saved:
        save_model(pipe, work / f"model-{family}-{features}-{len(audio)}",
                   metadata={"data": str(data_dir), "render": settings.to_dict(), "model": family,
                             "features": features, "n_train": len(audio), "params": columns})
    timings["fit_posterior_s"] = time.perf_counter() - t
    log(f"posterior ({family}) on {features}: fit {timings['fit_posterior_s']:.0f} s"
        + ("" if saved else " (not saved: it holds every training render's spectrograms)"))
    return pipe


def _write_outputs(out: dict[str, Any], table: pd.DataFrame, chosen: list[Any], targets: np.ndarray,
                   results: list[dict[str, Any]], reports: Path, n_examples: int, log) -> None:
    """``matching.json``, then the listenable examples and the page (:mod:`synth_probe.report.matching_section`)."""
    (reports / "matching.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    ex_idx = _example_indices(table, n_examples)
    examples = [{"preset": chosen[i].key, "target": targets[i], "model": results[i]["audio"]["model"],
                 "refined": results[i]["audio"]["model_hill"], "default_hill": results[i]["audio"]["default_hill"],
                 "dist": results[i]["dist"]} for i in ex_idx]
    write_matching_report(out, table.to_dict("records"), examples, reports, conditions=CONDITIONS,
                          distance_labels=DISTANCE_LABELS)
    try:
        write_index(reports)
    except Exception as e:  # the index is a convenience; the page is written
        log(f"note: reports/index.html not updated: {e}")
    log(f"wrote {reports / 'matching.html'} and {reports / 'matching.json'} ({out['timings']['total_s']:.0f} s)")


def _example_indices(table, n: int) -> list[int]:
    """Examples spread over the model + hill distance quantiles (best, typical, worst)."""
    order = np.argsort(table["model_hill.log_mel"].to_numpy())
    if len(order) <= n:
        return list(order)
    pos = np.linspace(0, len(order) - 1, n).round().astype(int)
    return [int(order[p]) for p in pos]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth_probe.bench.match_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=4000, help="random training renders (default 4000)")
    ap.add_argument("--n-presets", type=int, default=120, help="factory presets to match (default 120)")
    ap.add_argument("--budget", type=int, default=24, help="renders per local search (default 24)")
    ap.add_argument("--cmaes-presets", type=int, default=24, help="presets that also get CMA-ES searches (default 24)")
    ap.add_argument("--model", default="knn", help="model (synth-probe train MODEL; default knn)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", default=None,
                    help="model hyperparameter (JSON value), repeatable; default for knn: n_neighbors=1")
    ap.add_argument("--features", default="logmel-stats", help="feature set (default logmel-stats)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="data/match_eval", help="folder for the training set, model and per-preset CSV")
    ap.add_argument("--reports", default="reports", help="where matching.html and matching.json go")
    ap.add_argument("--plugin", default=AMSYNTH_PATH)
    ap.add_argument("--posterior", action="store_true",
                    help="add the conditions posterior best-of-K and posterior best-of-K + hill climber")
    ap.add_argument("--posterior-samples", type=int, default=8, help="K, draws per preset (default 8)")
    ap.add_argument("--posterior-model", choices=("posterior", "neighbours"), default="posterior",
                    help="the posterior: flow matching (posterior, default) or the training patches of the "
                         "nearest training sounds (neighbours)")
    ap.add_argument("--posterior-rerank", action="store_true",
                    help="neighbours only: the K draws are the neighbours whose stored training renders are "
                         "closest to the target (log-mel distance; no synth renders)")
    ap.add_argument("--posterior-features", default=None,
                    help="the posterior's feature set (default: the model's, --features); matching: "
                         "neighbours by the match distance itself")
    ap.add_argument("--posterior-set", action="append", metavar="KEY=VALUE", default=None,
                    help="posterior hyperparameter (JSON value), repeatable, e.g. max_epochs=200, n_neighbors=256")
    a = ap.parse_args(argv)
    params: dict[str, Any] = {"n_neighbors": 1} if a.model == "knn" else {}
    params.update(_key_values(a.set))
    post_params = {"num_threads": 1} if a.posterior_model == "posterior" else {}
    post_params.update(_key_values(a.posterior_set))

    try:
        out = run_eval(work=Path(a.work), reports=Path(a.reports), n_train=a.n_train, n_presets=a.n_presets,
                       budget=a.budget, cmaes_presets=a.cmaes_presets, model=a.model, features=a.features,
                       model_params=params, jobs=a.jobs, seed=a.seed, plugin=a.plugin, posterior=a.posterior,
                       posterior_samples=a.posterior_samples, posterior_params=post_params,
                       posterior_model=a.posterior_model, posterior_rerank=a.posterior_rerank,
                       posterior_features=a.posterior_features)
    except SynthProbeError as e:
        print(f"match-eval: error: {e}", file=sys.stderr)
        return 2
    s = out["summary"]["log_mel"]
    for c, v in s.items():
        print(f"{CONDITIONS[c]:36s} log-mel median {v['median']:.3f}  mean {v['mean']:.3f}  (n={v['n']})")
    f = out["figures"]
    met = "met" if f["model_hill_median_beats_default_hill_median"] else "NOT met"
    print(f"model + hill median below hill-from-default median: target {met}")
    met = "met" if f["model_beats_mean_patch_on_90_percent"] else "NOT met"
    print(f"model only beats the mean patch on {100 * f['model_beats_mean_patch_fraction']:.1f} % of presets "
          f"(target >= 90 %: {met})")
    if "posterior_hill_median" in f:
        w = out["paired"]["log_mel"]["posterior_hill_vs_model_hill"]
        print(f"posterior best-of-{a.posterior_samples} + hill median {f['posterior_hill_median']:.3f} dB (target "
              f"<= 6.0: {'met' if f['posterior_hill_median_at_most_6_db'] else 'NOT met'}); better than model + hill "
              f"on {100 * w['a_better']:.1f} % of {w['n']} presets (target >= 60 %: "
              f"{'met' if f['posterior_hill_beats_model_hill_on_60_percent'] else 'NOT met'}; Wilcoxon p = "
              f"{w['wilcoxon_p']:.3g}, median difference {w['median_difference']:+.3f} dB)")
    return 0


def _key_values(items: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict, each value parsed as JSON where it is JSON."""
    out: dict[str, Any] = {}
    for item in items or []:
        k, _, v = item.partition("=")
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
