"""The objective, the worker processes, the reference scores, the refit of the best trial and the whole run."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.pipeline import Pipeline

from synth_probe.errors import ParameterValueError
from synth_probe.progress import format_seconds
from synth_probe.models import MeanBaseline
from synth_probe.models.io import read_header, save_model
from synth_probe.synths.registry import get_synth
from synth_probe.tuning.context import TuneConfig, TuneContext
from synth_probe.tuning.space import (
    FAMILIES,
    Fixed,
    default_reference_features,
    default_trial_params,
    enqueue_default,
    make_pruner,
    trial_spec,
)
from synth_probe.tuning.storage import JournalHeartbeat, file_lock, is_journal, open_storage, retry_callback
from synth_probe.tuning.verdict import gain_noise, in_context_estimate, verdict

__all__ = ["Objective", "run_tuning", "refit_best", "reference_scores", "summarize", "report_data", "load_study"]


class Objective:
    """The objective of one worker: build the trial's model, fit on train, score on validation."""

    def __init__(self, ctx: TuneContext, heartbeat: JournalHeartbeat | None) -> None:
        self.ctx = ctx
        self.heartbeat = heartbeat

    def __call__(self, trial: Any) -> float:
        ctx = self.ctx
        beat = self.heartbeat.beating(trial) if self.heartbeat is not None else contextlib.nullcontext()
        with beat:
            if self.heartbeat is not None:
                self.heartbeat.fail_stale(trial.study, skip=trial.number)
            family, params, fs = trial_spec(trial, ctx.config.families, ctx.config.max_epochs, ctx.config.max_rounds)
            last = {"step": -1}

            def reporter(step: int, value: float) -> None:
                if step <= last["step"] or not math.isfinite(value):
                    return
                last["step"] = step
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at {step} % of its budget (skill {value:.3f})")

            t0 = time.perf_counter()
            _, metrics, seconds = ctx.fit_eval(family, params, fs, ctx.split["train"], ctx.split["val"], reporter)
            trial.set_user_attr("fit_seconds", round(seconds, 3))
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
            for k, v in metrics.items():
                if k != "score":
                    trial.set_user_attr(k, v)
            return metrics["score"]


def _sampler(seed: int, n_existing: int) -> Any:

    # sampler state is not stored: each worker gets its own seed (from --seed, its pid and the study size)
    s = int.from_bytes(hashlib.sha256(f"{seed}:{os.getpid()}:{n_existing}".encode()).digest()[:4], "little")
    return optuna.samplers.TPESampler(seed=s, n_startup_trials=8, multivariate=True, group=True,
                                      constant_liar=True)


def load_study(cfg: TuneConfig, ctx: TuneContext, storage: Any, n_hint: int = 0) -> Any:

    name = cfg.study or f"{ctx.synth_name}-{cfg.param}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    load_if_exists=True, pruner=make_pruner(cfg.pruner),
                                    sampler=_sampler(cfg.seed, n_hint))
    fp = ctx.fingerprint()
    old = study.user_attrs.get("fingerprint")
    if old is None:
        study.set_user_attr("fingerprint", fp)
        study.set_user_attr("synth", ctx.synth_name)
        study.set_user_attr("param", cfg.param)
        study.set_user_attr("kind", ctx.kind)
    elif old != fp:
        diffs = [f"{k}: study {old.get(k)!r}, now {fp.get(k)!r}" for k in fp if old.get(k) != fp.get(k)]
        raise ParameterValueError(
            f"study {name!r} was run on other rows, another split or other handcrafted descriptors "
            f"({'; '.join(diffs)}); its scores would not compare. Use the same --data/--seed, or another --study "
            "name (a study from before a descriptor change cannot be continued)")
    return study


def budget_text(trials: int | None, timeout: float | None, jobs: int) -> str:
    """The search budget in words: trials and/or seconds, over ``jobs`` workers."""
    parts = []
    if trials is not None:
        parts.append(f"{trials} trial(s)")
    if timeout:
        parts.append(f"{format_seconds(timeout)} of search" + (" (the default --timeout)" if trials is None else ""))
    what = " or ".join(parts) if parts else "no new trials"
    return f"{what}, whichever ends first, on {jobs} worker(s)" if len(parts) > 1 else f"{what} on {jobs} worker(s)"


