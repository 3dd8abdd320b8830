"""The plugin host: one DawDreamer engine with one plugin, in this process or a child.

:class:`PluginHost` does the work that touches the plugin — load it, describe
its parameters, render one note, check that parameter writes are applied. The
same class runs in-process (``PluginSynth(isolate=False)``) and inside a child
process started by :class:`synth_probe.synths.plugin.PluginSynth`, which runs
``python -m synth_probe.synths._plugin_worker FD`` and speaks to it over the
socket ``FD`` with :class:`multiprocessing.connection.Connection` messages:
``(method, args)`` in, ``("ok", result)`` or ``("err", type, message)`` out.

The engine is built inside the process that uses it (DESIGN.md, convention 5),
never shared across threads, and rebuilt only when the sample rate changes.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PluginHost", "PROBE_GRID", "MAX_CHOICES", "main"]

BLOCK_SIZE = 512
#: unit values at which every parameter's value text is read (257 points, step 1/256)
PROBE_GRID = np.linspace(0.0, 1.0, 257)
#: at most this many distinct value texts make a parameter a candidate for "discrete"
MAX_CHOICES = 32
#: DawDreamer reports this step count for a continuous parameter
CONTINUOUS_STEPS = 0x7FFFFFFF


class PluginHost:
    """One plugin instance in one DawDreamer engine.

    Parameters
    ----------
    path : str
        Plugin file (VST2 ``.so``) or bundle (``.vst3``), already checked by the caller.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.engine: Any = None
        self.proc: Any = None
        self.sample_rate = 0
        self.defaults: list[float] = []

    # -- loading ---------------------------------------------------------------------------
    def _make(self, sample_rate: int) -> tuple[Any, Any]:
        import dawdreamer as daw

        engine = daw.RenderEngine(int(sample_rate), BLOCK_SIZE)
        try:
            proc = engine.make_plugin_processor("plugin", self.path)
        except Exception as e:  # DawDreamer raises a bare RuntimeError/Exception
            raise RuntimeError(f"DawDreamer could not load {self.path!r}: {e}") from None
        engine.load_graph([(proc, [])])
        return engine, proc

    def load(self, sample_rate: int = 44100) -> int:
        """(Re)load the plugin for ``sample_rate``; returns its number of parameters."""
        self.engine, self.proc = self._make(sample_rate)
        self.sample_rate = int(sample_rate)
        n = int(self.proc.get_plugin_parameter_size())
        self.defaults = [float(self.proc.get_parameter(i)) for i in range(n)]
        return n

    def ping(self) -> bool:
        return True

    # -- describing ------------------------------------------------------------------------
    def describe(self) -> list[dict[str, Any]]:
        """Read every parameter from a fresh, throwaway instance.

        Returns
        -------
        params : list of dict
            Per parameter (host order): ``index``, ``name``, ``default`` (the unit value
            after loading), ``label`` (unit text the plugin reports), ``num_steps``,
            ``is_boolean``, ``value_strings``, ``texts`` (the plugin's value text at each
            unit value of :data:`PROBE_GRID`) and ``boundaries`` (for parameters with few
            distinct texts: the unit values where the text changes, found by bisection
            to 1e-6, else empty).
        """
        engine, proc = self._make(44100)
        try:
            n = int(proc.get_plugin_parameter_size())
            desc = {int(d["index"]): d for d in proc.get_parameters_description()}
            out = []
            for i in range(n):
                d = desc.get(i, {})
                default = float(proc.get_parameter(i))
                texts = []
                for v in PROBE_GRID:
                    proc.set_parameter(i, float(v))
                    texts.append(str(proc.get_parameter_text(i)))
                boundaries = _boundaries(proc, i, texts) if len(set(texts)) <= MAX_CHOICES else []
                proc.set_parameter(i, default)
                out.append(
                    {
                        "index": i,
                        "name": str(proc.get_parameter_name(i)),
                        "default": default,
                        "label": str(d.get("label", "")),
                        "num_steps": int(d.get("numSteps", CONTINUOUS_STEPS)),
                        "is_boolean": bool(d.get("isBoolean", False)),
                        "value_strings": [str(s) for s in d.get("valueStrings", [])],
                        "texts": texts,
                        "boundaries": boundaries,
                    }
                )
            return out
        finally:
            del proc, engine

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        slots: Sequence[int],
        values: Sequence[float],
        note: int,
        velocity: int,
        note_length: float,
        render_length: float,
        sample_rate: int,
        pre_roll: float,
    ) -> np.ndarray:
        """Set ``values`` at host ``slots``, play one note after ``pre_roll`` s of silence.

        Returns
        -------
        audio : np.ndarray [shape=(round(render_length * sample_rate),), dtype=float32]
            The channel mean, the pre-roll cut off.
        """
        if self.proc is None or self.sample_rate != int(sample_rate):
            self.load(sample_rate)
        proc = self.proc
        for i, v in zip(slots, values):
            proc.set_parameter(int(i), float(v))
        sr = int(sample_rate)
        pre = int(round(pre_roll * sr))
        n = int(round(render_length * sr))
        proc.clear_midi()
        if note_length > 0:
            proc.add_midi_note(int(note), int(velocity), pre / sr, float(note_length))
        self.engine.render((pre + n) / sr)
        audio = self.engine.get_audio()
        mono = audio.mean(axis=0) if audio.ndim == 2 and audio.shape[0] else np.zeros(0)
        mono = mono[pre : pre + n]
        if mono.shape[0] < n:
            mono = np.pad(mono, (0, n - mono.shape[0]))
        return np.ascontiguousarray(mono, dtype=np.float32)

    def render_batch(
        self,
        slots: Sequence[int],
        rows: Sequence[Sequence[float]],
        note: int,
        velocity: int,
        note_length: float,
        render_length: float,
        sample_rate: int,
        pre_roll: float,
    ) -> np.ndarray:
        """:meth:`render` for each row of ``values``, in order (one round trip for a child process).

        Returns
        -------
        audio : np.ndarray [shape=(len(rows), round(render_length * sample_rate)), dtype=float32]
        """
        n = int(round(render_length * int(sample_rate)))
        out = np.empty((len(rows), n), dtype=np.float32)
        for k, values in enumerate(rows):
            out[k] = self.render(slots, values, note, velocity, note_length, render_length, sample_rate, pre_roll)
        return out

    # -- checking --------------------------------------------------------------------------
    def check_applied(self, sample_rate: int = 44100) -> list[dict[str, Any]]:
        """Set every parameter away from its default and read back what the plugin holds.

        Each parameter goes to 1.0 if its default is below 0.5, else to 0.0. The plugin's
        value text is read right after the write, again after a short render (a plugin
        that resets a value while processing shows it there) and after restoring the
        default. DawDreamer's own ``get_parameter`` is recorded too, but the text is what
        tells whether the plugin applied the value (reference: tal-noisemaker.md §4).

        Returns
        -------
        rows : list of dict
            ``index``, ``name``, ``default``, ``target``, ``default_text``, ``set_text``,
            ``after_render_text``, ``restored_text``, ``readback``.
        """
        self.load(sample_rate)
        proc = self.proc
        n = len(self.defaults)
        rows = []
        for i in range(n):
            d = self.defaults[i]
            rows.append(
                {
                    "index": i,
                    "name": str(proc.get_parameter_name(i)),
                    "default": d,
                    "target": 1.0 if d < 0.5 else 0.0,
                    "default_text": str(proc.get_parameter_text(i)),
                }
            )
        for r in rows:
            proc.set_parameter(r["index"], r["target"])
            r["set_text"] = str(proc.get_parameter_text(r["index"]))
        proc.clear_midi()
        self.engine.render(BLOCK_SIZE * 8 / self.sample_rate)
        for r in rows:
            r["after_render_text"] = str(proc.get_parameter_text(r["index"]))
            r["readback"] = float(proc.get_parameter(r["index"]))
        for r in rows:
            proc.set_parameter(r["index"], r["default"])
            r["restored_text"] = str(proc.get_parameter_text(r["index"]))
        self.load(self.sample_rate)  # leave a fresh instance behind
        return rows


