"""Save and load fitted models in formats that do not execute code on load.

A saved model is a folder::

    model.json       header: format version, class, constructor parameters, synth,
                     target columns, feature steps, library versions, free metadata
    model.skops      scikit-learn / LightGBM models (the whole pipeline), skops format
    features.skops   torch models only: the feature steps before the estimator (skops)
    <weights>        torch models only: written by the estimator's ``_save_torch`` hook,
                     loaded with ``torch.load(..., weights_only=True)``

skops files are loaded with an explicit list of trusted types
(:data:`TRUSTED_TYPES`); a file that holds any other type is refused with
:class:`~synth_probe.errors.ModelFileError` instead of being loaded.

Torch estimators plug in by implementing two methods::

    def _save_torch(self, directory: pathlib.Path) -> None:
        # write tensors / plain containers with torch.save (weights from the CPU)
    def _load_torch(self, directory: pathlib.Path) -> None:
        # read them back with torch.load(..., weights_only=True, map_location="cpu")
        # and rebuild the fitted modules; called on a fresh instance whose
        # constructor parameters and base fitted state (targets_, n_features_in_,
        # param_names_, n_outputs_, and the JSON-able ``_torch_state()`` dict if the
        # estimator defines one) are already restored

The class of a torch model must be an estimator class of :mod:`synth_probe.models` (:func:`model_class`);
nothing else is imported by name from a header. A weights file that is missing, truncated
or holds anything but tensors and plain containers is a :class:`ModelFileError`.

A model folder never names a file that synth_probe opens as code or as a cache:

- the ``synth`` of the header is a built-in synth's name, or a plugin that the user must name
  again (``--synth PATH``); :func:`choose_synth` decides, and checks the plugin the user names
  against the ``synth_sha256`` recorded at save time before anything loads it;
- feature steps never carry a cache location: :func:`save_model` saves them with
  ``cache_dir=None`` (and a Pipeline with ``memory=None``), and :func:`load_model` refuses a
  header or an object that sets one.
"""
from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

import synth_probe.features as features_module
from synth_probe.errors import ModelFileError, PluginError, UnknownModelError
from synth_probe.fileio import read_json
from synth_probe.models import model_class
from synth_probe.models.base import ParamTargets
from synth_probe.synths.plugin import check_plugin_file, sha256_file
from synth_probe.synths.registry import BUILTIN_SYNTHS, is_plugin_path
from synth_probe.util import library_versions

__all__ = ["save_model", "load_model", "read_header", "choose_synth", "TRUSTED_TYPES", "FORMAT_VERSION"]

FORMAT_VERSION = 1
HEADER = "model.json"
SKOPS_FILE = "model.skops"
FEATURES_FILE = "features.skops"

#: every non-default type a saved scikit-learn / LightGBM model may hold (skops' own
#: defaults — numpy arrays, builtins, most sklearn estimators — are trusted by skops itself)
TRUSTED_TYPES: tuple[str, ...] = (
    "synth_probe.features.handcrafted.HandcraftedFeatures",
    "synth_probe.features.spectrogram.LogMelSpectrogram",
    "synth_probe.features.matching.MatchingSpectrogram",
    "synth_probe.features.probe.ProbeFeatures",
    "synth_probe.models.base.ParamTargets",
    "synth_probe.models.baseline.MeanBaseline",
    "synth_probe.models.knn.NearestNeighbours",
    "synth_probe.models.knn.NeighbourPosterior",
    "synth_probe.models.gbm.GBMEstimator",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.sklearn.LGBMClassifier",
    "collections.OrderedDict",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
)

_BASE_STATE = ("n_features_in_", "param_names_", "n_outputs_")
#: parameters that name a cache location: the feature steps' ``cache_dir``, a Pipeline's ``memory``
_CACHE_PARAMS = ("cache_dir", "memory")
#: what reading a damaged or hostile weights file raises (torch.load with weights_only=True)
_WEIGHTS_ERRORS = (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError, AttributeError,
                   pickle.UnpicklingError, zipfile.BadZipFile)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)  # recorded for information; never evaluated


def _split(model: Any) -> tuple[Any, list[tuple[str, Any]]]:
    if isinstance(model, Pipeline):
        return model.steps[-1][1], list(model.steps[:-1])
    return model, []


