"""Any VST2 (``.so``) or VST3 (``.vst3``) synth behind the :class:`Synth` interface.

A :class:`PluginSynth` reads the plugin's parameters once (names, defaults, value
texts), caches that description on disk by the hash of the plugin binary, and
renders through DawDreamer's plugin processor — by default in a persistent
child process, so a plugin that segfaults or exits (a JUCE plugin without an X
display does exactly that) raises :class:`~synth_probe.errors.PluginError`
instead of ending the caller. A real TAL-NoiseMaker is recognised by its
parameter names and exposes the emulation's 88 canonical names
(:mod:`synth_probe.synths.tal_names`).
"""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import PluginError, RenderError
from synth_probe.fileio import read_json
from synth_probe.synths._plugin_process import _ChildHost, _LocalHost
from synth_probe.synths.base import CONTINUOUS, DISCRETE, ParamSpec, RenderSettings, Synth
from synth_probe.synths.elf import VST2_ENTRY, inspect_binary
from synth_probe.util import atomic_text

__all__ = [
    "PluginSynth",
    "PluginFile",
    "check_plugin_file",
    "inspect_binary",
    "missing_libraries",
    "plugin_search_dirs",
    "find_plugins",
    "specs_from_description",
    "cache_dir",
    "resolve_reset",
    "RESET_ENV",
]

#: bump when the cached description's format changes
CACHE_FORMAT = 1
HOST_MACHINE = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}.get(platform.machine().lower())
#: environment variable that sets the reset of plugins created without ``reset=`` (``synth-probe --plugin-reset``)
RESET_ENV = "SYNTH_PROBE_PLUGIN_RESET"


# --------------------------------------------------------------------------------------------
# the plugin file
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PluginFile:
    """A plugin on disk, checked.

    Attributes
    ----------
    path : Path
        What DawDreamer loads: the ``.so`` or the ``.vst3`` bundle.
    binary : Path
        The shared library itself (inside the bundle for VST3).
    format : {"vst2", "vst3"}
    """

    path: Path
    binary: Path
    format: str


def _vst3_binary(bundle: Path) -> Path:
    contents = bundle / "Contents"
    arch = platform.machine().lower()
    for sub in (f"{arch}-linux", "x86_64-linux", "aarch64-linux"):
        d = contents / sub
        if d.is_dir():
            libs = sorted(d.glob("*.so"))
            if libs:
                return libs[0]
    if (contents / "MacOS").is_dir():
        raise PluginError(
            f"{str(bundle)!r} is a macOS VST3 bundle (Contents/MacOS); on Linux only bundles "
            "with Contents/x86_64-linux/*.so load"
        )
    if any(contents.glob("*-win")):
        raise PluginError(
            f"{str(bundle)!r} is a Windows VST3 bundle (Contents/*-win); on Linux only bundles "
            "with Contents/x86_64-linux/*.so load"
        )
    raise PluginError(f"{str(bundle)!r} is a directory without a Linux binary in Contents/<arch>-linux/")


