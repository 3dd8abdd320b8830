"""Agreement of two sensitivity results: do two synths rank their parameters alike?

Reads either format the project writes: ``sensitivity.json`` (its ``params``
list: ``name``, ``score``, ``classification``, ``rank``) and ``sensitivity.csv``
(columns ``param``, ``score_db``, ``class``, ``rank``), the format of the real
engine's table in the calibration data.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

from synth_probe.errors import ReferenceDataError
from synth_probe.fileio import read_json

__all__ = ["load_sensitivity_table", "sensitivity_agreement", "CLASSES"]

CLASSES = ("strong", "weak", "inaudible")
_NAME = ("param", "name")
_SCORE = ("score_db", "score")
_CLASS = ("class", "classification")


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if k in row), None)


def _entry(row: dict[str, Any], where: str, k: int) -> tuple[str, dict[str, Any]]:
    name, score, cls = _pick(row, _NAME), _pick(row, _SCORE), _pick(row, _CLASS)
    if name is None or score is None or cls is None:
        raise ReferenceDataError(
            f"{where}, entry {k + 1}: a sensitivity table needs a name ({' or '.join(_NAME)}), a score "
            f"({' or '.join(_SCORE)}) and a class ({' or '.join(_CLASS)}); got keys {', '.join(map(str, row))}")
    try:
        s = float(score)
    except (TypeError, ValueError):
        raise ReferenceDataError(f"{where}: parameter {name!r} has score {score!r}, not a number") from None
    if not math.isfinite(s):
        raise ReferenceDataError(f"{where}: parameter {name!r} has a non-finite score")
    if cls not in CLASSES:
        raise ReferenceDataError(f"{where}: parameter {name!r} has class {cls!r}; expected one of {', '.join(CLASSES)}")
    return str(name), {"score": s, "class": str(cls)}


def load_sensitivity_table(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Scores and classes of a sensitivity result (``sensitivity.json`` or a CSV table).

    Returns
    -------
    table : dict of str to dict
        Parameter name to ``{"score": float (dB), "class": str}``.

    Raises
    ------
    ReferenceDataError
        A missing or unreadable file, missing columns, a repeated name, a bad score or class.
    """
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise ReferenceDataError(f"sensitivity table {where!r} does not exist")
    try:
        if p.suffix.lower() == ".json":
            data = read_json(p, error=ReferenceDataError, what="sensitivity table", expect=dict)
            rows = data.get("params")
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ReferenceDataError(f"{where} is not a sensitivity.json: it has no 'params' list")
        else:
            rows = list(csv.DictReader(p.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
        if isinstance(e, ReferenceDataError):
            raise
        raise ReferenceDataError(f"sensitivity table {where!r} cannot be read: {e}") from None
    out: dict[str, dict[str, Any]] = {}
    for k, row in enumerate(rows):
        name, entry = _entry(row, where, k)
        if name in out:
            raise ReferenceDataError(f"{where}: parameter {name!r} is listed twice")
        out[name] = entry
    if not out:
        raise ReferenceDataError(f"sensitivity table {where!r} lists no parameters")
    return out


def _rho(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    r = spearmanr(x, y).statistic
    return float(r) if np.isfinite(r) else None


def sensitivity_agreement(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], *, top: int = 12,
                          labels: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """Spearman rank agreement and class agreement of two sensitivity tables.

    Parameters
    ----------
    a, b : dict
        From :func:`load_sensitivity_table`.
    top : int
        Largest rank disagreements listed.
    labels : (str, str)
        What ``a`` and ``b`` are (shown in reports).

    Returns
    -------
    agreement : dict
        ``n``: parameters in both; ``spearman_all``: ρ of the scores over them;
        ``n_audible``, ``spearman_audible``: over those above the noise floor (class
        not "inaudible") in either; ``class_agree``: how many share their class;
        ``confusion``: counts per (class in a, class in b); ``disagreements``: the
        ``top`` largest |rank difference| (ranks 1 = strongest, over the common
        parameters); ``only_a``, ``only_b``: names in one table only.
    """
    common = [n for n in a if n in b]
    sa = np.array([a[n]["score"] for n in common])
    sb = np.array([b[n]["score"] for n in common])
    audible = [k for k, n in enumerate(common) if a[n]["class"] != "inaudible" or b[n]["class"] != "inaudible"]
    ra = rankdata(-sa, method="average") if len(common) else np.array([])
    rb = rankdata(-sb, method="average") if len(common) else np.array([])
    confusion = {f"{x}/{y}": 0 for x in CLASSES for y in CLASSES}
    for n in common:
        confusion[f"{a[n]['class']}/{b[n]['class']}"] += 1
    order = np.argsort(-np.abs(ra - rb), kind="stable")[: max(0, int(top))]
    dis = [{"name": common[k], "rank_a": float(ra[k]), "rank_b": float(rb[k]), "score_a": float(sa[k]),
            "score_b": float(sb[k]), "class_a": a[common[k]]["class"], "class_b": b[common[k]]["class"]}
           for k in order]
    return {
        "labels": list(labels), "n": len(common),
        "spearman_all": _rho(sa, sb),
        "n_audible": len(audible),
        "spearman_audible": _rho(sa[audible], sb[audible]) if audible else None,
        "class_agree": int(sum(a[n]["class"] == b[n]["class"] for n in common)),
        "confusion": confusion, "disagreements": dis,
        "only_a": [n for n in a if n not in b], "only_b": [n for n in b if n not in a],
    }
