"""The plugin host: one DawDreamer engine with one plugin, in this process or a child.

:class:`PluginHost` does the work that touches the plugin — load it, describe
its parameters, render one note, check that parameter writes are applied. The
same class runs in-process (``PluginSynth(isolate=False)``) and inside a child
process started by :class:`synth_probe.synths.plugin.PluginSynth`, which runs
``python -m synth_probe.synths._plugin_worker FD`` and speaks to it over the
socket ``FD`` with :class:`multiprocessing.connection.Connection` messages:
``(method, args)`` in, ``("ok", result)`` or ``("err", type, message)`` out.

The engine is built inside the process that uses it (DESIGN.md, convention 5),
never shared across threads, and rebuilt when the sample rate changes or, under
the ``reload`` reset, before every render.

Resets between renders (``reset`` argument of :meth:`PluginHost.render`):

``flush``
    MIDI sustain off, all sound off, reset all controllers and all notes off on
    the 16 channels; the plugin's own default patch (its state right after
    loading) is written and silence rendered until the output stays below
    :data:`QUIET` (-90 dBFS peak) for :data:`QUIET_CHUNKS` chunks of
    :data:`FLUSH_CHUNK` samples in a row; then the patch is written, the render's
    note played for :data:`PRIME_S` s (a voice's own smoothed copies of parameters,
    which move only while the voice sounds, reach the patch's values; a portamento
    starts from the render's own note), the all-off messages sent again and silence
    rendered until quiet, which also drains effect buffers that the default patch
    muted through the patch's own effects. At most :data:`FLUSH_MAX_S` seconds of
    silence in all.
``reload``
    a new plugin instance for every render (the old one is dropped after the new
    one exists, so the library stays loaded).
``fork``
    every render runs in a forked copy of this process whose instance has never
    rendered; the copy hands the audio back through shared memory and ends (Linux
    ``fork``: the plugin's memory, its private random generators included, is
    copied as it was after loading).
``none``
    nothing: the instance keeps tails, voices and modulator phases.

When a render has a seed (:class:`~synth_probe.synths.plugin.PluginSynth` always gives one), the
C library's ``rand()`` is seeded with it just before the pre-roll (``srand(seed)`` in the
process that hosts the plugin, in every mode).
"""
from __future__ import annotations

import ctypes
import gc
import math
import mmap
import os
import signal
import struct
import sys
import tempfile
import traceback
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PluginHost", "PROBE_GRID", "MAX_CHOICES", "RESET_MODES", "QUIET", "FLUSH_MAX_S", "main"]