def check_plugin_file(path: str | os.PathLike) -> PluginFile:
    """Check that ``path`` is a plugin this machine can load, before DawDreamer sees it.

    Raises
    ------
    PluginError
        A missing path, a Windows (PE) or macOS (Mach-O) binary, a text file, an ELF
        file for another architecture, or a library without a VST entry point — each
        with what was found and what is allowed.
    """
    p = Path(os.path.expanduser(str(path)))
    allowed = "a Linux VST2 plugin (.so exporting VSTPluginMain) or a VST3 bundle (.vst3)"
    if not p.exists():
        raise PluginError(f"plugin {str(p)!r} does not exist; give the path of {allowed}")
    if p.is_dir():
        if p.suffix.lower() == ".vst3":
            binary, fmt = _vst3_binary(p), "vst3"
        elif (p / "Contents" / "MacOS").is_dir():
            raise PluginError(f"{str(p)!r} is a macOS plugin bundle; on Linux give {allowed}")
        else:
            raise PluginError(f"{str(p)!r} is a directory, not a plugin; give {allowed}")
    else:
        binary, fmt = p, "vst2"
    if p.suffix.lower() == ".clap":
        raise PluginError(f"{str(p)!r} is a CLAP plugin, which DawDreamer cannot host; give {allowed}")
    if not binary.is_file():
        raise PluginError(f"{str(binary)!r} is not a regular file (a device, a pipe or a socket); give {allowed}")
    try:
        info = inspect_binary(binary)
    except OSError as e:
        raise PluginError(f"{str(binary)!r} cannot be read: {e.strerror or e}") from None
    if info.kind == "pe":
        raise PluginError(
            f"{str(binary)!r} is a Windows binary (PE/DLL); it cannot load on Linux. Give {allowed}"
        )
    if info.kind == "macho":
        raise PluginError(f"{str(binary)!r} is a macOS binary (Mach-O); it cannot load on Linux. Give {allowed}")
    if info.kind in ("text", "empty", "unknown"):
        what = {"text": "a text file", "empty": "an empty file", "unknown": "not a shared library"}[info.kind]
        raise PluginError(f"{str(binary)!r} is {what}, not a plugin; give {allowed}")
    if info.problem:
        raise PluginError(f"{str(binary)!r} is not a valid ELF shared library: {info.problem}; give {allowed}")
    if HOST_MACHINE is not None and info.machine != HOST_MACHINE:
        raise PluginError(
            f"{str(binary)!r} is built for {info.machine_name}, this machine runs {platform.machine()}; "
            f"give {allowed} for this architecture"
        )
    if info.bits != 64:
        raise PluginError(f"{str(binary)!r} is a 32-bit library; DawDreamer here is 64-bit")
    if info.elf_type != 3:
        raise PluginError(f"{str(binary)!r} is an ELF executable, not a shared library; give {allowed}")
    if not info.entry_points:
        raise PluginError(
            f"{str(binary)!r} is a shared library without a plugin entry point "
            "(VSTPluginMain/main for VST2, GetPluginFactory for VST3); it is not a plugin"
        )
    if fmt == "vst2" and "GetPluginFactory" in info.entry_points and not set(VST2_ENTRY) & set(info.entry_points):
        raise PluginError(
            f"{str(binary)!r} is the binary inside a VST3 bundle; give the bundle directory (…/Name.vst3)"
        )
    return PluginFile(p, binary, fmt)