def budget_progress(done: int, trials: int | None, elapsed: float, timeout: float | None) -> str:
    """This worker's progress against its budget: trials done of its share, time spent of the timeout."""
    parts = [f"{done}/{trials} trials" if trials is not None else f"{done} trials"]
    if timeout:
        parts.append(f"{format_seconds(elapsed)} of {format_seconds(timeout)} "
                     f"({min(100.0, 100 * elapsed / timeout):.0f} %), {format_seconds(max(0.0, timeout - elapsed))} left")
    return ", ".join(parts)


def _worker(cfg_dict: dict[str, Any], n_trials: int | None, worker: int) -> int:
    """One optimizing process (also used in-process for ``jobs=1``); returns trials it finished."""

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = TuneConfig(**cfg_dict)
    synth = get_synth(cfg.synth)
    try:
        ctx = TuneContext(cfg, synth, verify=False)  # run_tuning verified the dataset before starting workers
    finally:
        with contextlib.suppress(Exception):
            synth.close()
    storage = open_storage(cfg.storage, ctx.dir / "study.journal", heartbeat_interval=cfg.heartbeat_interval,
                           grace_period=cfg.grace_period)
    study = load_study(cfg, ctx, storage, n_hint=worker)
    hb = None
    if is_journal(storage):
        hb = JournalHeartbeat(ctx.dir / "heartbeats", cfg.heartbeat_interval, cfg.grace_period,
                              retry_callback(max_retry=1))
        hb.fail_stale(study)
    done = {"n": 0}
    t0 = time.monotonic()

    def progress(study: Any, t: Any) -> None:
        done["n"] += 1
        v = "—" if t.value is None else f"{t.value:.4f}"
        try:
            best = f"{study.best_value:.4f}"
        except ValueError:
            best = "—"
        print(f"[worker {worker}] trial {t.number} {t.state.name.lower():8s} {t.params.get('family', '?'):12s} "
              f"value {v}  best {best}; {budget_progress(done['n'], n_trials, time.monotonic() - t0, cfg.timeout)}",
              file=sys.stderr, flush=True)

    study.optimize(Objective(ctx, hb), n_trials=n_trials, timeout=cfg.timeout, callbacks=[progress],
                   catch=(FloatingPointError,), gc_after_trial=True)
    return done["n"]


# =========================================================================== reference models, refit
def reference_scores(ctx: TuneContext, study: Any) -> dict[str, Any]:
    """Scores of the untuned default model and MeanBaseline (validation and test), cached in the study.

    The untuned default is the first searched family with its constructor defaults
    and the features ``synth-probe train`` gives it (``combined`` for gbm/knn:
    handcrafted + 64-band log-mel pooled into 8 segments; the 64-band log-mel
    spectrogram for torch models), with the study's budget (epochs, boosting
    rounds) — the configuration :func:`enqueue_default` makes the first trial.
    """
    key = "reference"
    ref = study.user_attrs.get(key)
    if ref is not None and ref.get("fingerprint") == ctx.fingerprint():
        return ref
    cfg = ctx.config
    family = cfg.families[0]
    default = default_trial_params(family)
    if default is not None:  # exactly the first trial's model (enqueue_default)
        family, params, fs = trial_spec(Fixed(default), [family], cfg.max_epochs, cfg.max_rounds)
    else:  # autoencoder, transformer: constructor defaults with the study's epoch budget
        fs = default_reference_features()
        params = {"max_epochs": int(cfg.max_epochs)}
    tr, va, te = ctx.split["train"], ctx.split["val"], ctx.split["test"]
    trva = np.sort(np.concatenate([tr, va]))
    _, m_val, s_val = ctx.fit_eval(family, params, fs, tr, va)
    est, m_test, _ = ctx.fit_eval(family, params, fs, trva, te) if len(te) else (None, {"score": float("nan")}, 0)
    def mean_score(fit_rows: np.ndarray, rows: np.ndarray) -> float:
        if not len(rows):
            return float("nan")
        m = MeanBaseline(discrete=ctx.layout).fit(np.zeros((len(fit_rows), 1)),
                                               ctx.Y.iloc[fit_rows].reset_index(drop=True))
        return ctx.score(rows, m.predict(np.zeros((len(rows), 1))))["score"]

    ref = {
        "fingerprint": ctx.fingerprint(),
        "default": {"family": family, "features": fs, "params": params, "val": m_val["score"],
                    "test": m_test["score"], "fit_seconds": round(s_val, 3),
                    "test_pred": _predictions(ctx, est, fs, te)},
        "mean": {"val": mean_score(tr, va), "test": mean_score(trva, te)},
    }
    ref = json.loads(json.dumps(ref, default=float))
    study.set_user_attr(key, ref)
    return ref