def _boundaries(proc: Any, i: int, texts: list[str]) -> list[float]:
    """Unit values where parameter ``i``'s text changes, each bisected to 1e-6.

    Only for texts that form contiguous runs (each text appears in one stretch of the
    grid); returns ``[]`` otherwise.
    """
    runs = [0]
    for k in range(1, len(texts)):
        if texts[k] != texts[k - 1]:
            runs.append(k)
    run_texts = [texts[k] for k in runs]
    if len(set(run_texts)) != len(run_texts):
        return []
    out = []
    for k in runs[1:]:
        lo, hi = float(PROBE_GRID[k - 1]), float(PROBE_GRID[k])
        t_lo = texts[k - 1]
        while hi - lo > 1e-6:
            mid = 0.5 * (lo + hi)
            proc.set_parameter(i, mid)
            if str(proc.get_parameter_text(i)) == t_lo:
                lo = mid
            else:
                hi = mid
        out.append(hi)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Child process loop: serve :class:`PluginHost` calls on the socket given as ``argv[0]``."""
    from multiprocessing.connection import Connection

    argv = list(sys.argv[1:] if argv is None else argv)
    conn = Connection(int(argv[0]))
    host = PluginHost(argv[1])
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return 0
        if method == "close":
            conn.send(("ok", None))
            return 0
        try:
            result = getattr(host, method)(*args)
        except Exception as e:  # sent back to the parent, which raises PluginError
            reply: tuple = ("err", type(e).__name__, str(e))
        else:
            reply = ("ok", result)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(reply)


if __name__ == "__main__":
    sys.exit(main())