def _ldd_lines(binary: str | os.PathLike) -> list[str]:
    """Output lines of ``ldd binary`` (empty if ldd is missing, fails to start or times out)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        res = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return res.stdout.splitlines()


def missing_libraries(binary: str | os.PathLike) -> list[str]:
    """Shared libraries that ``ldd`` reports as "not found" for ``binary`` (empty if none or no ldd)."""
    return [line.split("=>")[0].strip() for line in _ldd_lines(binary) if "not found" in line]


def linked_libraries(binary: str | os.PathLike) -> list[str]:
    """Sonames ``ldd`` lists for ``binary`` (empty if ldd is missing)."""
    return [line.split("=>")[0].strip() for line in _ldd_lines(binary) if line.strip()]


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# finding plugins
# --------------------------------------------------------------------------------------------
def plugin_search_dirs() -> list[Path]:
    """The standard Linux plugin folders, then those in ``LXVST_PATH``, ``VST_PATH`` and ``VST3_PATH``."""
    home = Path.home()
    dirs = [home / ".vst", home / ".vst3", Path("/usr/lib/vst"), Path("/usr/lib/vst3"),
            Path("/usr/local/lib/vst"), Path("/usr/local/lib/vst3")]
    for var in ("LXVST_PATH", "VST_PATH", "VST3_PATH"):
        for part in os.environ.get(var, "").split(os.pathsep):
            if part:
                dirs.append(Path(os.path.expanduser(part)))
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def find_plugins(dirs: Sequence[Path] | None = None) -> list[tuple[str, Path]]:
    """Plugins in ``dirs`` (default :func:`plugin_search_dirs`): ``[(format, path), ...]``.

    VST2 plugins are ``*.so`` files (searched recursively), VST3 plugins ``*.vst3`` bundles.
    """
    out: list[tuple[str, Path]] = []
    for d in dirs if dirs is not None else plugin_search_dirs():
        if not d.is_dir():
            continue
        for root, subdirs, files in os.walk(d):
            rp = Path(root)
            for s in sorted(subdirs):
                if s.lower().endswith(".vst3"):
                    out.append(("vst3", rp / s))
            subdirs[:] = sorted(s for s in subdirs if not s.lower().endswith(".vst3"))
            for f in sorted(files):
                if f.lower().endswith(".so"):
                    out.append(("vst2", rp / f))
                elif f.lower().endswith(".vst3"):
                    out.append(("vst3", rp / f))
    return out


# --------------------------------------------------------------------------------------------
# the description cache
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/synth_probe/plugins`` (default ``~/.cache/synth_probe/plugins``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synth_probe" / "plugins"


def _load_cached(sha: str) -> list[dict[str, Any]] | None:
    path = cache_dir() / f"{sha}.json"
    try:
        data = read_json(path, error=PluginError, what="cached plugin description")
    except PluginError:  # missing or damaged: the plugin is read again
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("sha256") != sha:
        return None
    return data.get("params")


def _save_cached(sha: str, plugin: Path, params: list[dict[str, Any]]) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        atomic_text(d / f"{sha}.json",
                    json.dumps({"format": CACHE_FORMAT, "sha256": sha, "plugin": str(plugin), "params": params}))
    except OSError:
        pass  # a read-only cache only costs a re-read next time


# --------------------------------------------------------------------------------------------
# specs from a description
# --------------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"^\s*([-+]?(?:inf|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))\s*([^\d\s].*)?$", re.I)
# unit text -> (canonical unit, factor)
_UNITS = {
    "hz": ("Hz", 1.0), "khz": ("Hz", 1e3), "s": ("s", 1.0), "sec": ("s", 1.0), "ms": ("s", 1e-3),
    "us": ("s", 1e-6), "µs": ("s", 1e-6), "db": ("dB", 1.0), "%": ("%", 1.0),
    "st": ("st", 1.0), "semi": ("st", 1.0), "semitones": ("st", 1.0), "ct": ("ct", 1.0),
    "cents": ("ct", 1.0), "x": ("x", 1.0),
}


def parse_value_text(text: str, label: str = "") -> tuple[float, str] | None:
    """Parse a plugin's value text such as ``"1.5 kHz"`` into ``(1500.0, "Hz")``.

    ``label`` is the unit the plugin reports separately (used when the text has none).
    Returns ``None`` when the text is not a number.
    """
    m = _NUM_RE.match(str(text))
    if not m:
        return None
    x = float(m.group(1))
    unit_text = (m.group(2) or label or "").strip()
    key = unit_text.lower()
    if key in _UNITS:
        unit, factor = _UNITS[key]
        return x * factor, unit
    return x, unit_text


def sanitize_name(name: str) -> str:
    """A plugin's parameter name as an identifier: ``"Filter Cutoff"`` -> ``"filter_cutoff"``."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()
    if s and s[0].isdigit():
        s = "p_" + s
    return s


def _unique_names(raw_names: Sequence[str]) -> list[str]:
    out, seen = [], set()
    for i, raw in enumerate(raw_names):
        base = sanitize_name(raw) or f"param_{i}"
        name, k = base, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        out.append(name)
    return out


