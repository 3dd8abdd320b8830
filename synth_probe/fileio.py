"""Reading files a user hands over, and checking where output goes, before any work.

* :func:`read_json` / :func:`loads_json`: the one reader of user-supplied JSON
  (patch files, patch tables, manifests, reports, caches). Every way such a file
  can be wrong — missing, a folder, unreadable, not UTF-8, not JSON, nested too
  deeply for the parser (a ``RecursionError``), larger than a bound (``/dev/zero``),
  or the wrong top-level type — becomes the caller's
  :class:`~synth_probe.errors.SynthProbeError` subclass with one line that says
  which file and what is wrong.
* :func:`check_output_dir` / :func:`check_output_file`: refuse an output path
  that cannot be written (an existing file where a folder goes, a folder where a
  file goes, a parent that is a file, a read-only or inaccessible folder), so a
  command fails before it renders or trains, and touches nothing when it does.
* :func:`check_audio_output` / :func:`write_audio`: the audio formats a render
  can be written to, chosen by the file's extension, and a write whose failure
  (a full disk) is a clean error that leaves any earlier file in place.

Writing files atomically, JSON-safe values, library versions and locks are in
:mod:`synth_probe.util`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import AudioError, OutputError, SynthProbeError
from synth_probe.util import atomic_replace

__all__ = [
    "MAX_JSON_BYTES",
    "AUDIO_FORMATS",
    "read_json",
    "loads_json",
    "json_type",
    "check_output_dir",
    "check_output_file",
    "check_audio_output",
    "write_audio",
    "describe_os_error",
]

#: the largest JSON file read (bytes): bounds the memory a hostile file (or ``/dev/zero``) can take
MAX_JSON_BYTES = 256 * 1024 * 1024

#: extension -> (libsndfile format, subtype, what it is); renders are float, so the lossless float formats
#: keep them exactly, FLAC stores 24-bit integers
AUDIO_FORMATS: Mapping[str, tuple[str, str, str]] = {
    ".wav": ("WAV", "FLOAT", "WAV, 32-bit float"),
    ".flac": ("FLAC", "PCM_24", "FLAC, 24-bit"),
    ".aiff": ("AIFF", "FLOAT", "AIFF, 32-bit float"),
    ".aif": ("AIFF", "FLOAT", "AIFF, 32-bit float"),
}

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number",
               bool: "true/false", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``object``, ``array``, ``string``...)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def read_json(
    path: str | os.PathLike,
    *,
    error: type[SynthProbeError],
    what: str = "JSON file",
    expect: type | tuple[type, ...] | None = dict,
    hint: str = "",
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """Parse the JSON file at ``path``; any fault becomes ``error``.

    Parameters
    ----------
    path : path-like
    error : type
        The :class:`~synth_probe.errors.SynthProbeError` subclass to raise, called with one message.
    what : str
        What the file is, for the message ("patch file", "dataset manifest").
    expect : type or tuple of types or None
        The allowed top-level types (``dict`` for a JSON object, ``list`` for an array); None: any.
    hint : str
        Appended to the message of a file that is not valid JSON or of the wrong type
        (e.g. an example of the expected content).
    max_bytes : int
        Files larger than this are refused unread.

    Returns
    -------
    The parsed value.

    Raises
    ------
    error
        Missing, a folder, unreadable, larger than ``max_bytes``, not UTF-8, not JSON,
        nested too deeply, or of a type not in ``expect``.
    """
    p = Path(path)
    label = f"{what} {str(p)!r}"
    try:
        with open(p, "rb") as f:
            raw = f.read(int(max_bytes) + 1)
    except FileNotFoundError:
        raise error(f"{label} does not exist") from None
    except IsADirectoryError:
        raise error(f"{label} is a folder; give a JSON file") from None
    except OSError as e:
        raise error(f"{label} cannot be read: {describe_os_error(e)}") from None
    if len(raw) > max_bytes:
        raise error(f"{label} is larger than {max_bytes // (1024 * 1024)} MiB; refusing to read it as JSON")
    return loads_json(raw, error=error, what=label, expect=expect, hint=hint)


def loads_json(
    text: str | bytes,
    *,
    error: type[SynthProbeError],
    what: str = "the JSON text",
    expect: type | tuple[type, ...] | None = None,
    hint: str = "",
) -> Any:
    """Parse JSON ``text`` (str, or bytes in UTF-8); any fault becomes ``error``.

    See :func:`read_json` for the parameters; ``what`` names the text in the message.
    """
    tail = f"; {hint}" if hint else ""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise error(f"{what} is not UTF-8 text (byte {e.start} is 0x{text[e.start]:02x}); "
                        f"expected a JSON file{tail}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}){tail}") from None
    except RecursionError:
        raise error(f"{what} nests JSON arrays or objects too deeply to be read{tail}") from None
    if expect is not None and not isinstance(data, expect):
        kinds = expect if isinstance(expect, tuple) else (expect,)
        wanted = " or ".join(f"a JSON {_JSON_TYPES.get(k, k.__name__)}" for k in kinds)
        raise error(f"{what} holds a JSON {json_type(data)}, expected {wanted}{tail}")
    return data


def describe_os_error(e: OSError) -> str:
    """One line for an OSError: its reason and, where known, its path (``No space left on device: 'x'``)."""
    reason = e.strerror or str(e) or type(e).__name__
    name = e.filename if e.filename is not None else None
    return f"{reason}: {str(name)!r}" if name is not None else reason


def _nearest_existing(p: Path) -> Path:
    """``p`` or its closest ancestor that exists (lexically; ``..`` is kept as written)."""
    q = p
    while not os.path.lexists(q):
        if q.parent == q:
            break
        q = q.parent
    return q


def _check_writable_dir(d: Path, target: Path, what: str) -> None:
    """``d`` (an existing path) must be a folder this process may create entries in."""
    if not d.is_dir():
        raise OutputError(f"{what} {str(target)!r} cannot be created: {str(d)!r} is a file, not a folder")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {str(target)!r} cannot be written: no write permission in {str(d)!r}")
    try:
        readonly = bool(os.statvfs(d).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        readonly = False
    if readonly:
        raise OutputError(f"{what} {str(target)!r} cannot be written: {str(d)!r} is on a read-only file system")


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be created or written; touch nothing.

    Returns
    -------
    Path
        ``path``, unchanged.

    Raises
    ------
    OutputError
        ``path`` is an existing file; a parent is a file; the nearest existing folder
        is not writable or is on a read-only file system.
    """
    p = Path(os.path.expanduser(str(path)))
    if os.path.lexists(p) and not p.is_dir():
        raise OutputError(f"{what} {str(p)!r} is an existing file, not a folder; give a folder path")
    _check_writable_dir(_nearest_existing(p), p, what)
    return p


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Refuse an output file that cannot be written; touch nothing.

    An existing regular file is allowed (it is replaced).

    Raises
    ------
    OutputError
        ``path`` is an existing folder, or its folder cannot be created or written.
    """
    p = Path(os.path.expanduser(str(path)))
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a folder; give a file path")
    if os.path.lexists(p) and not p.is_file() and not p.exists():
        raise OutputError(f"{what} {str(p)!r} is a broken symbolic link")
    if p.is_file():
        if not os.access(p, os.W_OK):
            raise OutputError(f"{what} {str(p)!r} cannot be replaced: no write permission")
        return p
    if p.exists():  # a device or a pipe: written as it is, its own errors are reported
        return p
    _check_writable_dir(_nearest_existing(p.parent), p, what)
    return p


def check_audio_output(path: str | os.PathLike) -> tuple[Path, str, str]:
    """The audio format ``path``'s extension asks for, and whether the path can be written.

    Returns
    -------
    (path, format, subtype)

    Raises
    ------
    AudioError
        An extension that is not one of :data:`AUDIO_FORMATS`.
    OutputError
        A path that cannot be written (see :func:`check_output_file`).
    """
    p = Path(path)
    fmt = AUDIO_FORMATS.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(f"{ext} ({label})" for ext, (_f, _s, label) in AUDIO_FORMATS.items() if ext != ".aif")
        got = f"extension {p.suffix!r}" if p.suffix else "no extension"
        raise AudioError(f"audio output {str(p)!r} has {got}; the file's extension chooses its format: {known}")
    check_output_file(p, "audio output")
    return p, fmt[0], fmt[1]


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write ``audio`` [shape=(n,) or (n, channels)] in the format of ``path``'s extension.

    A regular file is written beside its destination and renamed into place, so a
    failed write (a full disk) leaves the earlier file, or none. Devices and pipes
    are written directly.

    Raises
    ------
    AudioError, OutputError
        A bad extension or path (:func:`check_audio_output`), or a write that failed.
    """
    import soundfile as sf

    p, fmt, subtype = check_audio_output(path)
    data, rate = np.asarray(audio, dtype=np.float32), int(sample_rate)
    try:
        if p.exists() and not p.is_file():
            sf.write(str(p), data, rate, format=fmt, subtype=subtype)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_replace(p, lambda tmp: sf.write(str(tmp), data, rate, format=fmt, subtype=subtype))
    except (OSError, RuntimeError) as e:  # soundfile's LibsndfileError is a RuntimeError
        reason = describe_os_error(e) if isinstance(e, OSError) else str(e).strip().splitlines()[-1]
        raise OutputError(f"audio output {str(p)!r} could not be written: {reason}") from None
    return p
