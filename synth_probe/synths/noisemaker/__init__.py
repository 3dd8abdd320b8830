"""The built-in TAL-NoiseMaker emulation: a Faust program rendered by DawDreamer.

The Faust source is ``noisemaker.dsp`` (voice, modulation, master section) plus
``fx.lib`` (delay, chorus, reverb), shipped as package data. It is compiled
once per process and sample rate, and the compiled engine is reused for every
render in that process.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

from synth_probe.errors import RenderError
from synth_probe.synths.base import ParamSpec, RenderSettings, SamplerPreset, Synth
from synth_probe.synths.noisemaker.samplers import NOISEMAKER_SAMPLERS
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS
from synth_probe.util import atomic_text

__all__ = ["NoiseMaker", "dsp_source", "param_header"]

BLOCK_SIZE = 512
# control sliders of the Faust program that are not synth parameters
CONTROLS = ("ctl_note", "ctl_velocity", "ctl_notelen", "ctl_seed")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def param_header(filter_family: int = 0, fx_on: bool = True) -> str:
    """Faust declarations of the 88 parameters (``P_<name>`` sliders) and the render controls.

    Generated from :data:`NOISEMAKER_SPECS`, so names and defaults have one source.
    ``filter_family`` and ``fx_on`` become compile-time constants that select which
    filter structure and whether the effects chain are compiled in (see :class:`NoiseMaker`).
    """
    lines = [
        'import("stdfaust.lib");',
        "BPM = 120;",
        f"FILTERFAMILY = {int(filter_family)};",
        f"FXON = {int(bool(fx_on))};",
    ]
    for s in NOISEMAKER_SPECS:
        lines.append(f'P_{s.name} = hslider("{s.name}", {s.default!r}, 0, 1, 0.000001);')
    lines += [
        'NOTE = hslider("ctl_note", 60, 0, 127, 1);',
        'VELOCITY = hslider("ctl_velocity", 100, 1, 127, 1);',
        'NOTELEN = hslider("ctl_notelen", 1, 0, 3600, 0.000001);',
        'SEED = hslider("ctl_seed", 0, 0, 1000000, 1);',
        # every slider is kept in every program variant, used or not (see `attach` in noisemaker.dsp)
        "KEEP = " + " + ".join(f"P_{s.name}" for s in NOISEMAKER_SPECS) + ";",
    ]
    return "\n".join(lines) + "\n"


def dsp_source(filter_family: int = 0, fx_on: bool = True) -> str:
    """The Faust program as compiled: parameter header, voice and master (noisemaker.dsp), fx.lib inlined."""
    body = _read("noisemaker.dsp").replace('import("fx.lib");', _read("fx.lib"))
    return param_header(filter_family, fx_on) + body


# filter type (0..11, TAL's order) -> the family of structures compiled for it
FILTER_FAMILY = (0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 4)
FILTER_FAMILIES = ("ladder LP24", "ladder modes", "state-variable", "extra ladder", "off")
_INDEX = {s.name: s.index for s in NOISEMAKER_SPECS}
_FILTERTYPE = NOISEMAKER_SPECS[_INDEX["filtertype"]]
# the effects chain is an exact bypass when both wets are 0 and both choruses are off
_FX_WETS = (_INDEX["delaywet"], _INDEX["reverbwet"])
_FX_SWITCHES = tuple(NOISEMAKER_SPECS[_INDEX[n]] for n in ("chorus1enable", "chorus2enable"))


def program_variant(vec: np.ndarray) -> tuple[int, bool]:
    """The (filter family, effects on) program that renders unit vector ``vec`` exactly."""
    family = FILTER_FAMILY[_FILTERTYPE.choice_index(float(vec[_FILTERTYPE.index]))]
    fx_on = any(vec[i] > 0.0 for i in _FX_WETS) or any(s.choice_index(float(vec[s.index])) for s in _FX_SWITCHES)
    return family, bool(fx_on)


#: environment variable naming a private folder for the compiled programs (instead of the user cache)
CACHE_ENV = "SYNTH_PROBE_FAUST_CACHE"


def _cache_dir() -> Path:
    """``$SYNTH_PROBE_FAUST_CACHE``, else ``$XDG_CACHE_HOME/synth_probe/faust`` (``~/.cache/...``)."""
    own = os.environ.get(CACHE_ENV)
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synth_probe" / "faust"


def _cache_path(source: str) -> Path:
    """Where the bitcode of ``source`` is cached (the key covers the source and the DawDreamer version)."""
    import dawdreamer as daw

    key = hashlib.sha256((source + getattr(daw, "__version__", "?")).encode()).hexdigest()[:32]
    return _cache_dir() / f"{key}.bc"


def program_variants(vectors: np.ndarray) -> list[tuple[int, bool]]:
    """The distinct programs (:func:`program_variant`) that rendering the rows of ``vectors`` uses.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, 88)]

    Returns
    -------
    variants : list of (int, bool)
        Sorted by the time their compile takes, longest first (more effects and filter
        structures, more code): the order that keeps parallel compiles evenly loaded.
    """
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    cols = [_FILTERTYPE.index, *_FX_WETS, *(s.index for s in _FX_SWITCHES)]
    rows = np.unique(vectors[:, cols], axis=0)
    probe = np.zeros(len(NOISEMAKER_SPECS))
    found = set()
    for row in rows:
        probe[cols] = row
        found.add(program_variant(probe))
    return sorted(found, key=lambda v: (-(v[0] + 2 * int(v[1])), v))


def _compile(engine, source: str):
    """A Faust processor in ``engine`` running ``source``, through an on-disk cache of its LLVM bitcode.

    Compiling the program takes seconds; restoring its bitcode takes a fraction of one. A
    freshly compiled program and one restored from bitcode can differ in the last bits of
    float arithmetic, so every processor is restored from bitcode — after compiling and caching
    it where the cache has none — and all processes render identical audio. The cache key covers
    the source and the DawDreamer version. A damaged cache file is ignored and rewritten.
    """
    path = _cache_path(source)
    proc = engine.make_faust_processor("noisemaker")
    if path.exists():
        try:
            if proc.compile_from_bitcode(path.read_text(encoding="ascii")):
                return proc
        except Exception:  # noqa: BLE001 - any failure means: compile from source
            pass
    scratch = engine.make_faust_processor("noisemaker_source")
    scratch.set_dsp_string(source)
    if not scratch.compile():  # pragma: no cover - the shipped program compiles
        raise RenderError("the noisemaker Faust program failed to compile")
    bitcode = scratch.__getstate__()["bitcode"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, bitcode, encoding="ascii")
    except OSError:  # a read-only cache only costs the next process a compile
        pass
    if not proc.compile_from_bitcode(bitcode):  # pragma: no cover
        raise RenderError("the noisemaker Faust program could not be restored from its bitcode")
    return proc


class _Engine:
    """One DawDreamer engine with the compiled program, for one process and sample rate."""

    def __init__(self, sample_rate: int, source: str, names: Sequence[str]) -> None:
        import dawdreamer as daw

        self.engine = daw.RenderEngine(int(sample_rate), BLOCK_SIZE)
        self.proc = _compile(self.engine, source)
        by_label = {d["label"]: d["index"] for d in self.proc.get_parameters_description()}
        missing = [n for n in list(names) + list(CONTROLS) if n not in by_label]
        if missing:  # pragma: no cover - guarded by tests
            raise RenderError(f"noisemaker.dsp lacks sliders for {missing}")
        self.param_index = [by_label[n] for n in names]
        self.control_index = {n: by_label[n] for n in CONTROLS}
        self.engine.load_graph([(self.proc, [])])


class NoiseMaker(Synth):
    """TAL-NoiseMaker's 88 parameters and signal path, emulated in Faust.

    Faust computes every branch of a program on every sample, so the emulation is compiled
    into ten programs: one per filter family (the LP24 ladder, the ladder of the other
    Xpander-style modes, state-variable modes, the extra ladder, unfiltered) with and without
    the effects chain. A render uses the program that
    the patch needs; the outputs are the same as one program with every branch would give.
    Compiled programs are cached on disk as LLVM bitcode (``~/.cache/synth_probe/faust``, or the
    folder named by ``$SYNTH_PROBE_FAUST_CACHE``); :meth:`programs_to_build` names the ones a batch
    still needs, so that it can compile them before it renders.

    Parameters
    ----------
    stereo : bool, default=False
        Return ``(2, n_samples)`` instead of the mono mix.
    """

    name = "noisemaker"

    def __init__(self, *, stereo: bool = False) -> None:
        self.stereo = stereo
        self._engines: dict[tuple[int, int, int, bool], _Engine] = {}
        self._lock = threading.Lock()

    @property
    def specs(self) -> Sequence[ParamSpec]:
        return NOISEMAKER_SPECS

    @property
    def sampler_presets(self) -> Mapping[str, SamplerPreset]:
        """``timbral`` and ``inversynth`` (:mod:`synth_probe.synths.noisemaker.samplers`)."""
        return NOISEMAKER_SAMPLERS

    def identity(self) -> dict:
        return {
            "synth": self.name,
            "kind": "builtin",
            "dsp_sha256": hashlib.sha256(dsp_source().encode()).hexdigest(),
            "n_params": len(NOISEMAKER_SPECS),
        }

    def _engine(self, sample_rate: int, variant: tuple[int, bool]) -> _Engine:
        # engines are per process (a forked child builds its own), sample rate and program variant
        key = (os.getpid(), int(sample_rate), *variant)
        eng = self._engines.get(key)
        if eng is None:
            eng = _Engine(sample_rate, dsp_source(*variant), self.param_names)
            self._engines = {k: v for k, v in self._engines.items() if k[0] == key[0]}
            self._engines[key] = eng
        return eng

    def programs_to_build(self, vectors: np.ndarray, settings: RenderSettings) -> list[tuple[int, bool]]:
        """The program variants ``vectors`` (shape ``(n, 88)``) need whose bitcode is not cached yet.

        Each takes seconds to compile (10-20 s on a loaded 2-core machine); a render that meets one
        waits for it, so a batch that builds them first (:meth:`build_program`) renders at an even pace.
        """
        return [v for v in program_variants(vectors) if not _cache_path(dsp_source(*v)).exists()]

    def build_program(self, program: tuple[int, bool], settings: RenderSettings) -> None:
        """Compile one program variant (filter family, effects on) into the bitcode cache and this process."""
        family, fx_on = program
        with self._lock:
            self._engine(settings.sample_rate, (int(family), bool(fx_on)))

    def _render_unit(self, vec: np.ndarray, settings: RenderSettings, seed: int) -> np.ndarray:
        with self._lock:  # one engine is never shared by two threads at once
            eng = self._engine(settings.sample_rate, program_variant(vec))
            proc = eng.proc
            for idx, value in zip(eng.param_index, vec):
                proc.set_parameter(idx, float(value))
            ci = eng.control_index
            proc.set_parameter(ci["ctl_note"], float(settings.note))
            proc.set_parameter(ci["ctl_velocity"], float(settings.velocity))
            proc.set_parameter(ci["ctl_notelen"], float(settings.note_length))
            proc.set_parameter(ci["ctl_seed"], float(seed % 1_000_000))
            eng.engine.render(settings.render_length)
            audio = eng.engine.get_audio()
        n = settings.n_samples
        audio = audio[:, :n]
        if audio.shape[1] < n:  # pragma: no cover - DawDreamer renders whole lengths
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        if self.stereo:
            return audio
        return audio.mean(axis=0)

    def close(self) -> None:
        self._engines.clear()

    def __getstate__(self) -> dict:
        # engines do not pickle; a worker process builds its own
        state = self.__dict__.copy()
        state["_engines"] = {}
        state.pop("_lock", None)
        state.pop("_by_name", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
