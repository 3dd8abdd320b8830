"""Patch tables for ``generate --patches``: parameter columns, and the text columns kept as metadata.

A preset library exported as a table often carries columns that are not parameters: a program
name, a bank, an author. They are kept beside the patches (stored with the dataset, see
:attr:`synth_probe.dataset.Dataset.patch_info`):

* a column that is a parameter name holds unit values (checked as every patch is);
* any other column holding text (at least one value that is not a number) is metadata;
* a column whose name starts with ``meta:`` is metadata whatever it holds (``meta:number`` is
  stored as ``number``), so a numeric bank or program number can be kept too;
* any other numeric column is refused as an unknown parameter with the closest names: it is far
  more likely a misspelt parameter (``cutof``) than metadata, and silently dropping it would
  render the wrong patches.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import ParameterValueError, PatchFileError, UnknownParameterError
from synth_probe.fileio import read_json

__all__ = ["META_PREFIX", "read_patch_table", "split_patch_records", "meta_identity"]

META_PREFIX = "meta:"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _numeric(v: Any) -> bool:
    if isinstance(v, (bool, int, float, np.integer, np.floating)):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _plain(v: Any) -> Any:
    """A JSON-safe scalar: numpy scalars unwrapped, NaN to None, containers as JSON text."""
    if isinstance(v, np.generic):
        v = v.item()
    if _missing(v):
        return None
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    return v if isinstance(v, (str, int, float, bool)) else str(v)


def split_patch_records(records: Sequence[dict[str, Any]], synth: Any, where: str,
                        extra: Sequence[dict[str, Any]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split patch records into validated unit values and metadata columns.

    Parameters
    ----------
    records : sequence of dict
        One ``{name: value}`` mapping per patch.
    synth : Synth
        Gives the parameter names and validates the values.
    where : str
        Names the source in error messages.
    extra : sequence of dict, optional
        Metadata known to be metadata (the keys beside ``"params"`` of JSON patch objects).

    Returns
    -------
    params : pd.DataFrame [shape=(n, n_params)]
        Unit values in host order.
    info : pd.DataFrame [shape=(n, n_meta)]
        The metadata columns in the order first seen (no columns when there are none).

    Raises
    ------
    UnknownParameterError
        A numeric column that is not a parameter (the message names the closest parameters).
    ParameterValueError
        A parameter value that is not a number in [0, 1].
    """
    names = set(synth.param_names)
    keys: list[str] = []
    for rec in records:
        keys += [k for k in rec if k not in names and k not in keys]
    meta_cols: dict[str, str] = {}  # column in the table -> name in the metadata
    for k in keys:
        values = [rec[k] for rec in records if k in rec and not _missing(rec[k])]
        if str(k).startswith(META_PREFIX):
            meta_cols[k] = str(k)[len(META_PREFIX):]
        elif all(_numeric(v) for v in values) and values:
            hint = (f"A column that is not a parameter is kept as metadata when it holds text, or when its name "
                    f"starts with {META_PREFIX!r} (e.g. {META_PREFIX}{k}).")
            err = UnknownParameterError(str(k), synth.param_names, synth=synth.name, extra=hint)
            err.message = f"{where}: " + err.message
            raise err
        else:
            meta_cols[k] = str(k)
    text_cols = {k for k in meta_cols if not str(k).startswith(META_PREFIX)}
    vecs = np.empty((len(records), len(synth.specs)), dtype=np.float64)
    rows: list[dict[str, Any]] = []
    for r, rec in enumerate(records):
        try:
            vecs[r] = synth.patch_vector({k: v for k, v in rec.items() if k not in meta_cols})
        except (ParameterValueError, PatchFileError) as e:
            raise type(e)(f"{where}, row {r}: {e}") from None
        row = {}
        for k, name in meta_cols.items():
            v = _plain(rec.get(k))
            row[name] = str(v) if k in text_cols and v is not None and not isinstance(v, str) else v
        for k, v in (extra[r] if extra else {}).items():
            row[str(k)] = _plain(v)
        rows.append(row)
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    if len(set(meta_cols.values())) < len(meta_cols):
        raise PatchFileError(f"{where}: two metadata columns have the same name after {META_PREFIX!r} is removed")
    info = pd.DataFrame([[row.get(c) for c in cols] for row in rows], columns=cols, dtype=object)
    return pd.DataFrame(vecs, columns=synth.param_names), info


def meta_identity(info: pd.DataFrame) -> dict[str, Any] | None:
    """``{"columns", "sha256"}`` of a metadata table (part of a dataset's settings), or None without columns."""
    if info.shape[1] == 0:
        return None
    blob = json.dumps({"columns": list(info.columns), "rows": info.to_numpy().tolist()}, default=str).encode()
    return {"columns": list(info.columns), "sha256": hashlib.sha256(blob).hexdigest()}


def _read_records(p: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(p).to_dict(orient="records"), None
    if suffix != ".json":
        raise PatchFileError(f"patch table {str(p)!r}: unsupported format {suffix!r}; use .csv or .json")
    data = read_json(p, error=PatchFileError, what="patch table", expect=(dict, list))
    if isinstance(data, dict) and isinstance(data.get("patches"), list):
        data = data["patches"]
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return pd.DataFrame(data).to_dict(orient="records"), None
    if not isinstance(data, list):
        raise PatchFileError(
            f"patch table {str(p)!r} holds a JSON {type(data).__name__}; expected a list of "
            'patches such as [{"cutoff": 0.5}, ...] or columns such as {"cutoff": [0.5, 0.7]}'
        )
    records, extra = [], []
    for r in data:
        if isinstance(r, dict) and isinstance(r.get("params"), dict):
            records.append(r["params"])
            extra.append({k: v for k, v in r.items() if k != "params"})
        else:
            records.append(r)
            extra.append({})
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise PatchFileError(f"patch table {str(p)!r}, row {bad}: a patch must be an object of parameter names "
                             f"to unit values, got {type(records[bad]).__name__}")
    return records, extra if any(extra) else None


def read_patch_table(path: str | os.PathLike, synth: Any, *, meta: bool = False
                     ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Read patches to render from a ``.csv`` (one column per parameter) or ``.json`` file.

    JSON may be a list of ``{name: value}`` objects (or ``{"params": {...}, ...}``
    objects, whose other keys are metadata), ``{"patches": [...]}``, or an object of
    columns ``{name: [values]}``. Missing parameters take their defaults. Columns that
    are not parameters follow the rules of this module's docstring.

    Parameters
    ----------
    path : path
    synth : Synth
    meta : bool, default=False
        Also return the metadata columns.

    Returns
    -------
    patches : pd.DataFrame [shape=(n, n_params)]
        Validated unit values in host order.
    info : pd.DataFrame [shape=(n, n_meta)]
        Only with ``meta=True``: the metadata columns (program name, bank...).
    """
    p = Path(path)
    if not p.exists():
        raise PatchFileError(f"patch table {str(p)!r} does not exist")
    try:
        records, extra = _read_records(p)
    except PatchFileError:
        raise
    except (OSError, ValueError, RecursionError, pd.errors.ParserError) as e:
        raise PatchFileError(f"patch table {str(p)!r} cannot be read: {e}") from None
    if not records:
        raise PatchFileError(f"patch table {str(p)!r} holds no patches")
    params, info = split_patch_records(records, synth, f"patch table {str(p)!r}", extra)
    return (params, info) if meta else params
