"""Predictability with a probe: what a run records of its dataset's probe, and runs compared at a render budget.

A probe dataset (:mod:`synth_probe.probe`) spends ``n_renders`` renders on each patch, so a
fixed render budget buys fewer patches. :func:`probe_fields` records a run's probe, patches
and renders in ``predictability.json``; :func:`comparison_summary` reduces another run's
results to the per-parameter skills that the report's comparison section sets beside this
run's (``synth-probe predictability --against OTHER/predictability.json``), so one page shows
one-note renders against a probe at an equal number of renders, or of patches.
:func:`probe_audio_report` is the audio comparison of a probe run: the distances of each
render, summed over the probe's renders as the probe's distance is.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import DatasetError, ParameterValueError
from synth_probe.fileio import read_json
from synth_probe.metrics import audio_report
from synth_probe.probe import Probe
from synth_probe.report.probe_section import comparison_summary

__all__ = ["probe_slug", "probe_fields", "patches_for_budget", "probe_audio_report", "pair_render",
           "comparison_summary", "read_against"]


def probe_slug(probe: Probe) -> str:
    """A folder-safe name of a probe: ``""`` for the default, else e.g. ``notes36-60-84_velocities64-127``."""
    if probe.is_default:
        return ""
    return re.sub(r"[^A-Za-z0-9._-]", "", probe.text().replace("=", "").replace(",", "-").replace("/", "_"))


def patches_for_budget(renders: int, probe: Probe) -> int:
    """Patches a budget of ``renders`` renders buys with ``probe`` (``renders // n_renders``).

    Raises
    ------
    ParameterValueError
        The budget buys fewer than 20 patches (the least the study takes).
    """
    n = int(renders) // probe.n_renders()
    if n < 20:
        raise ParameterValueError(f"--renders {renders} buys {n} patches of the probe {probe.text()!r} "
                                  f"({probe.n_renders()} renders each); the study needs at least 20")
    return n


def probe_fields(ds: Any) -> dict[str, Any]:
    """What ``predictability.json`` records of the dataset's probe.

    Returns
    -------
    dict with ``probe`` (text form), ``n_renders`` (per patch), ``renders_total`` (patches x renders)
    and ``probe_renders`` (note, velocity, note length of each render).
    """
    probe = getattr(ds, "probe", None) or Probe()
    settings = ds.settings
    renders = probe.renders(settings)
    return {"probe": probe.text(), "n_renders": len(renders), "renders_total": int(len(ds.params)) * len(renders),
            "probe_renders": [{"note": r.note, "velocity": r.velocity, "note_length": r.note_length}
                              for r in renders]}


def pair_render(renders: Sequence[Any], settings: Any) -> int:
    """Which render of a probe the report's listenable pairs play: the settings' own note and velocity if the
    probe has them, else the first."""
    for i, r in enumerate(renders):
        if r.note == settings.note and r.velocity == settings.velocity:
            return i
    return 0


def probe_audio_report(synth: Any, patches: pd.DataFrame, pred: pd.DataFrame, settings: Any,
                       renders: Sequence[Any] | None, *, seeds: np.ndarray, target: np.ndarray,
                       jobs: int) -> pd.DataFrame:
    """:func:`synth_probe.metrics.audio_report` of a run's predictions, over a probe's renders.

    Parameters
    ----------
    renders : sequence of RenderSettings or None
        None: one render per patch (``target`` (n, n_samples)), exactly ``audio_report``.
    target : np.ndarray [shape=(n, n_samples) or (n, n_renders, n_samples)]

    Returns
    -------
    distances : DataFrame [shape=(n, 3)]
        Each distance summed over the probe's renders (a difference heard on one render keeps its size).
    """
    if renders is None:
        return audio_report(synth, patches, pred, settings, seeds=seeds, target_audio=target, jobs=jobs)
    parts = [audio_report(synth, patches, pred, r, seeds=seeds, target_audio=target[:, i], jobs=jobs)
             for i, r in enumerate(renders)]
    return sum(parts[1:], parts[0])


def read_against(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """:func:`comparison_summary` of each ``predictability.json`` named (or of the one in a reports folder).

    Raises
    ------
    DatasetError
        A file that is missing or not a predictability results file.
    """
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            path = path / "predictability.json"
        if not path.is_file():
            raise DatasetError(f"--against {str(p)!r}: no predictability results there (run synth-probe "
                               "predictability with --out pointing at it first)")
        data = read_json(path, error=DatasetError, what="predictability results")
        if data.get("format") != "synth_probe.predictability" or not isinstance(data.get("models"), dict):
            raise DatasetError(f"--against {str(path)!r} is not a predictability.json of synth-probe predictability")
        out.append(comparison_summary(data, str(path)))
    return out
