"""Batch rendering: many patches of one synth, serially or in supervised worker processes.

Parallel work runs in a :class:`WorkerPool`: fresh Python processes (started
with ``python -m synth_probe.render --worker FD``, talking over a socket pair)
that unpickle the synth and build their DawDreamer engine inside themselves —
never in a thread of the parent — and reuse it for every task.
The parent watches every worker: a worker that dies (a plugin's segmentation
fault, ``kill -9``) or stays inside one render longer than the per-render
timeout fails only its own task, with the index of the patch in flight, and a
fresh worker takes the next task.

:func:`run_tasks` is the one way to run work on the pool: the task functions are
module-level functions (pickled by reference, so a worker imports their module), the
caller picks a failure policy (raise the first failure, or collect failures beside
the results, with optional reruns of tasks whose worker crashed or hung), and a run
that does not finish stops its workers mid-task.

Plugins run under two supervisors at ``jobs > 1``, on purpose: a
:class:`~synth_probe.synths.plugin.PluginSynth` hosts its plugin in a child process
of its own (it forks a fresh copy of the loaded plugin for every render by default,
so the audio does not depend on what was rendered before), and the pool worker that
holds the PluginSynth is supervised by the pool. A plugin that crashes is reported
by the PluginSynth as a :class:`~synth_probe.errors.PluginError` (a task "error"); a
worker that dies or hangs is reported by the pool (a task "crash" or "timeout").
Rendering the plugin in the worker itself would change the reset and so the audio.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from synth_probe.errors import RenderError
from synth_probe.progress import Progress
from synth_probe.synths.base import RenderSettings, Synth
from synth_probe.synths.registry import get_synth

__all__ = ["render_many", "render_chunk", "run_tasks", "build_programs", "FAILURE_POLICIES", "WorkerPool", "Task",
           "TaskFailure", "WorkerContext", "LocalContext", "get_pool", "discard_pool", "close_pools"]

#: extra seconds the first render of a worker may take (engine build, Faust compile, plugin load)
STARTUP_ALLOWANCE = 300.0
#: what :func:`run_tasks` does with a task that failed: raise it, or yield it beside the results
FAILURE_POLICIES = ("raise", "collect")


def render_many(
    synth: Synth | str,
    vectors: np.ndarray,
    settings: RenderSettings,
    seeds: np.ndarray | None = None,
    *,
    jobs: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Render every row of ``vectors`` (unit values in host order).

    Parameters
    ----------
    synth : Synth or str
        A synth or its name / plugin path.
    vectors : np.ndarray [shape=(n, n_params)]
        Validated unit vectors.
    settings : RenderSettings
    seeds : np.ndarray [shape=(n,)], optional
        Seed of each render (default 0 for all).
    jobs : int, default=1
        1 renders in this process; more render in that many worker processes
        (one engine each, kept between calls), in contiguous chunks. The audio
        does not depend on ``jobs``.
    progress : bool, default=False
        Show a progress bar (renders/s and time left).

    Returns
    -------
    audio : np.ndarray [shape=(n, settings.n_samples), dtype=float32]

    Raises
    ------
    RenderError
        A render that failed or a worker that died; the message names the
        patch index and ``.patch`` holds its unit vector as a dict.
    """
    if isinstance(synth, str):
        synth = get_synth(synth)
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n = len(vectors)
    seeds = np.zeros(n, dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=np.int64)
    if len(seeds) != n:
        raise RenderError(f"got {n} vectors but {len(seeds)} seeds; give one seed per vector")
    out = np.empty((n, settings.n_samples), dtype=np.float32)
    bar = _bar(n, progress, "render")
    jobs = max(1, int(jobs))
    try:
        if jobs == 1 or n <= 1:
            for i in range(n):
                try:
                    out[i] = synth.render_vector(vectors[i], settings, seed=int(seeds[i]))
                except Exception as e:
                    patch = dict(zip(synth.param_names, map(float, vectors[i])))
                    raise RenderError(f"render of patch {i} failed: {e}", patch=patch) from e
                if bar is not None:
                    bar.update(1)
            return out
        n_chunks = min(n, jobs * 4)
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        tasks = [Task(key=(int(a), int(b)), func=render_chunk, args=(vectors[a:b], settings, seeds[a:b], int(a)))
                 for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

        def error(res: TaskFailure) -> RenderError:
            idx = res.patch_index
            return RenderError(res.message,
                               patch=dict(zip(synth.param_names, map(float, vectors[idx]))) if idx is not None else None)

        on_done = (lambda i: bar.update(1)) if bar is not None else None
        for key, res in run_tasks(synth, tasks, jobs=jobs, on_failure="raise", error=error, on_done=on_done):
            out[key[0]:key[1]] = res
        return out
    finally:
        if bar is not None:
            bar.close()


def render_chunk(ctx: WorkerContext | LocalContext, vectors: np.ndarray, settings: RenderSettings,
                 seeds: np.ndarray, offset: int) -> np.ndarray:
    """Task function: render rows ``offset ..`` of a batch, announcing each patch to the pool.

    Returns
    -------
    audio : np.ndarray [shape=(len(vectors), settings.n_samples), dtype=float32]
    """
    out = np.empty((len(vectors), settings.n_samples), dtype=np.float32)
    for r in range(len(vectors)):
        ctx.start(offset + r)
        out[r] = ctx.synth.render_vector(vectors[r], settings, seed=int(seeds[r]))
        ctx.done(offset + r)
    return out


def run_tasks(
    synth: Synth,
    tasks: Iterable[Task],
    *,
    jobs: int = 1,
    in_process: bool = False,
    on_failure: str = "raise",
    retry_crashed: int = 0,
    error: Callable[[TaskFailure], BaseException] | None = None,
    timeout: float | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Run ``tasks`` and yield ``(key, result)`` as each one finishes.

    Parameters
    ----------
    synth : Synth
        The synth every task function gets as ``ctx.synth``.
    tasks : iterable of Task
        Keys must be hashable and distinct.
    jobs : int, default=1
        Worker processes of :func:`get_pool`'s pool for ``synth``.
    in_process : bool, default=False
        Call the task functions here, one after the other, with a :class:`LocalContext`
        (no isolation: their exceptions propagate unchanged and no policy applies).
    on_failure : {"raise", "collect"}, default="raise"
        What a task that failed in a worker (an exception, a crash, a timeout) does:
        ``"raise"`` raises ``error(failure)`` at the first one; ``"collect"`` yields
        ``(key, TaskFailure)`` and goes on with the other tasks.
    retry_crashed : int, default=0
        Times a task whose worker died or hung is run again (on a fresh worker, after
        the other tasks) before the policy applies to it.
    error : callable, optional
        Builds the exception ``"raise"`` raises from the failure (default
        ``RenderError(failure.message)``).
    timeout : float or None
        Seconds one render may take in a worker (see :class:`WorkerPool`).
    on_done : callable, optional
        Called with the patch index after every finished render (``ctx.done(i)``).

    Yields
    ------
    (key, result or TaskFailure)

    Notes
    -----
    A run that does not finish (a raised failure, an exception in the caller, Ctrl-C,
    a consumer that stops early) stops the pool's workers mid-task, so no task of it
    outlives it.
    """
    if on_failure not in FAILURE_POLICIES:
        raise ValueError(f"on_failure must be one of {FAILURE_POLICIES}, got {on_failure!r}")
    todo = list(tasks)
    if in_process:
        ctx = LocalContext(synth, on_done=on_done)
        for t in todo:
            yield t.key, t.func(ctx, *t.args)
        return
    if not todo:
        return
    pool = get_pool(synth, jobs, timeout=timeout)
    attempts: dict[Any, int] = {}
    finished = False
    try:
        while todo:
            by_key, todo = {t.key: t for t in todo}, []
            for key, res in pool.run(list(by_key.values()), jobs=jobs, on_done=on_done):
                if isinstance(res, TaskFailure):
                    if res.kind in ("crash", "timeout") and attempts.get(key, 0) < retry_crashed:
                        attempts[key] = attempts.get(key, 0) + 1
                        todo.append(by_key[key])
                        continue
                    if on_failure == "raise":
                        raise error(res) if error is not None else RenderError(res.message)
                yield key, res
        finished = True
    finally:
        if not finished:
            discard_pool(pool)


def build_programs(synth: Synth, vectors: np.ndarray, settings: RenderSettings, *, jobs: int = 1,
                   log: Callable[[str], None] | None = None, desc: str = "render",
                   interval: float = 10.0) -> int:
    """Build the programs rendering ``vectors`` would build on the way (:meth:`Synth.programs_to_build`).

    A Faust synth compiles a program variant the first time a render needs it, which takes
    seconds; built here first — one task per program, spread over ``jobs`` workers of the pool
    the renders then use — the renders run at an even pace and their time left is honest.
    ``log`` gets this phase's own progress lines (``desc: building programs``).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, n_params)]

    Returns
    -------
    n_built : int
    """
    programs = synth.programs_to_build(vectors, settings)
    if not programs:
        return 0
    bar = Progress(len(programs), f"{desc}: building programs", unit="programs", log=log,
                   enabled=log is not None, interval=interval)
    tasks = [Task(key=i, func=_build_program, args=(p, settings)) for i, p in enumerate(programs)]
    try:
        for _ in run_tasks(synth, tasks, jobs=max(1, int(jobs)), in_process=int(jobs) <= 1):
            bar.update(1)
    finally:
        bar.close()
    return len(programs)


def _build_program(ctx: WorkerContext | LocalContext, program: Any, settings: RenderSettings) -> None:
    """Task function of :func:`build_programs`."""
    ctx.synth.build_program(program, settings)


def _bar(total: int, enabled: bool, desc: str) -> Progress | None:
    return Progress(total, desc) if enabled else None


# ----------------------------------------------------------------------------- the pool


@dataclass
class Task:
    """One unit of work: ``func(ctx, *args)`` called in a worker.

    ``func`` is a module-level function (sent by reference; a worker imports its module).
    A ``"module:function"`` string is accepted too.
    """

    key: Any
    func: Callable[..., Any] | str
    args: tuple = ()


@dataclass
class TaskFailure:
    """Why a task did not finish: ``kind`` is "error", "crash" or "timeout"."""

    key: Any
    kind: str
    message: str
    patch_index: int | None = None
    traceback: str = ""


@dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Connection
    task: Task | None = None
    patch: int | None = None
    since: float = 0.0
    renders: int = 0  # renders finished by this worker (the first one builds the engine)
    in_render: bool = False


class WorkerPool:
    """Worker processes that each hold one synth instance (and so one engine).

    Parameters
    ----------
    synth : Synth
        Pickled once and sent to every worker.
    jobs : int
        Number of worker processes.
    timeout : float or None, default=None
        Seconds one render may take before its worker is killed and its task
        failed (the first render of a worker gets :data:`STARTUP_ALLOWANCE` more).
    """

    def __init__(self, synth: Synth, jobs: int, *, timeout: float | None = None) -> None:
        try:
            self._blob = pickle.dumps(synth)
        except Exception as e:
            raise RenderError(f"synth {synth.name!r} cannot be sent to worker processes: {e}") from None
        self.jobs = max(1, int(jobs))
        self.timeout = timeout
        self._workers: list[_Worker] = []
        self._closed = False

    @property
    def key(self) -> str:
        return hashlib.sha256(self._blob).hexdigest()

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[_PARENT_ENV] = str(os.getpid())
        proc = subprocess.Popen(
            [sys.executable, "-m", "synth_probe.render", "--worker", str(child.fileno())],
            pass_fds=(child.fileno(),), env=env, start_new_session=False,
        )
        child.close()
        conn = Connection(parent.detach())
        conn.send(("synth", self._blob))
        return _Worker(proc, conn)

    def _kill(self, w: _Worker) -> int | None:
        try:
            w.proc.kill()
        except OSError:  # pragma: no cover - already gone
            pass
        try:
            rc = w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            rc = None
        try:
            w.conn.close()
        except OSError:  # pragma: no cover
            pass
        if w in self._workers:
            self._workers.remove(w)
        return rc

    def run(
        self,
        tasks: Iterable[Task],
        *,
        on_done: Callable[[int], None] | None = None,
        on_start: Callable[[Task], None] | None = None,
        jobs: int | None = None,
    ) -> Iterable[tuple[Any, Any]]:
        """Run ``tasks`` on at most ``jobs`` workers (default: the pool's size).

        Yields ``(key, result or TaskFailure)`` as each task finishes;
        ``on_done(i)`` is called after every finished render (``ctx.done(i)``).
        """
        if self._closed:
            raise RenderError("this worker pool is closed")
        limit = self.jobs if jobs is None else max(1, int(jobs))
        if limit > self.jobs:
            self.jobs = limit
        pending = list(tasks)
        pending.reverse()
        busy = 0
        while pending or busy:
            # hand out work (an idle worker that died meanwhile is replaced, never handed a task)
            for w in [w for w in self._workers if w.task is None and w.proc.poll() is not None]:
                self._kill(w)
            for w in self._workers:
                if w.task is None and pending and busy < limit:
                    self._assign(w, pending.pop(), on_start)
                    busy += 1
            while pending and busy < limit and len(self._workers) < self.jobs:
                w = self._spawn()
                self._workers.append(w)
                self._assign(w, pending.pop(), on_start)
                busy += 1
            active = [w for w in self._workers if w.task is not None]
            ready = wait([w.conn for w in active], timeout=0.25)
            now = time.monotonic()
            for w in active:
                if w.conn in ready:
                    out = self._drain(w, on_done)
                    if out is not None:
                        busy -= 1
                        yield out
                elif self.timeout is not None and w.in_render:
                    limit = self.timeout + (STARTUP_ALLOWANCE if w.renders == 0 else 0.0)
                    if now - w.since > limit:
                        task, patch = w.task, w.patch
                        self._kill(w)
                        busy -= 1
                        yield task.key, TaskFailure(
                            task.key, "timeout",
                            f"render of patch {patch} took longer than the per-render timeout of "
                            f"{self.timeout:g} s; its worker was stopped", patch,
                        )

    def _assign(self, w: _Worker, task: Task, on_start) -> None:
        w.task, w.patch, w.since = task, None, time.monotonic()
        if on_start is not None:
            on_start(task)
        try:
            w.conn.send(("call", task.func, task.args))
        except OSError:
            pass  # the worker died; the next poll reads EOF and reports it

    def _drain(self, w: _Worker, on_done) -> tuple[Any, Any] | None:
        """Read what a worker sent; return the task's outcome when it ended."""
        while True:
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                task, patch = w.task, w.patch
                rc = self._kill(w)
                if rc is not None and rc < 0:
                    try:
                        how = f"signal {signal.Signals(-rc).name}"
                    except ValueError:  # pragma: no cover
                        how = f"signal {-rc}"
                else:
                    how = f"exit status {rc}"
                where = f"while rendering patch {patch}" if patch is not None else "before its first render"
                return task.key, TaskFailure(task.key, "crash", f"worker process died ({how}) {where}", patch)
            kind = msg[0]
            if kind == "start":
                w.patch, w.since, w.in_render = msg[1], time.monotonic(), True
            elif kind == "done":
                w.renders += 1
                w.since, w.in_render = time.monotonic(), False
                if on_done is not None:
                    on_done(msg[1])
            elif kind == "ok":
                task = w.task
                w.task, w.patch, w.in_render = None, None, False
                return task.key, msg[1]
            elif kind == "error":
                task = w.task
                patch = msg[3] if msg[3] is not None else w.patch
                w.task, w.patch, w.in_render = None, None, False
                return task.key, TaskFailure(task.key, "error", msg[1], patch, msg[2])
            if not w.conn.poll():
                return None

    def close(self, grace: float = 2.0) -> None:
        """Stop every worker (idle ones are asked, busy ones killed after ``grace`` s). Safe to call twice."""
        self._closed = True
        for w in list(self._workers):
            try:
                w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for w in list(self._workers):
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._kill(w)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_POOLS: dict[tuple[str, int], WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(synth: Synth, jobs: int, *, timeout: float | None = None) -> WorkerPool:
    """A pool for ``synth`` kept for reuse in this process (engines stay built between calls).

    One pool per synth (and calling thread); it grows to the largest ``jobs``
    asked for, and :meth:`WorkerPool.run` uses at most ``jobs`` of its workers.
    """
    pool = WorkerPool(synth, jobs, timeout=timeout)
    key = (pool.key, threading.get_ident())
    with _POOLS_LOCK:
        old = _POOLS.get(key)
        if old is not None and not old._closed:
            old.timeout = timeout
            old.jobs = max(old.jobs, pool.jobs)
            return old
        _POOLS[key] = pool
    return pool


def discard_pool(pool: WorkerPool) -> None:
    """Stop ``pool``'s workers (even mid-task) and forget it, e.g. after an interruption."""
    with _POOLS_LOCK:
        for k in [k for k, v in _POOLS.items() if v is pool]:
            del _POOLS[k]
    pool.close(grace=0.0)


def close_pools() -> None:
    """Stop the workers of every pool :func:`get_pool` made."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for p in pools:
        p.close()


atexit.register(close_pools)


# ----------------------------------------------------------------------------- the worker side


class WorkerContext:
    """What a task function gets in a worker: the synth, progress reporting and re-creation."""

    def __init__(self, conn: Connection, blob: bytes) -> None:
        self._conn = conn
        self._blob = blob
        self.synth: Synth = pickle.loads(blob)
        self.current: int | None = None

    def start(self, i: int) -> None:
        """Announce that patch ``i`` is being rendered (the parent times it)."""
        self.current = int(i)
        self._conn.send(("start", int(i)))

    def done(self, i: int) -> None:
        """Announce that patch ``i`` is finished."""
        self._conn.send(("done", int(i)))

    def recreate(self) -> None:
        """Drop the synth instance and its engine and load a fresh one."""
        try:
            self.synth.close()
        except Exception:  # pragma: no cover - a broken instance may fail to close
            pass
        self.synth = pickle.loads(self._blob)


class LocalContext:
    """The in-process stand-in for :class:`WorkerContext`, for running a task function here (jobs=1)."""

    def __init__(self, synth: Synth, on_done: Callable[[int], None] | None = None) -> None:
        self.synth = synth
        self._on_done = on_done

    def start(self, i: int) -> None:
        pass

    def done(self, i: int) -> None:
        if self._on_done is not None:
            self._on_done(int(i))

    def recreate(self) -> None:
        pass


def _resolve(func: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(func):
        return func
    mod, _, name = func.partition(":")
    return getattr(importlib.import_module(mod), name)


_PARENT_ENV = "SYNTH_PROBE_POOL_PARENT"


def _exit_with_parent(interval: float = 0.2) -> None:
    """End this worker at once when the process that started it is gone (even by ``kill -9``).

    Without this an orphaned worker would finish its task (a whole shard) after the
    run was killed, and write into a folder whose run lock is already released. Its
    temporary files never count and are cleaned up by the next run.
    """
    parent = int(os.environ.get(_PARENT_ENV, "0") or 0)
    if parent <= 0:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(3)

    threading.Thread(target=watch, name="synth-probe-parent-watch", daemon=True).start()


def worker_main(fd: int) -> int:
    """Serve tasks over the socket ``fd`` until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    conn = Connection(fd)
    ctx: WorkerContext | None = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return 0
        if msg is None:
            return 0
        try:
            if msg[0] == "synth":
                ctx = WorkerContext(conn, msg[1])
                continue
            _, func, args = msg
            ctx.current = None
            result = _resolve(func)(ctx, *args)
            conn.send(("ok", result))
        except (BrokenPipeError, ConnectionResetError):
            return 0
        except BaseException as e:  # noqa: BLE001 - reported to the parent with its traceback
            try:
                conn.send(("error", f"{type(e).__name__}: {e}", traceback.format_exc(),
                           getattr(e, "patch_index", ctx.current if ctx else None)))
            except OSError:
                return 0


if __name__ == "__main__":  # pragma: no cover - entry point of worker processes
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(int(sys.argv[2])))
    print("usage: python -m synth_probe.render --worker FD (started by WorkerPool)", file=sys.stderr)
    sys.exit(2)
