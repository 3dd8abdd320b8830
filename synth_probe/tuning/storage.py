"""Study storage: journal files and database URLs, secrets kept out of messages, the journal heartbeat.

Storage is a journal file (safe for several processes on one host) by default, or any
SQLAlchemy URL (PostgreSQL/MySQL for several machines). RDB storages get Optuna's
heartbeat (``heartbeat_interval``, ``grace_period``, a
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`). Optuna's JournalStorage has
no heartbeat, so for journal files :class:`JournalHeartbeat` does the same with a file
per running trial: a trial whose worker died (same host: its process is gone; any host:
its heartbeat file is older than the grace period) is marked failed and retried once.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from synth_probe import util
from synth_probe.errors import StorageError

__all__ = ["mask_url", "scrub_secrets", "open_storage", "retry_callback", "is_journal", "JournalHeartbeat",
           "file_lock", "UNPARSABLE_URL"]


#: query keys of a storage URL whose values are masked: any key holding one of these (password, passwd, pwd,
#: sslpassword, secret, client_secret, token, api_key, sslkey, auth...)
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)
#: what stands for a URL that does not parse (it is never echoed: it may hold a password anywhere)
UNPARSABLE_URL = "<the --storage URL, not shown: it does not parse as a database URL>"


def _parse_url(url: str) -> Any:
    """SQLAlchemy's parse of ``url``, or None when it does not parse."""
    try:
        return make_url(str(url))
    except Exception:  # ArgumentError, ValueError (a bad port)...
        return None


def mask_url(url: str) -> str:
    """``url`` with its password and every secret query value replaced by ``***``.

    The URL is read by SQLAlchemy's parser, so a password holding ``/`` or ``@``
    (``postgresql://user:sec/ret@host/db``) is found whole, and query parameters
    naming a secret (``?password=``, ``sslpassword=``, ``token=``, ``api_key=``...)
    are masked too. A URL that does not parse is not echoed at all.

    >>> mask_url("postgresql://user:secret@db.example.org:5432/optuna")
    'postgresql://user:***@db.example.org:5432/optuna'
    >>> mask_url("postgresql://db.example.org/optuna?user=u&password=secret")
    'postgresql://db.example.org/optuna?password=***&user=u'
    """
    u = _parse_url(url)
    if u is None:
        return UNPARSABLE_URL
    query = {k: (tuple("***" for _ in v) if isinstance(v, tuple) else "***") if _SECRET_KEY.search(k) else v
             for k, v in u.query.items()}
    text = u.set(query=query).render_as_string(hide_password=True)
    return text.replace("%2A%2A%2A", "***")


def _secrets_of(url: str) -> list[str]:
    """Every secret ``url`` holds (password, secret query values), as written and URL-decoded, longest first."""
    u = _parse_url(url)
    found: set[str] = set()
    if u is not None:
        values = [u.password] if u.password else []
        for k, v in u.query.items():
            if _SECRET_KEY.search(k):
                values += list(v) if isinstance(v, tuple) else [v]
        for v in values:
            found.update({str(v), quote(str(v), safe=""), quote_plus(str(v))})
    return sorted((x for x in found if x), key=len, reverse=True)


