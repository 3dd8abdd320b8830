"""One exception tree for synth_probe.

Every error the toolkit raises on purpose derives from :class:`SynthProbeError`.
Where callers would naturally catch a built-in type (``ValueError`` for bad
values, ``KeyError`` for unknown names, ``FileNotFoundError`` for missing
files) the class derives from that type as well, so both ``except`` styles work.
"""
from __future__ import annotations

import difflib
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
]


class SynthProbeError(Exception):
    """Base class of every error synth_probe raises on purpose."""


def closest_names(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` valid names closest to ``name`` (difflib ratio)."""
    valid = list(valid)
    hits = difflib.get_close_matches(name, valid, n=n, cutoff=0.5)
    if not hits:
        lowered = name.lower()
        hits = [v for v in valid if lowered in v.lower() or v.lower() in lowered][:n]
    return hits


class UnknownParameterError(SynthProbeError, KeyError):
    """A parameter name that the synth does not have.

    The message lists the closest valid names and, at the end, all of them.
    """

    def __init__(self, name: str, valid: Iterable[str], synth: str = "synth") -> None:
        valid = list(valid)
        self.name = name
        self.valid = valid
        self.suggestions = closest_names(name, valid)
        hint = (
            f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else ""
        )
        self.message = (
            f"unknown parameter {name!r} for {synth}.{hint} "
            f"Valid names: {', '.join(valid)}"
        )
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
