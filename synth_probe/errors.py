"""One exception tree for synth_probe.

Every error the toolkit raises on purpose derives from :class:`SynthProbeError`.
Where callers would naturally catch a built-in type (``ValueError`` for bad
values, ``KeyError`` for unknown names, ``FileNotFoundError`` for missing
files) the class derives from that type as well, so both ``except`` styles work.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

__all__ = [
    "SynthProbeError",
    "UnknownParameterError",
    "ParameterValueError",
    "PatchFileError",
    "AudioError",
    "RenderError",
    "PluginError",
    "UnknownSynthError",
    "DatasetError",
    "DatasetMismatchError",
    "SamplerError",
    "UnknownModelError",
    "ModelFileError",
    "StorageError",
    "PresetFileError",
    "OutputError",
    "ReferenceDataError",
    "closest_names",
    "format_number",
]


class SynthProbeError(Exception):
    """Base class of every error synth_probe raises on purpose."""


def closest_names(name: str, valid: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` valid names closest to ``name``, closest first.

    difflib's similarity ratio first; when nothing is similar enough, the names that contain
    ``name`` or are contained in it (case-insensitive), so ``attack`` still finds ``ampattack``.
    """
    valid = [str(v) for v in valid]
    hits = difflib.get_close_matches(name, valid, n=n, cutoff=0.5)
    if not hits:
        lowered = name.lower()
        hits = [v for v in valid if lowered in v.lower() or v.lower() in lowered][:n]
    return hits


def format_number(x: object, digits: int = 3) -> str:
    """A number as people read it in a message: ``digits`` significant digits (``0.0123``, ``1.5e+04``).

    Whole numbers print whole (``20000``), infinities as ``inf``/``-inf``; anything that is
    not a number prints as ``str(x)`` (``None``).
    """
    if isinstance(x, (bool, str)) or x is None:
        return str(x)
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    if math.isfinite(v) and v == round(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.{digits}g}"


#: at most this many valid names are listed in full in a message; longer lists are only counted
LIST_ALL_UP_TO = 12


class UnknownParameterError(SynthProbeError, KeyError):
    """A parameter name that the synth does not have.

    The message names up to five of the closest valid names; a list of at most
    :data:`LIST_ALL_UP_TO` names is given whole, a longer one only counted, with
    where to read it (``listing``, by default ``synth-probe params SYNTH``).
    ``extra`` is a sentence put after the suggestions.
    """

    def __init__(self, name: str, valid: Iterable[str], synth: str = "synth", *, extra: str = "",
                 listing: str | None = None) -> None:
        valid = list(valid)
        self.name = name
        self.valid = valid
        self.suggestions = closest_names(name, valid)
        hint = (
            f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else ""
        )
        if len(valid) <= LIST_ALL_UP_TO:
            names = f"Valid names: {', '.join(valid)}"
        else:
            names = f"{len(valid)} names in all: {listing or '`synth-probe params SYNTH` lists them'}"
        self.message = f"unknown parameter {name!r} for {synth}.{hint}{' ' + extra if extra else ''} {names}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return self.message


class ParameterValueError(SynthProbeError, ValueError):
    """A parameter value outside [0, 1], NaN, or not a number."""


class PatchFileError(SynthProbeError, ValueError):
    """A patch file that cannot be read or does not hold a patch."""


class AudioError(SynthProbeError, ValueError):
    """Audio that is not usable: non-finite, wrong shape, wrong rate, empty."""


class RenderError(SynthProbeError, RuntimeError):
    """A render that failed; carries the patch that caused it."""

    def __init__(self, message: str, patch: dict | None = None) -> None:
        self.patch = patch
        super().__init__(message)


class PluginError(SynthProbeError, RuntimeError):
    """A plugin that cannot be loaded or that died while rendering."""


class UnknownSynthError(SynthProbeError, ValueError):
    """A synth name that is neither built in nor a plugin path."""


class DatasetError(SynthProbeError, RuntimeError):
    """A dataset folder that is missing, corrupt or made with other settings."""


class DatasetMismatchError(DatasetError):
    """An output folder that holds a dataset made with another synth or other settings.

    ``differences`` lists ``(field, existing, requested)`` for each setting that differs.
    """

    def __init__(self, message: str, differences: list | None = None) -> None:
        self.differences = list(differences or [])
        super().__init__(message)


class SamplerError(SynthProbeError, ValueError):
    """A sampler that does not exist, does not fit the synth, or is configured inconsistently."""


class UnknownModelError(SynthProbeError, ValueError):
    """A model name that is not one of the estimators (or cannot be imported here)."""

    def __init__(self, name: str, valid: Iterable[str], reason: str | None = None) -> None:
        valid = list(valid)
        self.name = name
        self.valid = valid
        if reason:
            msg = f"model {name!r} is not available: {reason}. Models: {', '.join(valid)}"
        else:
            hint = closest_names(name, valid)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            msg = f"unknown model {name!r}.{extra} Models: {', '.join(valid)}"
        super().__init__(msg)


class ModelFileError(SynthProbeError, ValueError):
    """A saved model that is missing, corrupt, or holds types that are not trusted."""


class PresetFileError(SynthProbeError, ValueError):
    """A synth's own preset or bank file that cannot be read or holds values it does not allow."""


class StorageError(SynthProbeError, RuntimeError):
    """A study storage (Optuna journal file or database URL) that cannot be opened or used.

    Messages show the URL with any password masked.
    """


class OutputError(SynthProbeError, OSError):
    """An output path that cannot be written, or a write that failed.

    An existing file where a folder goes (or the reverse), a parent that is a file, a
    read-only or forbidden folder, a full disk.
    """


class ReferenceDataError(SynthProbeError, ValueError):
    """Reference data that cannot be used as it is: a reference folder (``probes.csv``, its audio files,
    ``settings.json``), a sensitivity table to compare with, or a reference synth without the compared names."""
