"""A predictability run's saved test predictions, the ensemble of its models, and reading a finished run back.

:func:`synth_probe.predictability.run_predictability` keeps every model's full test predictions
(and class probabilities) in ``predictability_predictions.npz`` beside ``predictability.json``,
so that a rerun which keeps finished models can rebuild the :func:`ensemble`, and so that the
analysis scripts can compare with a finished run (:func:`load_saved_run`, :func:`load_run_dataset`,
:func:`saved_ensemble`); :func:`saved_answers` lets such a run's test predictions stand where a comparison
takes a fitted model (``synth-probe evaluate --samples K --against-run DIR``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.dataset import load_dataset
from synth_probe.errors import DatasetError, ParameterValueError
from synth_probe.fileio import read_json
from synth_probe.models.base import ParamTargets, nearest_level
from synth_probe.util import atomic_write

__all__ = ["RESULTS_NAME", "PREDICTIONS_NAME", "ENSEMBLE_MEMBERS", "ensemble", "save_predictions",
           "load_predictions", "load_saved_run", "load_run_dataset", "saved_ensemble", "run_split",
           "SavedAnswers", "saved_answers"]

RESULTS_NAME = "predictability.json"
#: every model's full test predictions, kept beside the results so that a rerun can rebuild the ensemble
PREDICTIONS_NAME = "predictability_predictions.npz"
#: the models the ensemble averages (those of a run that are among them)
ENSEMBLE_MEMBERS: tuple[str, ...] = ("gbm", "cnn", "autoencoder", "transformer")


def ensemble(preds: Mapping[str, pd.DataFrame], probas: Mapping[str, Mapping[str, np.ndarray] | None],
             synth: str | None, Y: pd.DataFrame, levels: Mapping[str, Sequence[float]] | None = None,
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[str]]:
    """The equal-weight ensemble of the :data:`ENSEMBLE_MEMBERS` in ``preds``.

    Continuous parameters: the mean of the members' predictions. Discrete ones: the mean of
    their class probabilities, and the most probable choice (a member without probabilities
    counts as certain of its predicted choice). A continuous parameter drawn from a grid
    (``levels``) that some member learned as classes (level probabilities in ``probas``) also
    gets the mean of the members' level probabilities, which rank its levels for the MPR (a
    member without them counts as certain of the level nearest its prediction).

    Parameters
    ----------
    preds : mapping of model -> DataFrame [shape=(n_test, n_params)]
        Full test predictions (unit values).
    probas : mapping of model -> (mapping of parameter -> array [shape=(n_test, n_choices)]) or None
    synth : str or None
        Whose specs mark the discrete parameters.
    Y : DataFrame
        The test targets (for the columns and the choices).
    levels : mapping of str -> sequence of float, optional
        The grids of the continuous parameters drawn from one (the report's ``levels``).

    Returns
    -------
    pred : DataFrame
    proba : dict of str -> np.ndarray
    members : list of str
        Empty (and the other two empty too) when fewer than two members are present.
    """
    members = [m for m in ENSEMBLE_MEMBERS if m in preds and len(preds[m]) == len(Y)]
    if len(members) < 2:
        return pd.DataFrame(), {}, []
    cols = list(Y.columns)
    out = sum(preds[m][cols].to_numpy(dtype=np.float64) for m in members) / len(members)
    targets = ParamTargets(synth=synth).fit(Y)
    proba: dict[str, np.ndarray] = {}
    for k, j in enumerate(targets.discrete_index):
        name, cv = cols[j], np.asarray(targets.choice_values[k], dtype=np.float64)
        acc = np.zeros((len(Y), len(cv)))
        for m in members:
            pm = (probas.get(m) or {}).get(name)
            if pm is None:  # hard classes only: all the weight on the predicted choice
                pm = np.zeros_like(acc)
                pm[np.arange(len(Y)), np.abs(preds[m][name].to_numpy()[:, None] - cv[None, :]).argmin(axis=1)] = 1.0
            acc += pm
        proba[name] = acc / len(members)
        out[:, j] = cv[proba[name].argmax(axis=1)]
    for j in targets.continuous_index:
        name = cols[j]
        grid = sorted({float(v) for v in (levels or {}).get(name, ())})
        given = [(probas.get(m) or {}).get(name) for m in members]
        if len(grid) < 2 or not any(p is not None and np.shape(p) == (len(Y), len(grid)) for p in given):
            continue
        acc = np.zeros((len(Y), len(grid)))
        for m, pm in zip(members, given):
            if pm is None or np.shape(pm) != acc.shape:  # all the weight on the level nearest its prediction
                pm = np.zeros_like(acc)
                pm[np.arange(len(Y)), nearest_level(preds[m][name].to_numpy(), grid)] = 1.0
            acc += pm
        proba[name] = acc / len(members)
    return pd.DataFrame(out, columns=cols), proba, members


def save_predictions(path: Path, fingerprint: str, preds: Mapping[str, pd.DataFrame],
                      probas: Mapping[str, Mapping[str, np.ndarray] | None], models: Mapping[str, str]) -> None:
    """Every model's full test predictions (and class probabilities), for the ensemble of a later rerun.

    ``models`` maps each model to its hyperparameter fingerprint; models without one are not saved.
    """
    arrays: dict[str, np.ndarray] = {"fingerprint": np.asarray(fingerprint)}
    for m, p in preds.items():
        if m not in models:
            continue
        arrays[f"model:{m}"] = np.asarray(models[m])
        arrays[f"pred:{m}"] = p.to_numpy(dtype=np.float64)
        for name, a in (probas.get(m) or {}).items():
            arrays[f"proba:{m}:{name}"] = np.asarray(a, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)  # a new --out folder: the first model saves before any report
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays), digest=False)


def load_saved_run(reports_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """A finished run's results and saved test predictions, for studies that compare with it.

    Returns
    -------
    results : dict
        ``predictability.json``.
    saved : dict of str to np.ndarray
        The arrays of ``predictability_predictions.npz`` (``pred:MODEL`` holds a model's
        test predictions, one column per entry of ``results["columns"]``).
    members : list of str
        The :data:`ENSEMBLE_MEMBERS` with saved predictions.

    Raises
    ------
    DatasetError
        When either file is missing or unreadable (run ``make predictability`` first).
    """
    d = Path(reports_dir)
    results = read_json(d / RESULTS_NAME, error=DatasetError, what="predictability results",
                        hint="run `make predictability` first")
    try:
        with np.load(d / PREDICTIONS_NAME, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the predictability run in {d}: {e}; run `make predictability` first") from e
    return results, saved, [m for m in ENSEMBLE_MEMBERS if f"pred:{m}" in saved]


def load_run_dataset(results: Mapping[str, Any]) -> Any:
    """The dataset a finished run (:func:`load_saved_run`'s ``results``) was trained on.

    Raises
    ------
    DatasetError
        When it cannot be loaded, or no longer has the run's number of rows (the split would differ,
        so predictions of the run and of a study would not be of the same test rows).
    """
    ds = load_dataset(results["data"], verify=False)
    if len(ds.params) != results["n"]:
        raise DatasetError(f"{results['data']} has {len(ds.params)} rows, the predictability run used "
                           f"{results['n']}; rerun `make predictability` on it")
    return ds


def load_predictions(path: Path, fingerprint: str,
                      models: Mapping[str, str]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """What :func:`save_predictions` wrote for the same data and split, of the models whose
    hyperparameter fingerprint is as in ``models``; {} when there is nothing."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return {}
            return {m: v for m, v in _saved_members(z).items()
                    if f"model:{m}" in z.files and str(z[f"model:{m}"]) == models.get(m)}
    except (OSError, KeyError, ValueError):
        return {}


def _saved_members(arrays: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Model -> (test predictions, class probabilities by parameter) in the arrays :func:`save_predictions`
    wrote (an open ``.npz`` or :func:`load_saved_run`'s ``saved``)."""
    out: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {
        key[5:]: (np.asarray(arrays[key]), {}) for key in arrays if key.startswith("pred:")}
    for key in arrays:
        if key.startswith("proba:"):
            _, m, name = key.split(":", 2)
            if m in out:
                out[m][1][name] = np.asarray(arrays[key])
    return out


def saved_ensemble(results: Mapping[str, Any], saved: Mapping[str, np.ndarray],
                   Y_test: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The :func:`ensemble` of a finished run's saved test predictions (:func:`load_saved_run`), and its
    members; an empty frame and no members when fewer than two were saved."""
    members = _saved_members(saved)
    preds = {m: pd.DataFrame(p, columns=list(results["columns"])) for m, (p, _) in members.items()}
    pred, _, used = ensemble(preds, {m: proba for m, (_, proba) in members.items()}, results.get("synth"), Y_test)
    return pred, used


def run_split(results: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The training and test rows of a finished run (:func:`load_saved_run`'s ``results``): its split of its
    ``n`` dataset rows, by its test fraction and seed (:func:`synth_probe.training.split_indices`)."""
    from synth_probe.training import split_indices

    config = results.get("config") or {}
    missing = [k for k in ("test_fraction", "seed") if k not in config]
    if missing:  # a made-up default would name other rows as the run's test rows
        raise DatasetError(f"the predictability run on {results.get('data')} does not record its "
                           f"{' and '.join(missing)}; rerun it to compare on its split")
    return split_indices(int(results["n"]), float(config["test_fraction"]), int(config["seed"]))


class SavedAnswers:
    """A finished run's test predictions of given dataset rows, where a comparison takes a fitted model.

    ``predict`` returns them for exactly those rows (in that order); it computes nothing, so it
    refuses any other number of rows. ``targets_`` names the columns as a fitted estimator's does
    (:func:`synth_probe.matching.model_columns`).
    """

    def __init__(self, pred: pd.DataFrame, label: str) -> None:
        self.pred = pred.reset_index(drop=True)
        self.label = label
        self.targets_ = SimpleNamespace(named=True, columns=list(pred.columns))

    def predict(self, X: Any) -> pd.DataFrame:
        if len(X) != len(self.pred):
            raise ParameterValueError(f"{self.label} holds the predictions of {len(self.pred)} rows, "
                                      f"asked for {len(X)}")
        return self.pred.copy()


def saved_answers(reports_dir: str | os.PathLike, data: str | os.PathLike, n_rows: int, rows: np.ndarray,
                  model: str = "ensemble") -> SavedAnswers:
    """The test predictions of ``model`` (a run's model, or ``"ensemble"``: :func:`saved_ensemble`) in the
    finished run in ``reports_dir``, for the dataset rows ``rows``.

    Parameters
    ----------
    reports_dir : str or Path
    data : str or Path
        The dataset the rows are of; it must be the run's.
    n_rows : int
        Rows in that dataset (the run's split is of its rows, so it must be the run's number).
    rows : np.ndarray [shape=(m,), dtype=int]
        Dataset rows, each one of the run's test rows.
    model : str, default="ensemble"

    Raises
    ------
    DatasetError
        When the run cannot be read.
    ParameterValueError
        When the run was on another dataset or number of rows, a row is not among its test rows,
        or it has no saved predictions of ``model``.
    """
    results, saved, _ = load_saved_run(reports_dir)
    if Path(str(results.get("data", ""))).resolve() != Path(data).resolve():
        raise ParameterValueError(f"the run in {reports_dir} was on {results.get('data')!r}, not {str(data)!r}")
    if int(results["n"]) != int(n_rows):
        raise ParameterValueError(f"the run in {reports_dir} split {results['n']} rows of {data}; it has {n_rows} "
                                  "now, so its test rows are other rows")
    config = results.get("config") or {}
    _, test = run_split(results)
    rows = np.asarray(rows, dtype=np.int64)
    if len(test) == 0:
        raise ParameterValueError(f"the run in {reports_dir} held out no test rows")
    pos = np.minimum(np.searchsorted(test, rows), len(test) - 1)
    outside = rows[test[pos] != rows]
    if len(outside):
        raise ParameterValueError(f"{len(outside)} of the rows (e.g. {int(outside[0])}) are not test rows of the run "
                                  f"in {reports_dir} (test fraction {config.get('test_fraction')}, seed "
                                  f"{config.get('seed')}); compare on the same split")
    columns = list(results["columns"])
    if model == "ensemble":
        ds = load_run_dataset(results)
        pred, members = saved_ensemble(results, saved, ds.params[columns].iloc[test].reset_index(drop=True))
        if not members:
            raise ParameterValueError(f"the run in {reports_dir} saved fewer than two of {', '.join(ENSEMBLE_MEMBERS)}"
                                      "; no ensemble")
        label = "ensemble of " + ", ".join(members)
    elif f"pred:{model}" in saved:
        pred, label = pd.DataFrame(saved[f"pred:{model}"], columns=columns), model
    else:
        have = sorted(k[5:] for k in saved if k.startswith("pred:"))
        raise ParameterValueError(f"the run in {reports_dir} saved no predictions of {model!r}; it has "
                                  f"{', '.join(have + ['ensemble'])}")
    return SavedAnswers(pred.iloc[pos].reset_index(drop=True), label)
