"""What every fit of a model on a dataset shares: its context, the targets, the split, the report text.

``synth-probe train``/``evaluate``, the predictability suite, the matching benchmark
and the research scripts read a dataset's synth and render settings, choose the
target columns, split the rows and describe the discrete targets through these
functions (models and features come from :mod:`synth_probe.pipeline`).

A probe dataset (several renders of each patch, :mod:`synth_probe.probe`) is read the same way:
:func:`dataset_context` names its renders, which :func:`synth_probe.pipeline.build_pipeline`
takes, and :func:`audio_rows` gives its audio as the pipeline reads it, one row of
``n_renders * n_samples`` samples per patch.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.dataset import load_dataset
from synth_probe.errors import ParameterValueError, UnknownParameterError
from synth_probe.models.base import discrete_layout
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.registry import get_synth

__all__ = [
    "audio_rows",
    "dataset_context",
    "load_training_dataset",
    "probe_renders",
    "select_params",
    "split_indices",
    "target_layout",
    "predict_with_proba",
    "format_report",
]


def load_training_dataset(path: str) -> Any:
    """The dataset at ``path`` (every shard checked against its sha256); a probe dataset too.

    Raises
    ------
    DatasetError
        Missing or corrupted.
    """
    return load_dataset(path)


def probe_renders(ds: Any) -> list[RenderSettings] | None:
    """The render settings of each render of a probe dataset's patches; None for one render per patch.

    A dataset made with the default probe (the settings' own note), or made before probes, gives None:
    its audio rows are read as they always were.
    """
    probe = getattr(ds, "probe", None)
    settings = getattr(ds, "settings", None)
    if probe is None or probe.is_default or settings is None:
        return None
    return probe.renders(settings)


def audio_rows(ds: Any, rows: Any = slice(None)) -> np.ndarray:
    """Audio of dataset ``rows`` as a pipeline reads it.

    Parameters
    ----------
    ds : Dataset
    rows : int array, slice or bool mask
        Row positions.

    Returns
    -------
    X : np.ndarray [shape=(n, n_samples) or (n, n_renders * n_samples), dtype=float32]
        A probe dataset's renders of each patch side by side, in the probe's render order.
    """
    X = np.asarray(ds.audio[rows], dtype=np.float32)
    return X.reshape(len(X), -1) if X.ndim == 3 else X


def dataset_context(ds: Any) -> dict[str, Any]:
    """Synth name, render settings and probe renders of a loaded dataset, from ``ds.meta`` (or ``ds.settings``).

    Returns
    -------
    dict with ``synth`` (str or None), ``synth_sha256`` (a plugin binary's, or None), ``settings``
    (RenderSettings or None) and ``renders`` (:func:`probe_renders`: list of RenderSettings, or None).
    """
    meta = dict(getattr(ds, "meta", None) or {})
    synth = meta.get("synth")
    sha = synth.get("sha256") if isinstance(synth, dict) else None
    if isinstance(synth, dict):
        synth = synth.get("name") or synth.get("synth") or synth.get("id")
    settings = getattr(ds, "settings", None)
    if settings is not None and not isinstance(settings, RenderSettings):
        settings = RenderSettings(**dict(settings))
    if settings is None:
        raw = meta.get("settings") or meta.get("render") or meta.get("render_settings")
        if isinstance(raw, dict):
            keys = ("note", "velocity", "note_length", "render_length", "sample_rate")
            settings = RenderSettings(**{k: raw[k] for k in keys if k in raw})
    return {"synth": synth, "synth_sha256": sha if isinstance(sha, str) else None, "settings": settings,
            "renders": probe_renders(ds)}


def select_params(params: pd.DataFrame, spec: str) -> list[str]:
    """Target columns: ``all`` (every parameter that varies in the dataset) or a comma list.

    Raises
    ------
    ParameterValueError, UnknownParameterError
    """
    if spec.strip() == "all":
        varying = [c for c in params.columns if params[c].nunique() > 1]
        if not varying:
            raise ParameterValueError("no parameter varies in this dataset; nothing to learn")
        return varying
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ParameterValueError("--params needs 'all' or a comma-separated list of parameter names")
    for n in names:
        if n not in params.columns:
            raise UnknownParameterError(n, list(params.columns), synth="this dataset")
    constant = [n for n in names if params[n].nunique() <= 1]
    if constant:
        print(f"warning: {', '.join(constant)} do not vary in this dataset", file=sys.stderr)
    return names


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split of ``n`` rows.

    Returns
    -------
    train, test : np.ndarray [shape=(n - n_test,), (n_test,), dtype=int64]
        Sorted row positions.
    """
    if not (0.0 <= test_fraction < 1.0):
        raise ParameterValueError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def target_layout(columns: Sequence[str], *, synth: Any = None, specs: Sequence[Any] | None = None
                  ) -> dict[str, dict[str, Any]]:
    """The discrete layout of target ``columns`` (see :func:`synth_probe.models.base.discrete_layout`).

    Parameters
    ----------
    columns : sequence of str
        Parameter names.
    synth : str, Synth or None
        Read the specs from this synth (a name or plugin path is opened once and closed); its own
        choosers are exact where a dataset's recorded specs may lack them.
    specs : sequence of ParamSpec, optional
        Used when ``synth`` is None (e.g. a dataset's ``specs``); neither: every column is continuous.

    Raises
    ------
    UnknownParameterError
        A column the synth does not have.
    """
    if synth is not None:
        if isinstance(synth, str):
            s = get_synth(synth)
            try:
                found = [s.spec(str(c)) for c in columns]  # UnknownParameterError with the closest names
            finally:
                close = getattr(s, "close", None)
                if close is not None:
                    close()
        else:
            found = [synth.spec(str(c)) for c in columns]
        return discrete_layout(found)
    return discrete_layout(list(specs or ()), columns)


def predict_with_proba(pipe: Any, X: np.ndarray, levels: Mapping[str, Sequence[float]] | None = None
                       ) -> tuple[Any, dict[str, np.ndarray] | None]:
    """A fitted model's prediction with its probabilities, the features computed once.

    Parameters
    ----------
    pipe : Pipeline
        A fitted model (a saved folder's Pipeline).
    X : np.ndarray
        The Pipeline's input rows.
    levels : mapping of str -> sequence of float, optional
        The report's grids: a gridded continuous parameter's level probabilities
        (``SynthEstimator.predict_level_proba``) are kept only where the model learned the same levels
        (a model fit on another grid is ranked by its prediction's distance, ``parameter_report``'s default).

    Returns
    -------
    pred : DataFrame, Series or np.ndarray
        ``pipe.predict(X)``.
    proba : dict of str -> np.ndarray [shape=(n_samples, n_choices or n_levels)], or None
        The discrete targets' class probabilities and the kept level probabilities; None when the
        model gives no probabilities.
    """
    est = pipe.steps[-1][1]
    Z = pipe[:-1].transform(X) if len(pipe.steps) > 1 else X
    if not hasattr(est, "predict_with_proba"):
        return est.predict(Z), None
    pred, proba = est.predict_with_proba(Z)  # a torch model: one forward pass for the three
    if proba is None:
        return pred, None
    grids = getattr(est, "level_values_", {})
    same = {k for k, g in grids.items() if levels and k in levels and _same_levels(g, levels[k])}
    return pred, {k: v for k, v in proba.items() if k not in grids or k in same}


def _same_levels(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two grids hold the same levels (as sorted sets, to float precision)."""
    x, y = sorted(set(float(v) for v in a)), sorted(set(float(v) for v in b))
    return len(x) == len(y) and bool(np.allclose(x, y, rtol=0, atol=1e-9))


def format_report(report: pd.DataFrame) -> str:
    """The per-parameter table of :func:`synth_probe.metrics.parameter_report` as text, with its means."""
    cols = ["kind", "n_choices", "mae", "r2", "accuracy", "balanced_accuracy", "chance_accuracy",
            "majority_rate", "mpr"]
    show = report[[c for c in cols if c in report.columns]].copy()
    with pd.option_context("display.max_rows", None, "display.width", 160, "display.float_format", "{:.3f}".format):
        text = show.to_string(na_rep="")
    cont = report[report.kind == "continuous"]
    disc = report[report.kind == "discrete"]
    tail = [f"mean MPR {report.mpr.mean():.1f} (chance 50) over {len(report)} parameters"]
    if len(cont):
        tail.append(f"continuous: mean R² {cont.r2.mean():.3f}, mean MAE {cont.mae.mean():.3f}")
    if len(disc):
        tail.append(f"discrete: mean accuracy {disc.accuracy.mean():.3f} (chance {disc.chance_accuracy.mean():.3f})")
    return text + "\n" + "\n".join(tail)