def _cache_settings(model: Any) -> dict[str, Any]:
    """The (deep) parameters of ``model`` that set a cache location, by sklearn parameter name."""
    if not hasattr(model, "get_params"):
        return {}
    try:
        params = model.get_params(deep=True)
    except AttributeError as e:  # an object without one of its constructor's attributes
        raise ModelFileError(f"the model's objects are incomplete: {e}") from None
    return {k: v for k, v in params.items() if k.rsplit("__", 1)[-1] in _CACHE_PARAMS and v is not None}


def _plugin_sha256(synth: Any) -> str | None:
    """sha256 of a plugin's binary when ``synth`` is a plugin path (None for built-in synths and names)."""
    if not isinstance(synth, str) or synth in BUILTIN_SYNTHS or not is_plugin_path(synth):
        return None
    try:
        return sha256_file(check_plugin_file(synth).binary)
    except (PluginError, OSError):
        return None


def save_model(model: Any, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Save a fitted estimator, or a Pipeline ending in one, into folder ``path``.

    Cache locations (``cache_dir`` of feature steps, a Pipeline's ``memory``) are not saved:
    the files hold None there, and ``model`` is left as it was. A plugin synth's binary is
    hashed into the header's ``synth_sha256``.

    Parameters
    ----------
    model : SynthEstimator or Pipeline
        Fitted.
    path : str or Path
        Folder to write (created; files of an earlier save are replaced).
    metadata : dict, optional
        JSON-able facts to keep in the header (dataset, metrics, command line...).

    Returns
    -------
    path : Path
    """
    caches = _cache_settings(model)
    if caches:
        model.set_params(**{k: None for k in caches})
    try:
        return _save(model, Path(path), metadata)
    finally:
        if caches:
            model.set_params(**caches)


def _save(model: Any, path: Path, metadata: dict[str, Any] | None) -> Path:
    est, pre = _split(model)
    check_is_fitted(est)
    path.mkdir(parents=True, exist_ok=True)
    targets = getattr(est, "targets_", None)
    header: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "class": f"{type(est).__module__}.{type(est).__qualname__}",
        "class_name": type(est).__name__,
        "params": _jsonable(est.get_params(deep=False)),
        "synth": getattr(est, "synth", None),
        "synth_sha256": _plugin_sha256(getattr(est, "synth", None)),
        "columns": list(getattr(est, "param_names_", [])),
        "pipeline": [name for name, _ in pre] + ["estimator"] if pre else None,
        "feature_steps": [
            {"name": name, "class": type(step).__name__, "params": _jsonable(step.get_params(deep=False))}
            for name, step in pre
        ],
        "versions": library_versions(),
        "metadata": _jsonable(metadata or {}),
    }
    if any(features_module.uses_handcrafted(step) for _, step in pre):
        header["descriptors_version"] = features_module.DESCRIPTORS_VERSION
    if hasattr(est, "_save_torch"):
        header["backend"] = "torch"
        header["estimator_step"] = None
        if pre:
            header["estimator_step"] = model.steps[-1][0]
            sio.dump(Pipeline(pre), path / FEATURES_FILE)
        state = {k: _jsonable(getattr(est, k)) for k in _BASE_STATE if hasattr(est, k)}
        if targets is not None:
            state["targets_"] = _jsonable(targets.__getstate__())
        if hasattr(est, "_torch_state"):
            state["torch_state"] = _jsonable(est._torch_state())
        header["fitted"] = state
        est._save_torch(path)
    else:
        header["backend"] = "skops"
        sio.dump(model, path / SKOPS_FILE)
    (path / HEADER).write_text(json.dumps(header, indent=2, sort_keys=False), encoding="utf-8")
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a saved model folder."""
    p = Path(path)
    file = p / HEADER if p.is_dir() else p
    if not file.exists():
        raise ModelFileError(
            f"{str(p)!r} is not a saved model: {HEADER} is missing (save one with `synth-probe train`)"
        )
    header = read_json(file, error=ModelFileError, what="model header")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(file)!r} has model format version {header.get('format_version')!r}; "
            f"this synth_probe reads version {FORMAT_VERSION}"
        )
    return header


