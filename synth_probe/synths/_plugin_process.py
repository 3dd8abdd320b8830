"""The plugin's process: a :class:`~synth_probe.synths._plugin_worker.PluginHost` in a child or here.

:class:`_ChildHost` runs the host in a persistent child process
(``python -m synth_probe.synths._plugin_worker``) and restarts it after it dies;
:class:`_LocalHost` runs it in this process. Both answer ``call(method, *args)``.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from synth_probe.errors import PluginError

XVFB_HINT = "DISPLAY is not set: if the plugin needs an X display, run under `xvfb-run -a synth-probe ...`"


def _describe_death(rc: int | None, log_tail: list[str], doing: str, path: str) -> str:
    if rc is None:
        how = "stopped answering"
    elif rc < 0:
        try:
            how = f"was killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            how = f"was killed by signal {-rc}"
    else:
        how = f"exited with status {rc}"
    msg = f"plugin {path!r} {how} while {doing}; synth-probe itself is unharmed"
    if log_tail:
        msg += ". Last output of the plugin process:\n    " + "\n    ".join(log_tail)
    text = " ".join(log_tail).lower()
    loading = doing in ("loading", "reading its parameters")
    if not os.environ.get("DISPLAY") and ("x server" in text or "display" in text or loading):
        msg += "\nHint: " + XVFB_HINT
    msg += "\nThe plugin process is restarted on the next call. `synth-probe doctor PATH` diagnoses load problems."
    return msg


class _ChildHost:
    """A :class:`PluginHost` in a child process, restarted after it dies."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = float(timeout)
        self.proc: subprocess.Popen | None = None
        self.conn: Any = None
        self.log_path: str | None = None
        self._finalizer: weakref.finalize | None = None
        self._pid = os.getpid()

    def _start(self) -> None:
        from multiprocessing.connection import Connection

        parent_sock, child_sock = socket.socketpair()
        fd, self.log_path = tempfile.mkstemp(prefix="synth_probe_plugin_", suffix=".log")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "synth_probe.synths._plugin_worker", str(child_sock.fileno()), self.path],
                stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                pass_fds=(child_sock.fileno(),), env=env, close_fds=True,
            )
        finally:
            os.close(fd)
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _kill, self.proc, self.conn, self.log_path, self._pid)

    def _tail(self, n: int = 8) -> list[str]:
        if not self.log_path:
            return []
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if ln.strip()][-n:]

    def call(self, method: str, *args: Any, doing: str = "rendering", timeout: float | None = None) -> Any:
        if os.getpid() != self._pid:
            # a forked copy: the child process and its socket belong to the parent; start our own
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer, self.proc, self.conn, self._pid = None, None, None, os.getpid()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        timeout = self.timeout if timeout is None else timeout
        try:
            self.conn.send((method, args))
            deadline = time.monotonic() + timeout
            while not self.conn.poll(0.5):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    break
            if self.conn.poll(0):
                reply = self.conn.recv()
            else:
                reply = None
        except (EOFError, OSError, BrokenPipeError):
            reply = None
        if reply is None:
            rc = None
            try:
                rc = self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            tail = self._tail()
            if rc is None:
                tail.append(f"(no answer after {timeout:.0f} s; the process was killed)")
            self.close()
            raise PluginError(_describe_death(rc, tail, doing, self.path))
        if reply[0] == "err":
            raise PluginError(f"plugin {self.path!r}: {reply[2]} (while {doing})")
        return reply[1]

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self.proc = None
        self.conn = None


def _kill(proc: subprocess.Popen, conn: Any, log_path: str | None, owner: int) -> None:
    if os.getpid() != owner:  # a forked copy never touches its parent's child process
        return
    try:
        if proc.poll() is None:
            try:
                conn.send(("close", ()))
                if conn.poll(2.0):
                    conn.recv()
            except (OSError, EOFError, ValueError):
                pass
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        try:
            conn.close()
        except OSError:
            pass
        if log_path:
            try:
                os.unlink(log_path)
            except OSError:
                pass


class _LocalHost:
    """A :class:`PluginHost` in this process (``isolate=False``)."""

    def __init__(self, path: str) -> None:
        from synth_probe.synths._plugin_worker import PluginHost

        self.host = PluginHost(path)
        self.path = path
        self._pid = os.getpid()

    def call(self, method: str, *args: Any, doing: str = "rendering", timeout: float | None = None) -> Any:
        if os.getpid() != self._pid:  # engines are built in the process that uses them
            self.host.engine = self.host.proc = None
            self._pid = os.getpid()
        try:
            return getattr(self.host, method)(*args)
        except RuntimeError as e:
            raise PluginError(f"plugin {self.path!r}: {e} (while {doing})") from None

    def close(self) -> None:
        self.host.close()