def scrub_secrets(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with every secret of ``url``, and the URL itself, masked."""
    out = str(text).replace(str(url), mask_url(url))
    for secret in _secrets_of(url):
        out = out.replace(secret, "***")
    return out

def open_storage(url: str | None, journal_path: str | os.PathLike, *, heartbeat_interval: int = 15,
                 grace_period: int = 60, max_retry: int = 1, connect_timeout: int = 10) -> Any:
    """Open the study storage, failing at once (with the password masked) if it cannot be reached.

    Parameters
    ----------
    url : str or None
        None: a JournalStorage file at ``journal_path``. ``journal:PATH`` or a
        path ending in ``.journal``/``.log``: a journal file there. Anything
        else: an SQLAlchemy URL for :class:`optuna.storages.RDBStorage`, with
        Optuna's heartbeat and a retry of failed trials.
    journal_path : path
    heartbeat_interval, grace_period : int
        Seconds (RDB storages; journal files get :class:`JournalHeartbeat`).
    max_retry : int
        Times a trial failed by the heartbeat is enqueued again.
    connect_timeout : int
        Seconds to wait for a database server (PostgreSQL/MySQL).

    Returns
    -------
    optuna.storages.BaseStorage

    Raises
    ------
    StorageError
        The storage cannot be opened; the message shows the URL with the password masked.
    """
    if url is None or url.startswith("journal:") or url.endswith((".journal", ".log")):
        path = Path(journal_path if url is None else url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise StorageError(f"cannot open the journal file {str(path)!r}: {e.strerror or e}") from None
    given = url
    if _parse_url(url) is None:
        raise StorageError(
            f"{UNPARSABLE_URL}; a database URL reads dialect[+driver]://user:password@host[:port]/database "
            "(e.g. postgresql://user:pass@host/db); a journal file is journal:PATH or a path ending in .journal; "
            "or leave out --storage to use a journal file under studies/"
        )
    url = _with_driver(url)
    masked = mask_url(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith(("postgresql", "postgres")):
        engine_kwargs = {"connect_args": {"connect_timeout": int(connect_timeout)}}
    elif url.startswith("mysql"):
        engine_kwargs = {"connect_args": {"connect_timeout": int(connect_timeout)}}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return RDBStorage(
                url, engine_kwargs=engine_kwargs or None,
                heartbeat_interval=int(heartbeat_interval), grace_period=int(grace_period),
                heartbeat_stale_trial_callback=retry_callback(max_retry),
            )
    except Exception as e:  # driver missing, refused, timed out, bad URL...
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        text = scrub_secrets(scrub_secrets(text, url), given)
        raise StorageError(
            f"cannot reach the study storage {masked} ({type(e).__name__}: {text}; after "
            f"{time.perf_counter() - t0:.1f} s). Check the URL, that the server runs and accepts connections, "
            "and that its driver is installed (psycopg2-binary for PostgreSQL); or leave out --storage to use "
            "a journal file under studies/"
        ) from None


def _with_driver(url: str) -> str:
    """A ``postgresql://`` URL with the installed driver named (SQLAlchemy 2.1 assumes psycopg 3)."""
    m = re.match(r"^(postgresql|postgres)://", url)
    if not m:
        return url
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect + url[len(m.group(1)):]
    return url


def retry_callback(max_retry: int = 1) -> Callable[[Any, Any], None]:
    """Optuna's callback that enqueues a failed trial again (at most ``max_retry`` times)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RetryHeartbeatStaleTrialCallback(max_retry=int(max_retry))


def is_journal(storage: Any) -> bool:
    """Whether ``storage`` is a journal file (which gets :class:`JournalHeartbeat`)."""
    return isinstance(storage, JournalStorage)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JournalHeartbeat:
    """Heartbeats of running trials for a journal-file study (Optuna 5's journal has none).

    While a trial runs, its worker touches ``<folder>/<trial number>.hb`` every
    ``interval`` seconds from a daemon thread, and the trial records its host and
    process id as user attributes. :meth:`fail_stale` marks a RUNNING trial
    FAIL when its worker ran on this host and its process is gone, or when its
    heartbeat file is older than ``grace_period`` (or missing that long after the
    trial started), then calls ``failed_trial_callback`` (a
    :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` by default) once.

    Parameters
    ----------
    folder : path
    interval, grace_period : float
        Seconds.
    failed_trial_callback : callable(study, FrozenTrial), optional
    """

    def __init__(self, folder: str | os.PathLike, interval: float = 15.0, grace_period: float = 60.0,
                 failed_trial_callback: Callable[[Any, Any], None] | None = None) -> None:
        self.folder = Path(folder)
        self.interval = float(interval)
        self.grace_period = float(grace_period)
        self.failed_trial_callback = failed_trial_callback
        self._stops: dict[int, threading.Event] = {}

    def _file(self, number: int) -> Path:
        return self.folder / f"{int(number)}.hb"

    @contextlib.contextmanager
    def beating(self, trial: Any) -> Iterator[None]:
        """Keep the heartbeat of ``trial`` (an ``optuna.Trial``) while the block runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        f = self._file(trial.number)
        # first: a retried trial arrives with the attributes of the trial that failed
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        f.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "trial_id": trial._trial_id}))
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.interval):
                with contextlib.suppress(OSError):
                    os.utime(f)

        th = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
        th.start()
        try:
            yield
        finally:
            stop.set()
            th.join(timeout=5)
            with contextlib.suppress(OSError):
                f.unlink()

    def stale_reason(self, trial: Any, now: float | None = None) -> str | None:
        """Why a RUNNING FrozenTrial counts as abandoned, or None when its worker looks alive."""
        now = time.time() if now is None else now
        worker = str(trial.user_attrs.get("worker", ""))
        host, _, pid = worker.rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
            return f"its worker (process {pid} on {host}) is gone"
        f = self._file(trial.number)
        try:
            age = now - f.stat().st_mtime
        except OSError:
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            age = now - start
            return (f"it has had no heartbeat file for {age:.0f} s (grace period {self.grace_period:.0f} s)"
                    if age > self.grace_period else None)
        if age > self.grace_period:
            return f"its heartbeat is {age:.0f} s old (grace period {self.grace_period:.0f} s)"
        return None

    def fail_stale(self, study: Any, skip: int | None = None) -> list[int]:
        """Mark abandoned RUNNING trials of ``study`` FAIL (and retry them); returns their numbers.

        ``skip`` is the caller's own trial.
        """
        failed = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number == skip:
                continue
            reason = self.stale_reason(t)
            if reason is None:
                continue
            storage = study._storage
            try:
                storage.set_trial_system_attr(t._trial_id, "fail_reason", f"heartbeat: {reason}")
                ok = storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except (RuntimeError, ValueError):  # another worker failed it first
                continue
            if not ok:
                continue
            failed.append(t.number)
            with contextlib.suppress(OSError):
                self._file(t.number).unlink()
            print(f"trial {t.number} marked failed: {reason}", file=sys.stderr)
            if self.failed_trial_callback is not None:
                self.failed_trial_callback(study, copy.deepcopy(storage.get_trial(t._trial_id)))
        return failed



def file_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive ``flock`` on ``path`` (created with its folder) while the block runs."""
    return util.file_lock(path, make_parent=True)