def _predictions(ctx: TuneContext, est: Any, fs: Mapping[str, Any], rows: np.ndarray) -> list[float] | None:
    """``est``'s predictions of dataset ``rows`` as a flat list (kept for the noise of the gain)."""
    if est is None or not len(rows):
        return None
    return [float(v) for v in np.asarray(est.predict(ctx.features.matrix(fs)[rows]), dtype=np.float64).reshape(-1)]


def refit_best(ctx: TuneContext, study: Any) -> dict[str, Any] | None:
    """Refit the best trial's configuration on train + validation, score it on test, save it.

    Saved with :func:`synth_probe.models.io.save_model` as a Pipeline (feature
    steps + estimator) in ``<study folder>/best_model/``; skipped when that
    folder already holds the same trial's refit.

    Returns
    -------
    dict or None
        ``{"trial", "family", "params", "features", "val", "test", "path", ...}``; None without a finished trial.
    """
    try:
        best = study.best_trial
    except ValueError:
        return None
    out = ctx.dir / "best_model"
    with file_lock(ctx.dir / "refit.lock"):
        if (out / "model.json").is_file():
            meta = read_header(out).get("metadata", {})
            if meta.get("trial") == best.number and meta.get("fingerprint") == ctx.fingerprint():
                return meta.get("refit")
        family, params, fs = trial_spec(Fixed(best.params), ctx.config.families + [best.params["family"]],
                                        ctx.config.max_epochs, ctx.config.max_rounds)
        tr, va, te = ctx.split["train"], ctx.split["val"], ctx.split["test"]
        trva = np.sort(np.concatenate([tr, va]))
        est, m_test, seconds = ctx.fit_eval(family, params, fs, trva, te if len(te) else va)
        model = Pipeline(ctx.features.pipeline_steps(fs) + [("estimator", est)])
        info = {"trial": best.number, "family": family, "features": fs,
                "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
                "val": best.value, "test": m_test["score"] if len(te) else float("nan"),
                "test_metrics": m_test if len(te) else {}, "fit_seconds": round(seconds, 3),
                "n_fit": int(len(trva)), "path": str(out), "test_pred": _predictions(ctx, est, fs, te)}
        tmp = out.with_name(f".best_model.{os.getpid()}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        save_model(model, tmp, metadata={"trial": best.number, "fingerprint": ctx.fingerprint(),
                                         "study": study.study_name, "refit": info})
        if out.exists():
            old = out.with_name(f".best_model.old.{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        return info



def _importances(study: Any, family: str | None = None) -> tuple[dict[str, float], str]:
    """Hyperparameter importances (fANOVA) of completed trials, or an explanation of why there are none."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if family is None or t.params.get("family") == family]
    if len(trials) < 3:
        return {}, f"{len(trials)} completed trial(s); importances need at least 3"
    sub = optuna.create_study(direction="maximize")
    sub.add_trials(trials)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                sub, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as e:
        return {}, f"not estimable from these trials ({e})"
    if not imp:
        return {}, "no hyperparameter varies across these trials"
    return dict(imp), ""



def _trial_note(t: Any) -> str:
    notes = []
    if "failed_trial" in t.system_attrs:
        notes.append(f"retry of trial {t.system_attrs['failed_trial']}")
    if t.state.name == "FAIL":
        notes.append(t.system_attrs.get("fail_reason") or "raised an error")
    return "; ".join(notes)


def _fmt_params(params: Mapping[str, Any]) -> str:
    def short(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    return ", ".join(f"{k.split('.', 1)[-1]}={short(v)}" for k, v in params.items() if k != "family")


def summarize(study: Any, ctx: TuneContext, ref: Mapping[str, Any], refit: Mapping[str, Any] | None
              ) -> dict[str, Any]:
    """JSON-able summary of a study: best, per family, gains, counts."""
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name.lower()] = by_state.get(t.state.name.lower(), 0) + 1
    fams: dict[str, dict[str, Any]] = {}
    for t in trials:
        f = t.params.get("family")
        if f is None:
            continue
        d = fams.setdefault(f, {"family": f, "trials": 0, "complete": 0, "pruned": 0, "failed": 0,
                                "best": None, "best_trial": None, "seconds": 0.0})
        d["trials"] += 1
        d[{"COMPLETE": "complete", "PRUNED": "pruned"}.get(t.state.name, "failed")] += (
            1 if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) else 0)
        if t.datetime_complete and t.datetime_start:
            d["seconds"] += (t.datetime_complete - t.datetime_start).total_seconds()
        if t.state == TrialState.COMPLETE and t.value is not None and (d["best"] is None or t.value > d["best"]):
            d["best"], d["best_trial"] = t.value, t.number
    best_val = None
    with contextlib.suppress(ValueError):
        best_val = study.best_value
    dv, dt = ref["default"]["val"], ref["default"]["test"]
    mv, mt = ref["mean"]["val"], ref["mean"]["test"]
    tv = refit["test"] if refit else None

    def diff(a: Any, b: Any) -> float | None:
        return None if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) else float(a - b)

    return {
        "synth": ctx.synth_name, "param": ctx.config.param, "kind": ctx.kind, "metric": ctx.metric,
        "study": study.study_name, "fingerprint": ctx.fingerprint(), "states": by_state,
        "n_trials": len(trials), "families": sorted(fams.values(), key=lambda d: -(d["best"] or -1e9)),
        "best": {"val": best_val, "test": tv, "refit": refit},
        "default": ref["default"], "mean": ref["mean"],
        "gain_val": {"over_default": diff(best_val, dv), "over_mean": diff(best_val, mv)},
        "gain_test": {"over_default": diff(tv, dt), "over_mean": diff(tv, mt)},
        "beats_default": (tv is not None and dt is not None and math.isfinite(tv) and tv > dt),
    }



def report_data(study: Any, ctx: TuneContext, summary: Mapping[str, Any],
                audibility: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the tuning report shows, as plain data (:func:`synth_probe.report.tuning_section.write_tune_report`).

    Returns
    -------
    dict
        ``summary``, ``data`` and ``n`` (the dataset), ``families`` (searched families present in the
        study, in search order), ``trials`` (per trial: number, state, family, value, best intermediate
        skill, pruned-at step, seconds, worker, configuration text, note), ``importances`` (fANOVA per
        family, ``family`` None for all trials; ``values`` or the ``why`` of their absence), ``audibility``.
    """
    trials = study.get_trials(deepcopy=False)
    fams = [f for f in FAMILIES if any(t.params.get("family") == f for t in trials)]
    importances = []
    for fam in [None] + fams:
        values, why = _importances(study, fam)
        importances.append({"family": fam, "values": values, "why": why})
    return {"summary": dict(summary), "data": str(ctx.config.data), "n": int(ctx.n), "families": fams,
            "trials": [_trial_row(t) for t in trials], "importances": importances,
            "audibility": dict(audibility) if audibility else None}


def _trial_row(t: Any) -> dict[str, Any]:
    dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
    pruned = t.state == TrialState.PRUNED
    return {"number": t.number, "state": t.state.name.lower(), "family": t.params.get("family", ""),
            "value": t.value, "best_intermediate": max(t.intermediate_values.values()) if t.intermediate_values
            else None, "pruned_at": t.last_step if pruned else None, "seconds": dur,
            "worker": t.user_attrs.get("worker", ""), "params": _fmt_params(t.params), "note": _trial_note(t)}


def _drop_predictions(summary: dict[str, Any]) -> None:
    """Leave the per-row test predictions out of the summary (they are kept with the study and the model)."""
    for part in (summary.get("default"), (summary.get("best") or {}).get("refit")):
        if isinstance(part, dict):
            part.pop("test_pred", None)


def run_tuning(cfg: TuneConfig, audibility: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Optimize (``cfg.jobs`` processes), then refit the best; returns the summary.

    With ``cfg.report``, the summary also holds ``report_data`` (:func:`report_data`), from which the
    caller writes the report (:func:`synth_probe.report.tuning_section.write_tune_report`); the summary
    without it is saved as ``summary.json`` in the study folder.

    Raises
    ------
    StorageError, DatasetError, UnknownParameterError, ParameterValueError
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    synth = get_synth(cfg.synth)
    try:
        ctx = TuneContext(cfg, synth)
    finally:
        with contextlib.suppress(Exception):
            synth.close()
    # open the storage and the study first: a bad URL or a mismatched study fails before any work
    storage = open_storage(cfg.storage, ctx.dir / "study.journal", heartbeat_interval=cfg.heartbeat_interval,
                           grace_period=cfg.grace_period)
    study = load_study(cfg, ctx, storage)
    # two processes starting one study at once on this host queue the default once (on several machines
    # sharing a database, each may queue it: the same configuration is then evaluated twice, nothing worse)
    with file_lock(ctx.dir / "enqueue.lock"):
        enqueue_default(study, cfg.families)
    t0 = time.perf_counter()
    cfg_dict = asdict(cfg)
    jobs = max(1, int(cfg.jobs))
    if cfg.trials is None or cfg.trials > 0 or cfg.timeout:
        print(f"tune {cfg.param}: budget {budget_text(cfg.trials, cfg.timeout, jobs)}; the study has "
              f"{len(study.trials)} trial(s) so far (a rerun resumes it); then the refit and the report",
              file=sys.stderr, flush=True)
        if jobs == 1:
            _worker(cfg_dict, cfg.trials, 0)
        else:
            shares = [None] * jobs if cfg.trials is None else [
                cfg.trials // jobs + (1 if i < cfg.trials % jobs else 0) for i in range(jobs)]
            mpctx = mp.get_context("spawn")
            with mpctx.Pool(jobs) as pool:
                results = [pool.apply_async(_worker, (cfg_dict, shares[i], i)) for i in range(jobs)
                           if shares[i] is None or shares[i] > 0]
                for r in results:
                    r.get()
    seconds = time.perf_counter() - t0
    study = load_study(cfg, ctx, storage)
    if not cfg.report:
        return {"study": study.study_name, "n_trials": len(study.trials), "seconds_this_run": round(seconds, 1)}
    ref = reference_scores(ctx, study)
    refit = refit_best(ctx, study)
    summary = summarize(study, ctx, ref, refit)
    summary["seconds_this_run"] = round(seconds, 1)
    summary["audibility"] = dict(audibility) if audibility else None
    te = ctx.split["test"]
    pa, pb = (refit or {}).get("test_pred"), ref["default"].get("test_pred")
    summary["gain_noise"] = (gain_noise(lambda r, p: ctx.score(r, p)["score"], te, pa, pb, seed=int(cfg.seed))
                             if pa is not None and pb is not None else None)
    summary["verdict"] = verdict(summary, in_context_estimate(cfg.out, cfg.param))
    _drop_predictions(summary)
    ctx.dir.mkdir(parents=True, exist_ok=True)
    (ctx.dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    summary["report_data"] = report_data(study, ctx, summary, audibility)
    return summary