BLOCK_SIZE = 512
#: unit values at which every parameter's value text is read (257 points, step 1/256)
PROBE_GRID = np.linspace(0.0, 1.0, 257)
#: at most this many distinct value texts make a parameter a candidate for "discrete"
MAX_CHOICES = 32
#: DawDreamer reports this step count for a continuous parameter
CONTINUOUS_STEPS = 0x7FFFFFFF
#: what happens to the plugin instance between two renders (see the module docstring)
RESET_MODES = ("fork", "flush", "reload", "none")
#: a flush stage ends when the output peaks below this (-90 dBFS) ...
QUIET = 10.0 ** (-90.0 / 20.0)
#: ... for this many chunks in a row
QUIET_CHUNKS = 2
#: samples per flush chunk
FLUSH_CHUNK = 1024
#: a flush renders at most this many seconds of silence (both stages together)
FLUSH_MAX_S = 2.0
#: seconds of the note a flush plays with the patch before the render (see :meth:`PluginHost.flush`)
PRIME_S = 0.05
#: MIDI controllers sent on every channel at the start of a flush: sustain pedal off (64, value 0),
#: all sound off (120), reset all controllers (121), all notes off (123)
ALL_OFF_CONTROLLERS = ((64, 0), (120, 0), (121, 0), (123, 0))
#: this process's C library, opened on the first :func:`seed_c_rand`
_LIBC: Any = None


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
        self.fresh = True  # no render since the instance was loaded
        self.flush_stats = {"flushes": 0, "seconds": 0.0, "bounded": 0}
        self._all_off_path: str | None = None

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
        self.fresh = True
        n = int(self.proc.get_plugin_parameter_size())
        self.defaults = [float(self.proc.get_parameter(i)) for i in range(n)]
        return n

    def close(self) -> None:
        """Drop the instance, collect forked copies, remove the MIDI file of the flush."""
        _reap(block=True)
        self.engine = self.proc = None
        if self._all_off_path is not None:
            _unlink_quietly(self._all_off_path)
            self._all_off_path = None

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
        reset: str = "none",
        seed: int | None = None,
    ) -> np.ndarray:
        """Reset the instance, set ``values`` at host ``slots``, play one note after ``pre_roll`` s.

        Parameters
        ----------
        reset : {"flush", "reload", "fork", "none"}
            What clears the previous render's state first (see the module docstring).
        seed : int, optional
            Seeds the C library's ``rand()`` right before the pre-roll; ``None`` leaves it alone.

        Returns
        -------
        audio : np.ndarray [shape=(round(render_length * sample_rate),), dtype=float32]
            The channel mean, the pre-roll cut off.
        """
        if reset not in RESET_MODES:
            raise ValueError(f"reset must be one of {', '.join(RESET_MODES)}, got {reset!r}")
        if self.proc is None or self.sample_rate != int(sample_rate):
            self.load(sample_rate)
        elif reset == "reload" and not self.fresh:
            self.engine, self.proc = self._make(sample_rate)  # the old instance goes after the new one exists
            self.fresh = True
        play = (slots, values, note, velocity, note_length, render_length, sample_rate, pre_roll, seed)
        if reset == "fork":
            return self._play_forked(play)
        if reset == "flush":
            self.flush(slots, values, note, velocity)
        return self._play(play)

    def _play(self, play: tuple[Any, ...]) -> np.ndarray:
        """Write the patch, seed ``rand()``, render pre-roll and note on the current instance (no reset).

        ``play`` holds :meth:`render`'s arguments but ``reset``, in its order: ``(slots, values,
        note, velocity, note_length, render_length, sample_rate, pre_roll, seed)``.
        """
        slots, values, note, velocity, note_length, render_length, sample_rate, pre_roll, seed = play
        proc = self.proc
        for i, v in zip(slots, values):
            proc.set_parameter(int(i), float(v))
        if seed is not None:
            seed_c_rand(int(seed))
        self.fresh = False
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

    def _play_forked(self, play: tuple[Any, ...]) -> np.ndarray:
        """:meth:`_play` in a forked copy of this process, whose instance has never rendered.

        The copy writes the audio into shared memory and ends; this process's instance
        stays as loaded, so every render starts from the same state, the plugin's own
        random generators included. A copy still running after :func:`fork_alarm`
        seconds ends by ``SIGALRM`` (a lock held by another thread at the fork would
        hang it); the render is then tried once more from a newly loaded instance.
        """
        if not self.fresh:
            self.load(self.sample_rate)
        if gc.isenabled():
            gc.freeze()  # the copy's collector then leaves the loaded objects' pages alone
        n = int(round(float(play[5]) * int(play[6])))
        alarm = fork_alarm(float(play[7]) + float(play[5]))
        for attempt in (1, 2):
            rc, audio = _fork_once(lambda: self._play(play), n, alarm)
            if rc == -signal.SIGALRM and attempt == 1:
                self.load(self.sample_rate)
                continue
            break
        if rc != 0:
            how = f"was killed by signal {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
            if rc == -signal.SIGALRM:
                how += f" after {alarm} s, twice (try reset='flush' for this plugin)"
            raise RuntimeError(f"the forked render {how}; the loaded instance is unharmed")
        return audio

    def flush(self, slots: Sequence[int], values: Sequence[float], note: int, velocity: int) -> float:
        """The ``flush`` reset, ending with ``values`` written at ``slots``; returns the seconds rendered.

        MIDI all-off messages and the default patch, silence until quiet; then the patch,
        a :data:`PRIME_S` s note (``note``, ``velocity``) that brings the voice's own
        smoothed values to the patch, all-off again and silence until quiet. At most
        :data:`FLUSH_MAX_S` seconds of silence in all.
        """
        proc = self.proc
        all_off = self._all_off_midi()
        proc.load_midi(all_off, clear_previous=True, beats=False, all_events=True)
        for i, v in enumerate(self.defaults):
            proc.set_parameter(i, v)
        chunk = FLUSH_CHUNK / self.sample_rate
        budget = int(FLUSH_MAX_S / chunk)
        used = self._until_quiet(chunk, budget)
        for i, v in zip(slots, values):
            proc.set_parameter(int(i), float(v))
        proc.clear_midi()
        proc.add_midi_note(int(note), int(velocity), 0.0, PRIME_S)
        self.engine.render(PRIME_S)
        proc.load_midi(all_off, clear_previous=True, beats=False, all_events=True)
        used += self._until_quiet(chunk, max(budget - used, QUIET_CHUNKS))
        proc.clear_midi()
        self.flush_stats["flushes"] += 1
        self.flush_stats["seconds"] += used * chunk + PRIME_S
        self.flush_stats["bounded"] += int(used >= budget)
        return used * chunk + PRIME_S

    def _until_quiet(self, chunk: float, limit: int) -> int:
        """Render silent chunks of ``chunk`` s until :data:`QUIET_CHUNKS` in a row peak below
        :data:`QUIET`, at most ``limit`` chunks; returns the number rendered."""
        quiet = 0
        for k in range(1, limit + 1):
            self.engine.render(chunk)
            audio = self.engine.get_audio()
            quiet = quiet + 1 if audio.size == 0 or float(np.max(np.abs(audio))) < QUIET else 0
            if quiet >= QUIET_CHUNKS:
                return k
        return limit

    def _all_off_midi(self) -> str:
        """Path of a MIDI file with :data:`ALL_OFF_CONTROLLERS` on all 16 channels at time 0."""
        if self._all_off_path is None or not os.path.exists(self._all_off_path):
            fd, path = tempfile.mkstemp(prefix="synth_probe_all_off_", suffix=".mid")
            with os.fdopen(fd, "wb") as f:
                f.write(all_off_midi_bytes())
            self._all_off_path = path
            weakref.finalize(self, _unlink_quietly, path)  # also when the host is never closed
        return self._all_off_path

    def stats(self) -> dict[str, Any]:
        """How many flushes ran, the seconds of silence they rendered, and how many hit the bound."""
        return dict(self.flush_stats)

    def render_batch(self, slots: Sequence[int], rows: Sequence[Sequence[float]], *settings: Any) -> np.ndarray:
        """:meth:`render` for each row of ``rows``, in order (one round trip for a child process).

        Parameters
        ----------
        slots : sequence of int
            Host slots, as for :meth:`render`.
        rows : sequence of sequence of float [shape=(n_rows, len(slots))]
            One patch's values per row.
        *settings
            :meth:`render`'s arguments from ``note`` to ``reset`` in their order, then ``seeds``
            (one int per row, or None to leave ``rand()`` alone).

        Returns
        -------
        audio : np.ndarray [shape=(len(rows), round(render_length * sample_rate)), dtype=float32]
        """
        *common, seeds = settings
        n = int(round(float(common[3]) * int(common[4])))  # render_length * sample_rate
        out = np.empty((len(rows), n), dtype=np.float32)
        for k, values in enumerate(rows):
            seed = None if seeds is None else int(seeds[k])
            out[k] = self.render(slots, values, *common, seed)
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


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fork_alarm(audio_seconds: float) -> int:
    """Seconds a forked render may run: 60 s plus ten times the audio it renders."""
    return int(60 + 10 * math.ceil(audio_seconds))


