"""Writers of the predictability page: one page, three studies' parts, rebuilt by explicit calls.

``reports/predictability.html`` opens with what is measured so far and the commands that add the rest
(:func:`synth_probe.report.site.status_html`), then joins the sensitivity part (written by
:func:`synth_probe.report.sensitivity_section.write_sensitivity_report`), the identifiability
part and the measured part. The last two show other studies' numbers beside their own, so
:func:`rebuild_predictability_page` rewrites both from the JSON files of the folder before it
assembles the page; every writer ends with it, whichever study ran last.

The commands call these writers with the data a study returned; no study is imported here.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import SynthProbeError
from synth_probe.report import assemble, load_json, write_part
from synth_probe.report import identifiability_section, predictability_section
from synth_probe.report.site import STATUS_KEY, STATUS_TITLE, status_html
from synth_probe.util import atomic_text

__all__ = ["rebuild_predictability_page", "write_predictability_report", "write_identifiability_report"]


def rebuild_predictability_page(reports_dir: str | os.PathLike, *, results: dict[str, Any] | None = None,
                                media: dict[str, np.ndarray] | None = None) -> Path:
    """Rewrite the status, measured and identifiability parts from the folder's data, then assemble the page.

    Parameters
    ----------
    reports_dir : path
    results, media : optional
        Predictability results and clips the caller holds (default: read from the folder).

    Returns
    -------
    path : Path
        ``<reports_dir>/predictability.html``.
    """
    d = Path(reports_dir)
    predictability_section.refresh_part(d, results, media)
    identifiability_section.refresh_part(d)
    datas = {k: load_json(d / f"{k}.json") for k in ("sensitivity", "identifiability")}
    datas["predictability"] = results if results is not None else load_json(d / predictability_section.RESULTS_NAME)
    write_part(d, "predictability", STATUS_KEY, STATUS_TITLE, status_html(datas))
    return assemble(d, "predictability")


def write_predictability_report(results: dict[str, Any] | None, reports_dir: str | os.PathLike,
                                media: dict[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Write the measured part of ``predictability.html`` and assemble the page.

    Parameters
    ----------
    results : dict or None
        What :func:`synth_probe.predictability.run_predictability` returned (``predictability.json``);
        None reads it from the folder (after an interrupted run, for instance).
    reports_dir : path
        The folder the run wrote its files to.
    media : dict of np.ndarray, optional
        The listenable clips (default: ``predictability_media.npz`` of the folder).

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``part``, ``html``.
    """
    d = Path(reports_dir)
    if not (d / predictability_section.RESULTS_NAME).exists():
        raise SynthProbeError(f"{d / predictability_section.RESULTS_NAME} does not exist; "
                              "run synth-probe predictability first")
    html = rebuild_predictability_page(d, results=results, media=media)
    return {"json": d / predictability_section.RESULTS_NAME,
            "part": d / "_parts" / "predictability" / f"{predictability_section.PART_KEY}.html", "html": html}


def write_identifiability_report(data: dict[str, Any], reports_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``identifiability.json`` and ``identifiability.csv``, and rebuild the predictability page.

    Parameters
    ----------
    data : dict
        ``IdentifiabilityResult.to_dict()``: ``config``, ``summary``, ``records``, ...

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``csv``, ``html``.
    """
    d = Path(reports_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SynthProbeError(f"cannot write the reports folder {d}: {e}") from e
    jpath = d / identifiability_section.RESULTS_NAME
    atomic_text(jpath, json.dumps(data, indent=1, allow_nan=False))
    cpath = d / "identifiability.csv"
    with cpath.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(identifiability_section.csv_rows(data))
    return {"json": jpath, "csv": cpath, "html": rebuild_predictability_page(d)}
