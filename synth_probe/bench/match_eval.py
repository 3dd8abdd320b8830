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
   * the target preset rendered a second time (the plugin's own render-to-render
     noise: free-running oscillators and effect tails differ between renders),

   and on the first ``--cmaes-presets`` targets the same two searches with CMA-ES
   (Optuna) instead of the hill climber.
4. Write ``reports/matching.html`` (distributions, means and medians, paired win
   rates, search curves, listenable examples), ``reports/matching.json`` and
   ``reports/matching_per_preset.csv``.

The default sizes (4,000 training renders, 120 presets, 24-render searches, CMA-ES on 24
presets; model: 1-nearest-neighbour on log-mel statistics) take about 12 minutes on 2 busy
cores (150 presets / CMA-ES on 30 took 15.6 minutes with the machine's load at 8).
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
    "rerender": "target preset, rendered again",
}
METRICS = ("log_mel", "spectral_convergence", "mfcc")

_W: dict[str, Any] = {}


def _init_worker(plugin: str) -> None:
    from synth_probe.synths.plugin import PluginSynth

    _W["synth"] = PluginSynth(plugin)


def _eval_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run every condition on one target (in a worker process); an error is returned, not raised."""
    from synth_probe.errors import SynthProbeError

    try:
        return _eval_conditions(task)
    except SynthProbeError as e:
        return {"key": task["key"], "error": f"{type(e).__name__}: {e}"}


def _eval_conditions(task: dict[str, Any]) -> dict[str, Any]:
    from synth_probe.matching import MatchObjective, audio_distances, refine
    from synth_probe.synths.base import RenderSettings

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
    mobj = MatchObjective(synth, target, settings, seed=0)
    measure("mean", mobj, np.asarray(task["mean_vec"]))
    robj = MatchObjective(synth, target, settings, seed=0)
    measure("rerender", robj, np.asarray(task["true_vec"]))
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
            "q75": float(np.percentile(v, 75)), "n": int(v.size)}


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
    log=print,
) -> dict[str, Any]:
    """Run the whole evaluation; returns the summary that ``matching.json`` holds."""
    import pandas as pd

    from synth_probe.dataset import generate, load_dataset
    from synth_probe.matching import prepare_audio
    from synth_probe.models.io import save_model
    from synth_probe.presets.amsynth import load_factory_presets, preset_to_unit
    from synth_probe.synths.base import RenderSettings
    from synth_probe.synths.plugin import PluginSynth
    from synth_probe.errors import AudioError, RenderError

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    work.mkdir(parents=True, exist_ok=True)
    settings = RenderSettings(note, 100, note_length, render_length, sample_rate)
    synth = PluginSynth(plugin)
    names = synth.param_names

    # 1. training set and model ------------------------------------------------------------
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

    # 2. targets ----------------------------------------------------------------------------
    t = time.perf_counter()
    presets = load_factory_presets()
    rng = np.random.default_rng(seed)
    chosen = [presets[i] for i in sorted(rng.choice(len(presets), size=min(n_presets, len(presets)),
                                                    replace=False))]
    true_vecs = np.stack([synth.patch_vector(preset_to_unit(p, names)) for p in chosen])
    targets = np.zeros((len(chosen), settings.n_samples), dtype=np.float32)
    keep, skipped = [], {}
    for i, p in enumerate(chosen):
        try:
            targets[i] = synth.render_vector(true_vecs[i], settings)
        except RenderError:
            skipped.setdefault("render failed", []).append(p.key)
            continue
        a = targets[i]
        try:
            prepare_audio(a, sample_rate, target_rate=sample_rate, n_samples=settings.n_samples, trim_onset=False)
            keep.append(i)
        except AudioError as e:
            reason = "silent" if "silent" in str(e) else ("clipped" if "clipped" in str(e) else "invalid")
            skipped.setdefault(reason, []).append(p.key)
    chosen = [chosen[i] for i in keep]
    true_vecs, targets = true_vecs[keep], targets[keep]
    timings["targets_s"] = time.perf_counter() - t
    log(f"{len(chosen)} preset targets ({sum(len(v) for v in skipped.values())} skipped: "
        f"{ {k: len(v) for k, v in skipped.items()} })")

    # 3. predictions and the mean patch -----------------------------------------------------
    t = time.perf_counter()
    pred = pipe.predict(targets)
    pred = pred if isinstance(pred, pd.DataFrame) else pd.DataFrame(pred, columns=columns)
    specs = {s.name: s for s in synth.specs}
    default = synth.patch_vector()
    model_vecs = np.tile(default, (len(chosen), 1))
    for c in columns:
        j = names.index(c)
        model_vecs[:, j] = [specs[c].quantize(float(np.clip(v, 0, 1))) for v in pred[c].to_numpy()]
    mean_vec = default.copy()
    for c in columns:
        mean_vec[names.index(c)] = specs[c].quantize(float(Y[c].mean()))
    timings["predict_s"] = time.perf_counter() - t
    synth.close()

    # 4. the searches, in worker processes ------------------------------------------------
    t = time.perf_counter()
    tasks = [
        {"key": p.key, "target": targets[i], "model_vec": model_vecs[i], "default_vec": default,
         "mean_vec": mean_vec, "true_vec": true_vecs[i], "budget": budget, "seed": seed + i,
         "cmaes": i < cmaes_presets, "settings": settings.to_dict()}
        for i, p in enumerate(chosen)
    ]
    results: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_init_worker,
                                initargs=(plugin,)) as ex:
        for k, r in enumerate(ex.map(_eval_one, tasks, chunksize=1)):
            results.append(r)
            if (k + 1) % 20 == 0 or k + 1 == len(tasks):
                el = time.perf_counter() - t
                log(f"  matched {k + 1}/{len(tasks)} presets ({el:.0f} s)")
    timings["search_s"] = time.perf_counter() - t

    failed = [(k, r) for k, r in enumerate(results) if "error" in r]
    for k, r in failed:
        skipped.setdefault("search failed", []).append(f"{r['key']} ({r['error'][:200]})")
    ok = [k for k, r in enumerate(results) if "error" not in r]
    chosen = [chosen[k] for k in ok]
    results = [results[k] for k in ok]
    targets, model_vecs = targets[ok], model_vecs[ok]

    # 5. numbers --------------------------------------------------------------------------
    rows = []
    for p, r in zip(chosen, results):
        row = {"preset": p.key, "name": p.name, "bank": p.bank}
        for cond, d in r["dist"].items():
            for m in METRICS:
                row[f"{cond}.{m}"] = d[m]
        rows.append(row)
    table = pd.DataFrame(rows)
    reports.mkdir(parents=True, exist_ok=True)
    table.to_csv(reports / "matching_per_preset.csv", index=False)
    conds = [c for c in CONDITIONS if f"{c}.log_mel" in table.columns]
    summary: dict[str, Any] = {m: {} for m in METRICS}
    for m in METRICS:
        for c in conds:
            col = table[f"{c}.{m}"].dropna()
            summary[m][c] = _summary(col.to_numpy())
    lm = table
    paired = {}

    def win(a: str, b: str, m: str = "log_mel") -> dict[str, float]:
        sub = lm[[f"{a}.{m}", f"{b}.{m}"]].dropna()
        x, y = sub.iloc[:, 0].to_numpy(), sub.iloc[:, 1].to_numpy()
        from scipy.stats import wilcoxon

        try:
            p = float(wilcoxon(x, y).pvalue) if np.any(x != y) else 1.0
        except ValueError:
            p = float("nan")
        return {"n": int(len(x)), "a_better": float(np.mean(x < y)), "ties": float(np.mean(x == y)),
                "median_difference": float(np.median(x - y)), "wilcoxon_p": p}

    for m in METRICS:
        paired[m] = {
            "model_vs_mean": win("model", "mean", m),
            "model_hill_vs_default_hill": win("model_hill", "default_hill", m),
            "model_hill_vs_model": win("model_hill", "model", m),
        }
        if "model_cmaes" in conds:
            paired[m]["model_hill_vs_model_cmaes"] = win("model_hill", "model_cmaes", m)
            paired[m]["default_hill_vs_default_cmaes"] = win("default_hill", "default_cmaes", m)
    curves = {}
    for name in ("model_hill", "default_hill", "model_cmaes", "default_cmaes"):
        cs = [r["curves"][name] for r in results if name in r["curves"]]
        if cs:
            n = min(len(c) for c in cs)
            arr = np.array([c[:n] for c in cs])
            curves[name] = {"median": np.median(arr, axis=0).tolist(), "mean": arr.mean(axis=0).tolist(),
                            "n": len(cs)}
    timings["total_s"] = time.perf_counter() - t_all
    s_lm = summary["log_mel"]
    figures = {
        "model_hill_median_beats_default_hill_median": s_lm["model_hill"]["median"] < s_lm["default_hill"]["median"],
        "model_beats_mean_patch_fraction": paired["log_mel"]["model_vs_mean"]["a_better"],
        "model_beats_mean_patch_on_90_percent": paired["log_mel"]["model_vs_mean"]["a_better"] >= 0.9,
    }
    out = {
        "config": {"n_train": int(len(audio)), "n_presets_requested": n_presets, "n_presets": len(chosen),
                   "budget": budget, "cmaes_presets": min(cmaes_presets, len(chosen)), "model": model,
                   "features": features, "model_params": model_params or {}, "seed": seed, "jobs": jobs,
                   "settings": settings.to_dict(),
                   "plugin": plugin, "n_params": len(names), "predicted_params": len(columns),
                   "command": "python -m synth_probe.bench.match_eval " + " ".join(sys.argv[1:])},
        "skipped": skipped, "summary": summary, "paired": paired, "figures": figures, "curves": curves,
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "matching.json").write_text(json.dumps(out, indent=2), encoding="utf-8")

    # 6. listenable examples and the page ---------------------------------------------------
    ex_idx = _example_indices(table, n_examples)
    examples = [{"preset": chosen[i].key, "target": targets[i], "model": results[i]["audio"]["model"],
                 "refined": results[i]["audio"]["model_hill"], "default_hill": results[i]["audio"]["default_hill"],
                 "dist": results[i]["dist"]} for i in ex_idx]
    html = build_report(out, table, examples)
    (reports / "matching.html").write_text(html, encoding="utf-8")
    try:
        from synth_probe.report import write_index

        write_index(reports)
    except Exception as e:  # the index is a convenience; the page is written
        log(f"note: reports/index.html not updated: {e}")
    log(f"wrote {reports / 'matching.html'} and {reports / 'matching.json'} ({timings['total_s']:.0f} s)")
    return out


def _example_indices(table, n: int) -> list[int]:
    """Examples spread over the model + hill distance quantiles (best, typical, worst)."""
    order = np.argsort(table["model_hill.log_mel"].to_numpy())
    if len(order) <= n:
        return list(order)
    pos = np.linspace(0, len(order) - 1, n).round().astype(int)
    return [int(order[p]) for p in pos]


# ------------------------------------------------------------------------------------------ report
def _box_svg(groups: Sequence[tuple[str, np.ndarray]], *, unit: str, width: int = 760, row: int = 26) -> str:
    """Horizontal box plots (quartiles, whiskers at 5/95 %, mean as a diamond, median as a line)."""
    from synth_probe.report.html import esc

    label_w, pad = 230, 20
    allv = np.concatenate([g[1] for g in groups if len(g[1])])
    hi = float(np.percentile(allv, 99)) if allv.size else 1.0
    hi = hi if hi > 0 else 1.0
    plot_w = width - label_w - pad

    def px(x: float) -> float:
        return label_w + plot_w * min(max(x, 0.0), hi) / hi

    h = len(groups) * row + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" role="img" aria-label="distance distributions">']
    for k in range(6):
        v = hi * k / 5
        x = px(v)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{len(groups) * row + 4}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{len(groups) * row + 18}" class="tick">{v:.3g}</text>')
    parts.append(f'<text x="{label_w + plot_w / 2:.0f}" y="{len(groups) * row + 34}" class="tick">{esc(unit)}</text>')
    for i, (label, v) in enumerate(groups):
        y = 4 + i * row
        ym = y + row / 2
        parts.append(f'<text x="{label_w - 6}" y="{ym + 4:.1f}" class="label">{esc(label)}</text>')
        if not len(v):
            continue
        p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        mean = float(np.mean(v))
        parts.append(f'<line x1="{px(p5):.1f}" x2="{px(p95):.1f}" y1="{ym:.1f}" y2="{ym:.1f}" class="whisker"/>')
        parts.append(f'<rect x="{px(q1):.1f}" y="{y + 5}" width="{max(px(q3) - px(q1), 1):.1f}" height="{row - 10}" '
                     f'class="bar"><title>{esc(label)}: median {med:.2f}, mean {mean:.2f}, IQR {q1:.2f}-{q3:.2f}'
                     f'</title></rect>')
        parts.append(f'<line x1="{px(med):.1f}" x2="{px(med):.1f}" y1="{y + 3}" y2="{y + row - 3}" '
                     f'stroke="black" stroke-width="2"/>')
        xm = px(mean)
        parts.append(f'<path d="M{xm:.1f},{ym - 5:.1f} L{xm + 5:.1f},{ym:.1f} L{xm:.1f},{ym + 5:.1f} '
                     f'L{xm - 5:.1f},{ym:.1f} Z" fill="white" stroke="black"><title>mean {mean:.2f}</title></path>')
    parts.append("</svg>")
    return "".join(parts)


def _curve_svg(curves: dict[str, dict[str, Any]], *, width: int = 760, height: int = 260) -> str:
    from synth_probe.report.html import esc

    colors = {"model_hill": "#1f77b4", "default_hill": "#ff7f0e", "model_cmaes": "#2ca02c", "default_cmaes": "#d62728"}
    allv = np.concatenate([np.asarray(c["median"]) for c in curves.values()])
    lo, hi = float(allv.min()), float(allv.max())
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)
    n = max(len(c["median"]) for c in curves.values())
    L, R, T, B = 50, 170, 10, 30
    pw, ph = width - L - R, height - T - B

    def xy(i: int, v: float) -> tuple[float, float]:
        return L + pw * i / max(n - 1, 1), T + ph * (1 - (v - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="search curves">']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _, y = xy(0, v)
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{L - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{v:.2f}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{height - 4}" class="tick">renders of the search</text>')
    for j, (name, c) in enumerate(curves.items()):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(c["median"])))
        col = colors.get(name, "#555")
        out.append(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="2"/>')
        out.append(f'<text x="{L + pw + 8}" y="{T + 14 + 16 * j}" fill="{col}" class="label" text-anchor="start">'
                   f'{esc(CONDITIONS[name])} (n={c["n"]})</text>')
    out.append("</svg>")
    return "".join(out)


def build_report(out: dict[str, Any], table, examples: list[dict[str, Any]]) -> str:
    """The HTML page of the evaluation."""
    from synth_probe.matching import DISTANCE_LABELS
    from synth_probe.report.html import (
        Column, Section, audio_player, esc, fmt_num, key_value_table, render_page, table as html_table,
        wav_data_uri,
    )

    cfg, summ, paired, fig = out["config"], out["summary"], out["paired"], out["figures"]
    sr = cfg["settings"]["sample_rate"]
    sections = []
    pm = paired["log_mel"]
    s_lm = summ["log_mel"]
    verdict = [
        ("model + hill climber vs hill climber from default, median log-mel distance",
         f"{s_lm['model_hill']['median']:.2f} vs {s_lm['default_hill']['median']:.2f} dB — "
         + ("target met" if fig["model_hill_median_beats_default_hill_median"] else "target NOT met")),
        ("model + hill better than hill from default, per preset",
         f"{100 * pm['model_hill_vs_default_hill']['a_better']:.0f} % (Wilcoxon p = "
         f"{pm['model_hill_vs_default_hill']['wilcoxon_p']:.2g})"),
        ("model only better than the mean patch, per preset",
         f"{100 * fig['model_beats_mean_patch_fraction']:.1f} % — "
         + ("target (>= 90 %) met" if fig["model_beats_mean_patch_on_90_percent"] else "target (>= 90 %) NOT met")),
    ]
    if "model_hill_vs_model_cmaes" in pm:
        verdict.append(("hill climber vs CMA-ES from the model, same budget, per preset",
                        f"hill better on {100 * pm['model_hill_vs_model_cmaes']['a_better']:.0f} % of "
                        f"{pm['model_hill_vs_model_cmaes']['n']} presets (median difference "
                        f"{pm['model_hill_vs_model_cmaes']['median_difference']:+.2f} dB)"))
    setup = [
        ("targets", f"{cfg['n_presets']} amsynth factory presets (of {cfg['n_presets_requested']} drawn; skipped: "
                    + (", ".join(f"{len(v)} {k}" for k, v in out["skipped"].items()) or "none") + ")"),
        ("model", f"{cfg['model']} on {cfg['features']}, trained on {cfg['n_train']} random amsynth patches "
                  f"(sampler 'all', {cfg['predicted_params']} of {cfg['n_params']} parameters predicted)"),
        ("renders", f"note {cfg['settings']['note']}, {cfg['settings']['note_length']} s held, "
                    f"{cfg['settings']['render_length']} s at {sr} Hz"),
        ("refine budget", f"{cfg['budget']} renders per search (the start's own render not counted); "
                          f"CMA-ES on the first {cfg['cmaes_presets']} presets"),
        ("time", ", ".join(f"{k} {v:.0f} s" for k, v in out["timings"].items())),
        ("command", cfg["command"]),
    ]
    sections.append(Section("summary", "Summary", key_value_table(verdict) + "<h3>Setup</h3>" + key_value_table(setup)))
    for m in ("log_mel", "spectral_convergence", "mfcc"):
        conds = list(summ[m])
        groups = [(CONDITIONS[c], table[f"{c}.{m}"].dropna().to_numpy()) for c in conds]
        rows = [{"condition": CONDITIONS[c], **summ[m][c]} for c in conds]
        cols = [Column("condition", "condition"), Column("n", "n", numeric=True),
                Column("median", "median", fmt=lambda v: fmt_num(v, 3), numeric=True),
                Column("mean", "mean", fmt=lambda v: fmt_num(v, 3), numeric=True),
                Column("q25", "25 %", fmt=lambda v: fmt_num(v, 3), numeric=True),
                Column("q75", "75 %", fmt=lambda v: fmt_num(v, 3), numeric=True)]
        body = (_box_svg(groups, unit=DISTANCE_LABELS[m])
                + "<p>Boxes: quartiles; whiskers: 5–95 %; line: median; diamond: mean. Lower is closer.</p>"
                + html_table(cols, rows, id=f"t-{m}"))
        pr = [{"comparison": k.replace("_vs_", " vs ").replace("_", " "), **v} for k, v in paired[m].items()]
        pcols = [Column("comparison", "A vs B"), Column("n", "n", numeric=True),
                 Column("a_better", "A closer (share)", fmt=lambda v: fmt_num(v, 3), numeric=True),
                 Column("median_difference", "median A−B", fmt=lambda v: fmt_num(v, 3, signed=True), numeric=True),
                 Column("wilcoxon_p", "Wilcoxon p", fmt=lambda v: f"{v:.2g}" if v == v else "—", numeric=True)]
        body += "<h3>Paired comparisons</h3>" + html_table(pcols, pr, id=f"p-{m}")
        sections.append(Section(f"dist-{m}", DISTANCE_LABELS[m], body))
    if out["curves"]:
        sections.append(Section("curves", "Search progress",
                                _curve_svg(out["curves"]) + "<p>Median over presets of the best log-mel distance "
                                "after each render (render 0: the start).</p>"))
    ex_html = []
    for e in examples:
        d = e["dist"]
        cap = (f"model {d['model']['log_mel']:.2f} dB → refined {d['model_hill']['log_mel']:.2f} dB "
               f"(hill from default {d['default_hill']['log_mel']:.2f} dB; the preset rendered again "
               f"{d['rerender']['log_mel']:.2f} dB)")
        players = "".join([
            audio_player(wav_data_uri(e["target"], sr), "target (preset)"),
            audio_player(wav_data_uri(e["model"], sr), "model"),
            audio_player(wav_data_uri(e["refined"], sr), "model + hill"),
            audio_player(wav_data_uri(e["default_hill"], sr), "hill from default"),
        ])
        ex_html.append(f"<h3>{esc(e['preset'])}</h3><p>{esc(cap)}</p><div class='players'>{players}</div>")
    sections.append(Section("examples", "Listen", "<p>Presets spread from the best to the worst match "
                            "(by model + hill distance).</p>" + "".join(ex_html)))
    notes = (
        "<ul><li>amsynth renders are not repeatable: its oscillators run free and effect tails carry over "
        "between renders, so a second render of the target's own patch is not at distance 0 (row "
        "'target preset, rendered again'): that is the floor of any match.</li>"
        "<li>Distances are computed on the renders the search measured, so the reported refined distance "
        "is the one the search accepted; the players below play those same renders.</li>"
        "<li>Preset values were mapped from amsynth's internal units into the plugin's unit values with "
        "amsynth's own parameter ranges, verified against the plugin's value texts "
        "(synth_probe.presets.amsynth.check_value_texts / readback).</li></ul>"
    )
    sections.append(Section("notes", "Notes", notes))
    return render_page("Sound matching on amsynth's factory presets", sections,
                       subtitle="From a recording to a patch: model, local search and baselines on human-made presets",
                       generated=time.strftime("%Y-%m-%d %H:%M"))


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
    a = ap.parse_args(argv)
    from synth_probe.errors import SynthProbeError

    params: dict[str, Any] = {"n_neighbors": 1} if a.model == "knn" else {}
    for item in a.set or []:
        k, _, v = item.partition("=")
        try:
            params[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            params[k.strip()] = v

    try:
        out = run_eval(work=Path(a.work), reports=Path(a.reports), n_train=a.n_train, n_presets=a.n_presets,
                       budget=a.budget, cmaes_presets=a.cmaes_presets, model=a.model, features=a.features,
                       model_params=params, jobs=a.jobs, seed=a.seed, plugin=a.plugin)
    except SynthProbeError as e:
        print(f"match-eval: error: {e}", file=sys.stderr)
        return 2
    s = out["summary"]["log_mel"]
    for c, v in s.items():
        print(f"{CONDITIONS[c]:36s} log-mel median {v['median']:.3f}  mean {v['mean']:.3f}  (n={v['n']})")
    f = out["figures"]
    print(f"model only beats the mean patch on {100 * f['model_beats_mean_patch_fraction']:.1f} % of presets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