#: forked copies that handed their audio over and may still be ending; reaped by :func:`_reap`
_EXITING: list[int] = []


def _reap(block: bool = False) -> None:
    """Collect the forked copies that have ended (all of them when ``block``)."""
    for pid in list(_EXITING):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _EXITING.remove(pid)


def _fork_once(play: Any, n: int, alarm: int) -> tuple[int, np.ndarray | None]:
    """Run ``play()`` (returning ``n`` float32 samples) in a forked copy of this process.

    The copy writes the samples into shared memory and one byte into a pipe, then ends;
    this process takes the samples as soon as the byte arrives and collects the copy
    later (:func:`_reap`), so the copy's teardown overlaps the next render.

    Returns
    -------
    rc : int
        0, or the copy's exit code (negative: the signal that ended it) when it ended
        without handing samples over.
    audio : np.ndarray [shape=(n,), dtype=float32] or None
        The samples, when ``rc`` is 0.
    """
    _reap()
    shared = mmap.mmap(-1, max(4 * n, 4))
    r, w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the copy: render, hand the samples over, end without running any cleanup
            code = 70
            try:
                os.close(r)
                signal.alarm(alarm)
                np.frombuffer(shared, dtype=np.float32, count=n)[:] = play()
                os.write(w, b"1")
                code = 0
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(w)
        w = -1
        if os.read(r, 1) == b"1":
            _EXITING.append(pid)
            return 0, np.frombuffer(shared, dtype=np.float32, count=n).copy()
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) or 70, None
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        shared.close()


def seed_c_rand(seed: int) -> None:
    """``srand(seed)`` in this process's C library (``seed`` taken modulo 2**32).

    Repeats what plugins draw from ``rand()``/``random()`` (glibc shares one state between
    them); a plugin with its own generator is out of its reach.
    """
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None)
    _LIBC.srand(ctypes.c_uint(int(seed) % (1 << 32)))


def all_off_midi_bytes() -> bytes:
    """A format-0 Standard MIDI File: :data:`ALL_OFF_CONTROLLERS` on channels 1-16, all at time 0."""
    events = b"".join(bytes([0x00, 0xB0 | ch, cc, value]) for ch in range(16) for cc, value in ALL_OFF_CONTROLLERS)
    events += b"\x00\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(events)) + events


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
    try:
        return _serve(conn, host)
    finally:
        host.close()


def _serve(conn: Any, host: PluginHost) -> int:
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