def _load_skops(file: Path) -> Any:
    if not file.exists():
        raise ModelFileError(f"{str(file)!r} is missing")
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as e:  # corrupt zip or schema
        raise ModelFileError(f"{str(file)!r} is not a readable skops file: {e}") from None
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise ModelFileError(
            f"{str(file)!r} holds types that are not trusted and was not loaded: {', '.join(refused)}. "
            f"Trusted types: {', '.join(TRUSTED_TYPES)}"
        )
    return sio.load(file, trusted=list(untrusted))


def load_model(path: str | Path) -> Any:
    """Load a model saved by :func:`save_model` (without executing code from the files).

    Parameters
    ----------
    path : str or Path
        The model folder.

    Returns
    -------
    model : SynthEstimator or Pipeline
        As it was saved; ``model_header_`` (on the estimator) holds the header.

    Raises
    ------
    ModelFileError
        Missing or corrupt files (a truncated or pickle-bearing ``weights.pt`` included),
        another format version, untrusted types, a feature step or Pipeline that sets a cache
        location (in the header or in the objects).
    """
    path = Path(path)
    header = read_header(path)
    _refuse_header_caches(path, header)
    backend = header.get("backend")
    if backend == "skops":
        model = _load_skops(path / SKOPS_FILE)
    elif backend == "torch":
        model = _load_torch_model(path, header)
    else:
        raise ModelFileError(f"{str(path)!r}: unknown backend {backend!r} in {HEADER}; expected 'skops' or 'torch'")
    caches = _cache_settings(model)
    if caches:
        k, v = next(iter(caches.items()))
        raise ModelFileError(
            f"{str(path)!r} sets a feature cache location ({k}={v!r}) and was not used: a saved model never "
            "carries one (save_model drops it), so this folder was not written by synth_probe"
        )
    est, pre = _split(model)
    _check_descriptors(path, header, pre)
    est.model_header_ = header
    return model


def _refuse_header_caches(path: Path, header: dict[str, Any]) -> None:
    """Refuse a header whose feature steps name a cache location (save_model writes None there)."""
    steps = header.get("feature_steps") or []
    if not isinstance(steps, list):
        raise ModelFileError(f"{str(path)!r}: 'feature_steps' in {HEADER} is not a list")
    for step in steps:
        params = step.get("params") if isinstance(step, dict) else None
        for key in _CACHE_PARAMS:
            if isinstance(params, dict) and params.get(key) is not None:
                raise ModelFileError(
                    f"{str(path)!r}: feature step {step.get('name')!r} sets {key}={params[key]!r} in {HEADER}; "
                    "a saved model never carries a cache location, so this folder was not written by synth_probe"
                )


def choose_synth(
    recorded: str | None,
    given: str | None = None,
    *,
    recorded_sha256: str | None = None,
    source: str = "the model",
    allow_other_plugin: bool = False,
) -> tuple[str, list[str]]:
    """The synth to open for a saved model (or dataset): never a plugin that only a file names.

    Parameters
    ----------
    recorded : str or None
        The synth a header (or manifest) records: a built-in name is used as is; a plugin's
        path or name is never loaded from there.
    given : str or None
        What the user passed (``--synth``): a built-in name or a plugin path; it wins.
    recorded_sha256 : str or None
        The sha256 of the plugin binary the model was trained with. A plugin ``given`` by the
        user is hashed (not loaded) and compared with it.
    source : str
        How to name the model or dataset in messages.
    allow_other_plugin : bool
        Use a ``given`` plugin whose sha256 differs from ``recorded_sha256``, with a notice
        (``--allow-other-plugin``); without it that is an error.

    Returns
    -------
    synth : str
        A built-in name or the user's plugin path, for :func:`synth_probe.synths.registry.get_synth`.
    notices : list of str
        What the user should know (a plugin other than the one the model was trained with).

    Raises
    ------
    ModelFileError
        No synth at all; a recorded plugin the user did not name; a plugin whose sha256
        differs from the recorded one (without ``allow_other_plugin``).
    """
    if given is None:
        if recorded is None:
            raise ModelFileError(f"{source} does not name its synth; pass --synth")
        if str(recorded) in BUILTIN_SYNTHS:
            return str(recorded), []
        raise ModelFileError(
            f"{source} names the plugin {str(recorded)!r}; a plugin named by a model folder or dataset is never "
            "loaded: pass --synth PATH with the plugin file you trust"
            + (f" (sha256 {recorded_sha256} expected)" if recorded_sha256 else "")
        )
    if given in BUILTIN_SYNTHS or recorded_sha256 is None or not is_plugin_path(given):
        return given, []
    sha = sha256_file(check_plugin_file(given).binary)  # hashed, not loaded
    if sha == recorded_sha256:
        return given, []
    what = (f"{source} was trained with a plugin binary of sha256 {recorded_sha256}; {given!r} has sha256 {sha} "
            "(another build or version: its parameters may mean other sounds)")
    if not allow_other_plugin:
        raise ModelFileError(f"{what}. Pass --allow-other-plugin to use it anyway")
    return given, [f"{what}; used because of --allow-other-plugin"]