def _runs(texts: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in texts:
        if not out or out[-1] != t:
            out.append(t)
    return out


def _is_discrete(p: dict[str, Any]) -> list[str] | None:
    """The choice labels of a discrete parameter, or ``None`` if it is continuous."""
    texts = p["texts"]
    runs = _runs(texts)
    contiguous = (len(runs) == len(set(runs)) and bool(p.get("boundaries"))) or len(runs) == 1
    steps = int(p.get("num_steps", 0))
    if p.get("is_boolean"):
        return runs if contiguous and len(runs) == 2 else ["off", "on"]
    if 2 <= steps <= 4096 and steps != 0x7FFFFFFF:
        if contiguous and len(runs) == steps:
            return runs
        if p.get("value_strings") and len(p["value_strings"]) == steps:
            return list(p["value_strings"])
        return [str(k) for k in range(steps)]
    if len(runs) < 2 or len(runs) > 32 or not contiguous:
        return None
    parsed = [parse_value_text(t) for t in runs]
    if all(x is not None for x in parsed):
        # numbers with a fractional part and many values: a continuous knob shown coarsely
        fractional = any(abs(x[0] - round(x[0])) > 1e-9 for x in parsed if math.isfinite(x[0]))
        if fractional and len(runs) > 8:
            return None
    return runs


def _chooser_from(bounds: Sequence[float]):
    bounds = [float(b) for b in bounds]

    def chooser(v: float) -> int:
        return bisect.bisect_right(bounds, float(v))

    return chooser


def _interp(grid: np.ndarray, values: np.ndarray):
    def physical(v: float) -> float:
        return float(np.interp(float(v), grid, values))

    return physical


def _group(name: str) -> str:
    head = re.split(r"[_\s]", name, maxsplit=1)[0]
    return head if head and head != name else "main"


def _generic_spec(i: int, name: str, p: dict[str, Any]) -> ParamSpec:
    from synth_probe.synths._plugin_worker import PROBE_GRID

    default = min(max(float(p["default"]), 0.0), 1.0)
    group = _group(name)
    label = p.get("label", "")
    raw = p.get("name", "")
    note = f"plugin name {raw!r}" if raw != name else ""
    choices = _is_discrete(p)
    if choices is not None:
        n = len(choices)
        bounds = list(p.get("boundaries") or [])
        if len(bounds) == n - 1:
            edges = [0.0] + bounds + [1.0]
            values = [0.0] + [0.5 * (edges[k] + edges[k + 1]) for k in range(1, n - 1)] + [1.0]
            round_bounds = [(k + 0.5) / (n - 1) for k in range(n - 1)]
            if all(abs(a - b) < 1e-4 for a, b in zip(bounds, round_bounds)):
                return ParamSpec(i, name, DISCRETE, default, group, tuple(choices),
                                 tuple(k / (n - 1) for k in range(n)), "round", note=note)
            rounding = "gt0" if n == 2 and bounds[0] < 1e-4 else "trunc"
            return ParamSpec(i, name, DISCRETE, default, group, tuple(choices), tuple(values),
                             rounding, note=note, chooser=_chooser_from(bounds))
        return ParamSpec(i, name, DISCRETE, default, group, tuple(choices),
                         tuple(k / (n - 1) for k in range(n)), "round", note=note)
    parsed = [parse_value_text(t, label) for t in p["texts"]]
    ok = [x for x in parsed if x is not None]
    unit, physical = "", None
    if len(ok) == len(parsed) and ok:
        units = {u for _, u in ok}
        if len(units) == 1:
            unit = units.pop()
            vals = np.array([x for x, _ in ok], dtype=np.float64)
            if np.all(np.isfinite(vals)):
                physical = _interp(np.asarray(PROBE_GRID, dtype=np.float64), vals)
    return ParamSpec(i, name, CONTINUOUS, default, group, unit=unit, physical=physical, note=note)


def specs_from_description(
    params: Sequence[dict[str, Any]], name_map: str | None = "auto"
) -> tuple[list[ParamSpec], list[int | None], dict[int, float], str]:
    """Turn a plugin description (see :meth:`PluginHost.describe`) into specs.

    Parameters
    ----------
    params : sequence of dict
        The described parameters, host order.
    name_map : {"auto", None}
        ``"auto"`` maps a recognised TAL-NoiseMaker onto its 88 canonical names and
        drops a VST3 "Bypass" parameter of any plugin (held at 0); ``None`` exposes
        every parameter under its sanitised plugin name.

    Returns
    -------
    specs : list of ParamSpec
    host_slots : list of (int or None)
        Plugin index written for each spec (``None``: not written).
    fixed : dict of int to float
        Plugin slots set to a fixed value before every render.
    layout : str
        ``"generic"`` or the TAL layout.
    """
    if name_map not in ("auto", None):
        raise PluginError(f"name_map must be 'auto' or None, got {name_map!r}")
    names = [p["name"] for p in params]
    if name_map == "auto":
        from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS
        from synth_probe.synths.tal_names import match_tal_layout

        tal = match_tal_layout(names)
        if tal is not None:
            specs = []
            for spec, slot in zip(NOISEMAKER_SPECS, tal.host_slots):
                default = spec.default if slot is None else min(max(float(params[slot]["default"]), 0.0), 1.0)
                specs.append(dataclasses.replace(spec, default=default))
            return specs, list(tal.host_slots), dict(tal.fixed), tal.layout
    fixed: dict[int, float] = {}
    keep = []
    for p in params:
        if name_map == "auto" and str(p["name"]).strip().lower() == "bypass":
            fixed[int(p["index"])] = 0.0
        else:
            keep.append(p)
    unique = _unique_names([p["name"] for p in keep])
    specs = [_generic_spec(int(p["index"]), nm, p) for nm, p in zip(unique, keep)]
    return specs, [int(p["index"]) for p in keep], fixed, "generic"


def resolve_reset(reset: str | None, isolate: bool = True) -> str:
    """The reset mode: ``reset`` if given, else :data:`RESET_ENV`'s value, else the default.

    The default is ``"fork"`` for a plugin in a child process (``isolate=True``) and
    ``"flush"`` in this process: ``fork`` copies the process that hosts the plugin, which
    for ``isolate=False`` is the caller's own.

    Raises
    ------
    PluginError
        A value that is not a reset mode, or ``fork`` with ``isolate=False`` (naming
        where the value came from).
    """
    from synth_probe.synths._plugin_worker import RESET_MODES

    source = "reset"
    if reset is None and os.environ.get(RESET_ENV):
        reset, source = os.environ[RESET_ENV], RESET_ENV
    if reset is None:
        return "fork" if isolate else "flush"
    mode = reset.strip().lower() if isinstance(reset, str) else reset
    if mode not in RESET_MODES:
        raise PluginError(
            f"{source} must be one of {', '.join(RESET_MODES)} (what clears a plugin's state between renders), "
            f"got {reset!r}"
        )
    if mode == "fork" and not isolate:
        raise PluginError(
            f"{source}='fork' renders in forked copies of the process that hosts the plugin; with isolate=False "
            "that is this process: use isolate=True (the default) or another reset (flush, reload, none)"
        )
    return mode


# --------------------------------------------------------------------------------------------
# the synth
# --------------------------------------------------------------------------------------------
class PluginSynth(Synth):
    """A VST2/VST3 synth loaded by DawDreamer, behind the :class:`Synth` interface.

    Parameters
    ----------
    path : str or PathLike
        A Linux VST2 plugin (``.so``) or VST3 bundle (``.vst3``).
    isolate : bool, default=True
        Load and render in a persistent child process, so that a plugin that crashes or
        exits raises :class:`PluginError` instead of ending this process. The child is
        restarted on the next call. ``False`` renders in this process (slightly faster,
        no protection).
    pre_roll : float, default=0.1
        Seconds of silence rendered (and discarded) after the parameters are written and
        before the note starts, so that the plugin's parameter smoothing settles.
    name_map : {"auto", None}, default="auto"
        ``"auto"``: a recognised TAL-NoiseMaker exposes the emulation's 88 canonical
        names (:mod:`synth_probe.synths.tal_names`) and any plugin's VST3 "Bypass" is
        held at 0 and hidden. ``None``: every parameter under its sanitised plugin name.
    timeout : float, default=120
        Seconds to wait for the child process on one call before it is killed.
    use_cache : bool, default=True
        Read the parameter description from the on-disk cache (:func:`cache_dir`, keyed
        by the binary's sha256) when present.
    reset : {"fork", "flush", "reload", "none"}, optional
        What clears the previous render's state before each render (default: the
        ``SYNTH_PROBE_PLUGIN_RESET`` environment variable, else ``"fork"`` with
        ``isolate=True`` and ``"flush"`` without). ``"fork"``: every render runs in a forked
        copy of the plugin's process whose instance has never rendered, so a render depends
        on its patch, settings and seed only. ``"flush"``: MIDI all-sound-off/all-notes-off,
        the plugin's default patch and silence until the output is below -90 dBFS, then the
        patch and silence until quiet (2 s at most in all); it clears tails and held voices,
        not state a plugin keeps through an all-sound-off (a free-running LFO's phase, a
        portamento's last pitch, amsynth's oscillator sync). ``"reload"``: a new plugin
        instance for every render. ``"none"``: the instance keeps effect tails, held voices
        and modulator phases from render to render (the behaviour before resets existed).

    Notes
    -----
    A render's ``seed`` seeds the C library's ``rand()`` in the process that hosts the
    plugin, right before the pre-roll: plugins that draw their randomness from it
    (TAL-NoiseMaker's reverb modulation and master detune) render the same audio for the
    same patch and seed in every reset mode. A plugin with its own generator (amsynth's
    noise waveforms use a private one) is out of ``srand``'s reach; under ``fork`` its
    generator restarts from the loaded state each render, so its renders repeat too.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        isolate: bool = True,
        pre_roll: float = 0.1,
        name_map: str | None = "auto",
        timeout: float = 120.0,
        use_cache: bool = True,
        reset: str | None = None,
    ) -> None:
        if not (0.0 <= float(pre_roll) <= 10.0):
            raise PluginError(f"pre_roll must be 0..10 s, got {pre_roll}")
        self.reset = resolve_reset(reset, bool(isolate))
        self.plugin = check_plugin_file(path)
        self.isolate = bool(isolate)
        self.pre_roll = float(pre_roll)
        self.name_map = name_map
        self.timeout = float(timeout)
        self.use_cache = bool(use_cache)
        self.name = self.plugin.path.name.rsplit(".", 1)[0] if self.plugin.path.suffix else self.plugin.path.name
        self.sha256 = sha256_file(self.plugin.binary)
        self._lock = threading.Lock()
        self._host: _ChildHost | _LocalHost = (
            _ChildHost(str(self.plugin.path), self.timeout) if self.isolate else _LocalHost(str(self.plugin.path))
        )
        params = _load_cached(self.sha256) if self.use_cache else None
        if params is None:
            params = self._call("describe", doing="reading its parameters")
            _save_cached(self.sha256, self.plugin.path, params)
        self.description = params
        self._specs, slots, self._fixed, self.layout = specs_from_description(params, name_map)
        self._write = [(k, s) for k, s in enumerate(slots) if s is not None]
        self._n_host = self._call("load", 44100, doing="loading")
        if self._n_host != len(params):
            raise PluginError(
                f"plugin {str(self.plugin.path)!r} now reports {self._n_host} parameters, its cached "
                f"description {len(params)}; delete {cache_dir() / (self.sha256 + '.json')}"
            )

    def _call(self, method: str, *args: Any, doing: str, timeout: float | None = None) -> Any:
        try:
            return self._host.call(method, *args, doing=doing, timeout=timeout)
        except PluginError as e:
            if doing == "loading" or doing == "reading its parameters":
                missing = missing_libraries(self.plugin.binary)
                if missing:
                    raise PluginError(f"{e}\nMissing shared libraries (ldd): {', '.join(missing)}") from None
            raise

    @property
    def specs(self) -> Sequence[ParamSpec]:
        return self._specs

    def identity(self) -> dict[str, Any]:
        return {
            "synth": self.name,
            "kind": "plugin",
            "format": self.plugin.format,
            "plugin": str(self.plugin.path.resolve()),
            "sha256": self.sha256,
            "layout": self.layout,
            "n_params": len(self._specs),
            "pre_roll": self.pre_roll,
            "reset": self.reset,
        }

    def _host_args(self, vec: np.ndarray) -> tuple[list[int], list[float]]:
        """The host slots to write and the values for them (the fixed slots, e.g. Bypass, included)."""
        slots = [s for _, s in self._write] + list(self._fixed)
        values = [float(vec[k]) for k, _ in self._write] + list(self._fixed.values())
        return slots, values

    def render_batch(self, vectors: np.ndarray, settings: RenderSettings, seeds: np.ndarray | None = None
                     ) -> np.ndarray:
        """Render every row of ``vectors`` in one request to the plugin's process.

        A child process answers a whole batch in one round trip, so isolation costs next to
        nothing per render. A row that comes back non-finite is rendered again through
        :meth:`render_vector`, which reloads the instance first (a blow-up poisons it).
        ``seeds`` (default 0 for every row) seed the C library's ``rand()`` per row.
        """
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if len(vectors) == 0:
            return np.empty((0, settings.n_samples), dtype=np.float32)
        seeds = np.zeros(len(vectors), dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=np.int64)
        slots = self._host_args(vectors[0])[0]
        rows = [self._host_args(v)[1] for v in vectors]
        args = (slots, rows, int(settings.note), int(settings.velocity), float(settings.note_length),
                float(settings.render_length), int(settings.sample_rate), self.pre_roll, self.reset,
                [int(x) for x in seeds])
        with self._lock:
            audio = self._call("render_batch", *args, doing=f"rendering a batch of {len(rows)}",
                               timeout=self.timeout * len(rows))
        for k in np.flatnonzero(~np.isfinite(audio).all(axis=1)):
            audio[k] = self.render_vector(vectors[k], settings, seed=int(seeds[k]))
        return audio

    def reset_stats(self) -> dict[str, Any]:
        """The ``flush`` resets so far in this plugin process: ``flushes``, ``seconds`` of silence, ``bounded``."""
        with self._lock:
            return self._call("stats", doing="reading its reset statistics")

    def _render_unit(self, vec: np.ndarray, settings: RenderSettings, seed: int) -> np.ndarray:
        slots, values = self._host_args(vec)
        args = (slots, values, int(settings.note), int(settings.velocity), float(settings.note_length),
                float(settings.render_length), int(settings.sample_rate), self.pre_roll, self.reset, int(seed))
        with self._lock:
            audio = self._call("render", *args, doing="rendering")
            if not np.all(np.isfinite(audio)):
                # a blow-up poisons the instance (reference §4): reload it and try once more
                self._call("load", int(settings.sample_rate), doing="reloading after a non-finite render")
                audio = self._call("render", *args, doing="rendering")
                if not np.all(np.isfinite(audio)):
                    patch = {s.name: float(v) for s, v in zip(self._specs, vec)}
                    raise RenderError(
                        f"plugin {self.name!r} rendered non-finite audio twice for this patch "
                        "(a fresh instance did too)", patch=patch
                    )
        return audio

    def check_applied(self, sample_rate: int = 44100) -> list[dict[str, Any]]:
        """Run :meth:`PluginHost.check_applied` on this plugin (see ``synth-probe doctor``)."""
        with self._lock:
            return self._call("check_applied", int(sample_rate), doing="checking parameters")

    def close(self) -> None:
        host = self.__dict__.get("_host")
        if host is not None:
            host.close()

    def __del__(self) -> None:  # the finalizer also covers interpreter exit
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        # a child process or engine does not pickle; the copy starts its own
        return {"path": str(self.plugin.path), "isolate": self.isolate, "pre_roll": self.pre_roll,
                "name_map": self.name_map, "timeout": self.timeout, "use_cache": self.use_cache,
                "reset": self.reset}

    def __setstate__(self, state: dict[str, Any]) -> None:
        path = state.pop("path")
        self.__init__(path, **state)