def _check_descriptors(path: Path, header: dict[str, Any], pre: list[tuple[str, Any]]) -> None:
    """Refuse a model whose handcrafted descriptors are not the ones this synth_probe computes."""
    if not any(features_module.uses_handcrafted(step) for _, step in pre):
        return
    saved = header.get("descriptors_version", 1)  # headers before the version was written: 1
    if saved != features_module.DESCRIPTORS_VERSION:
        raise ModelFileError(
            f"{str(path)!r} was trained on handcrafted descriptors version {saved}; this synth_probe computes "
            f"version {features_module.DESCRIPTORS_VERSION}, whose columns its estimator does not know. Train it again "
            f"with `synth-probe train` (the dataset is all it needs)"
        )


def _load_torch_model(path: Path, header: dict[str, Any]) -> Any:
    try:
        cls = model_class(header.get("class_name", ""))
    except UnknownModelError as e:
        raise ModelFileError(f"{str(path)!r}: {e}") from None
    if f"{cls.__module__}.{cls.__qualname__}" != header.get("class"):
        raise ModelFileError(f"{str(path)!r}: class {header.get('class')!r} is not a synth_probe model")
    params = dict(header.get("params") or {})
    # JSON has no tuples: an image shape (2 or 3 ints) comes back as the tuple the estimator was given
    if isinstance(params.get("input_shape"), list):
        params["input_shape"] = tuple(params["input_shape"])
    try:
        est = cls(**params)
    except TypeError as e:
        raise ModelFileError(f"{str(path)!r}: parameters do not fit {cls.__name__}: {e}") from None
    fitted = header.get("fitted") or {}
    for k in _BASE_STATE:
        if k in fitted:
            setattr(est, k, fitted[k])
    if "targets_" in fitted:
        t = ParamTargets.__new__(ParamTargets)
        state = dict(fitted["targets_"])
        state["choice_values"] = [tuple(v) for v in state.get("choice_values", [])]
        if not state.get("named", True):
            state["columns"] = [int(c) for c in state["columns"]]
        t.__dict__.update(state)
        est.targets_ = t
    if "torch_state" in fitted and hasattr(est, "_set_torch_state"):
        est._set_torch_state(fitted["torch_state"])
    _load_weights(path, est)
    if header.get("pipeline"):
        pre = _load_skops(path / FEATURES_FILE)
        return Pipeline(list(pre.steps) + [(header.get("estimator_step") or "estimator", est)])
    return est


def _load_weights(path: Path, est: Any) -> None:
    """Run the estimator's ``_load_torch``; a missing, damaged or hostile weights file is a ModelFileError.

    The hook reads with ``torch.load(weights_only=True)``, which refuses any object other than
    tensors and plain containers without running it; this turns that refusal, and a truncated
    or missing file, into one clear error.
    """
    file = path / getattr(est, "_WEIGHTS_FILE", "weights.pt")
    if not file.is_file():
        raise ModelFileError(f"{str(file)!r} is missing; the model folder is incomplete (train it again)")
    try:
        est._load_torch(path)
    except ModelFileError:
        raise
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        raise ModelFileError(
            f"{str(file)!r} holds objects other than tensors" + (f" ({found.group(1)})" if found else "")
            + " and was refused without running them"
        ) from None
    except _WEIGHTS_ERRORS as e:
        first = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:160]  # torch adds paragraphs of advice
        raise ModelFileError(
            f"{str(file)!r} is not a readable weights file for {type(est).__name__} (truncated or corrupt): "
            f"{type(e).__name__}: {first}"
        ) from None
