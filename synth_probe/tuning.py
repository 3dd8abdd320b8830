"""Per-parameter hyperparameter search with Optuna: one study per (synth, parameter).

The search space is *model family* (``gbm``, ``knn``, ``cnn``, ``autoencoder``,
``transformer``) × that family's hyperparameters × feature settings (log-mel
bands and hop, the time pooling of the log-mel statistics, and which feature
subset a tabular model sees: handcrafted descriptors, log-mel statistics or
both). The objective is the parameter's metric on a **fixed validation split**
— R² for a continuous parameter, balanced accuracy for a discrete one — and a
third, **test** split that no trial sees measures the refit best configuration
against the untuned default model and :class:`~synth_probe.models.MeanBaseline`.

Layout of a study folder (``studies/<synth>/<param>/``)::

    study.journal        Optuna JournalStorage file (default storage; git-ignored)
    heartbeats/          one file per running trial, touched by its worker (journal storage)
    best_model/          the best configuration refit on train + validation (models.io format)
    summary.json         what the last report showed (scores, gains, best configuration)
    refit.lock           serializes the refit when several workers finish together

Features are cached per feature setting in ``studies/<synth>/_features/<dataset>/``
(full log-mel spectrograms per ``(n_mels, hop)``, handcrafted descriptors), so
trials — and workers, and studies of other parameters on the same dataset — never
compute them twice; the time-pooled statistics are pooled from the cached
spectrograms exactly as :class:`~synth_probe.features.LogMelSpectrogram` pools them.

Pruning: torch models report after every epoch, LightGBM every few boosting
rounds (through the estimators' fit hooks), the *skill* on their internal
early-stopping split (``1 − MSE/variance`` for continuous targets, ``1 −
cross-entropy/prior entropy`` for discrete ones), at a step measured in percent
of the trial's budget (epochs or rounds), so families with different budgets
share one axis. The default pruner, :class:`FamilyMedianPruner`, compares a
trial only with finished trials of its own family (an epoch of a CNN and a
boosting round are not comparable); ``pruner="hyperband"`` uses Optuna's
:class:`~optuna.pruners.HyperbandPruner` on the same percent axis.

The first trial of a new study is the untuned default configuration (the
first searched family with its constructor defaults and default features, the
same configuration :func:`reference_scores` measures), so the search starts
from the default and its best validation score is never below the default's.

Storage: a journal file (safe for several processes on one host) by default, or
any SQLAlchemy URL (PostgreSQL/MySQL for several machines). RDB storages get
Optuna's heartbeat (``heartbeat_interval``, ``grace_period``, a
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`). Optuna 5's JournalStorage
has no heartbeat, so for journal files :class:`JournalHeartbeat` does the same
with a file per running trial: a trial whose worker died (same host: its process
is gone; any host: its heartbeat file is older than the grace period) is marked
failed and retried once.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import numpy as np
import optuna
import pandas as pd
from sqlalchemy.engine import make_url

from synth_probe.fileio import read_json
from synth_probe.errors import (
    DatasetError,
    ParameterValueError,
    StorageError,
    UnknownModelError,
    UnknownParameterError,
    format_number,
)
from synth_probe.util import atomic_text, atomic_write, file_lock

__all__ = [
    "FAMILIES",
    "FamilyMedianPruner",
    "JournalHeartbeat",
    "TuneConfig",
    "TuneContext",
    "FeatureStore",
    "mask_url",
    "scrub_secrets",
    "open_storage",
    "parse_families",
    "check_audible",
    "study_dir",
    "run_tuning",
    "refit_best",
    "write_tune_report",
]

#: model families searched, in the order of the family choice
FAMILIES: tuple[str, ...] = ("gbm", "knn", "cnn", "autoencoder", "transformer")
FAMILY_ALIASES = {"autoencoder_mlp": "autoencoder", "ae": "autoencoder", "ast": "transformer",
                  "lightgbm": "gbm", "lgbm": "gbm", "nn": "knn"}
TORCH_FAMILIES = frozenset({"cnn", "autoencoder", "transformer"})
#: feature subsets a tabular family (gbm, knn) may see
TABULAR_FEATURES = ("handcrafted", "logmel_stats", "combined")
N_FFT = 1024


# =========================================================================== small helpers
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


def parse_families(exclude: str | Sequence[str] | None = None,
                   only: str | Sequence[str] | None = None) -> list[str]:
    """Families to search: :data:`FAMILIES` (or ``only``) minus ``exclude``.

    Names may be given as comma-separated strings; ``autoencoder_mlp`` and ``ast``
    are accepted for ``autoencoder`` and ``transformer``.

    Raises
    ------
    UnknownModelError
        A name that is not a family (with the closest one).
    ParameterValueError
        When nothing is left to search.
    """
    def names(v: str | Sequence[str] | None) -> list[str]:
        if v is None:
            return []
        items = v.split(",") if isinstance(v, str) else list(v)
        out = []
        for raw in items:
            n = raw.strip().lower()
            if not n:
                continue
            n = FAMILY_ALIASES.get(n, n)
            if n not in FAMILIES:
                raise UnknownModelError(raw.strip(), list(FAMILIES) + ["autoencoder_mlp"])
            out.append(n)
        return out

    chosen = names(only) or list(FAMILIES)
    drop = set(names(exclude))
    left = [f for f in FAMILIES if f in chosen and f not in drop]
    if not left:
        raise ParameterValueError(f"no model family left to search (families {chosen}, excluded {sorted(drop)}); "
                                  f"families: {', '.join(FAMILIES)}")
    return left


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "synth"


def synth_label(synth: Any, name: str) -> str:
    """Folder-safe name of a synth: its registry name, or the stem of a plugin path."""
    label = getattr(synth, "name", None) or name
    if os.sep in str(label) or str(label).endswith((".so", ".vst3", ".dll", ".dylib")):
        label = Path(str(label)).stem
    return _safe_name(str(label))


def study_dir(studies_root: str | os.PathLike, synth: str, param: str) -> Path:
    """``<studies_root>/<synth>/<param>/``, the folder of one study."""
    return Path(studies_root) / _safe_name(synth) / _safe_name(param)


def check_audible(param: str, sensitivity_json: str | os.PathLike, synth: str,
                  force: bool = False) -> dict[str, Any] | None:
    """The sensitivity study's entry for ``param``; refuse an inaudible one unless ``force``.

    Parameters
    ----------
    param : str
    sensitivity_json : path
        ``reports/sensitivity.json``; a missing file means no check.
    synth : str
        Only an entry of this synth counts.
    force : bool
        Run anyway (a warning is printed).

    Returns
    -------
    dict or None
        ``{"classification", "score", "rank", ...}``, or None when unknown.

    Raises
    ------
    ParameterValueError
        The parameter is classed inaudible and ``force`` is False.
    """
    p = Path(sensitivity_json)
    if not p.is_file():
        return None
    try:
        data = read_json(p, error=ParameterValueError, what="sensitivity results")
    except ParameterValueError as e:  # the check is advisory: an unreadable file does not stop tuning
        print(f"warning: {e}; the audibility check is skipped", file=sys.stderr)
        return None
    s = data.get("synth") or {}
    s_name = s.get("synth") or s.get("name") if isinstance(s, dict) else s
    if s_name and synth and _safe_name(str(s_name)) != _safe_name(synth):
        return None
    entries = data.get("params") if isinstance(data.get("params"), list) else []
    entry = next((e for e in entries if isinstance(e, dict) and e.get("name") == param), None)
    if entry is None:
        return None
    cls = entry.get("classification")
    info = {k: entry.get(k) for k in ("classification", "score", "ci_low", "ci_high", "rank")}
    if cls == "inaudible":
        msg = (f"the sensitivity study ({p}) classes {param!r} as inaudible (score {format_number(entry.get('score'))} "
               f"dB, interval [{format_number(entry.get('ci_low'))}, {format_number(entry.get('ci_high'))}]): moving "
               "it does not change the sound measurably, so no model can beat chance")
        if not force:
            raise ParameterValueError(msg + "; pass --force to tune it anyway")
        print(f"warning: {msg}; tuning anyway (--force)", file=sys.stderr)
    return info


# =========================================================================== storage
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
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalStorage

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
    import importlib.util

    m = re.match(r"^(postgresql|postgres)://", url)
    if not m:
        return url
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect + url[len(m.group(1)):]
    return url


def retry_callback(max_retry: int = 1) -> Callable[[Any, Any], None]:
    """Optuna's callback that enqueues a failed trial again (at most ``max_retry`` times)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RetryHeartbeatStaleTrialCallback(max_retry=int(max_retry))


def _is_journal(storage: Any) -> bool:
    from optuna.storages.journal import JournalStorage

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
        from optuna.trial import TrialState

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


# =========================================================================== pruning
class FamilyMedianPruner(optuna.pruners.BasePruner):
    """Median pruning among trials of the same model family.

    At each reported step, a trial is pruned when its best intermediate value so
    far is below the median of the best values that finished trials *of the
    same family* had reached by the same step (their last report at or before
    it, so families with different report steps still compare).

    Parameters
    ----------
    n_startup_trials : int, default=3
        Finished trials of a family needed before any trial of it is pruned.
    n_warmup_steps : int, default=10
        Steps (percent of the budget) before which no trial is pruned.
    family_key : str, default="family"
        The trial parameter that names the family.
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 10, family_key: str = "family") -> None:
        self.n_startup_trials = int(n_startup_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self.family_key = family_key

    @staticmethod
    def _best_until(values: Mapping[int, float], step: int) -> float | None:
        vals = [v for s, v in values.items() if s <= step and v is not None and math.isfinite(v)]
        return max(vals) if vals else None

    def prune(self, study: Any, trial: Any) -> bool:
        from optuna.trial import TrialState

        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        family = trial.params.get(self.family_key)
        mine = self._best_until(trial.intermediate_values, step)
        if mine is None:
            return False
        others = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.params.get(self.family_key) == family and t.number != trial.number
        ]
        if sum(t.state == TrialState.COMPLETE for t in others) < self.n_startup_trials:
            return False
        refs = [v for v in (self._best_until(t.intermediate_values, step) for t in others) if v is not None]
        if len(refs) < self.n_startup_trials:
            return False
        return mine < float(np.median(refs))


def make_pruner(name: str) -> Any:
    """``"median"`` (:class:`FamilyMedianPruner`), ``"hyperband"`` or ``"none"``."""

    name = (name or "median").lower()
    if name == "median":
        return FamilyMedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=5, max_resource=100, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ParameterValueError(f"unknown pruner {name!r}; choose median, hyperband or none")


# =========================================================================== data and features
@dataclass
class TuneConfig:
    """Everything a tuning run needs (the CLI's options).

    Attributes
    ----------
    synth : str
        Synth name or plugin path.
    param : str
    data : str
        Dataset folder.
    trials : int or None
        Trials this process runs (None: until ``timeout``).
    timeout : float or None
        Seconds this process optimizes.
    jobs : int
        Worker processes on this host.
    storage : str or None
        None: a journal file in the study folder; else ``journal:PATH`` or an SQLAlchemy URL.
    study : str or None
        Study name (default ``"<synth>-<param>"``).
    families : list of str
    pruner : {"median", "hyperband", "none"}
    studies_root, out : str
        Folder of study folders, and of the HTML reports.
    seed : int
        Seeds the splits, every model (``random_state``) and the samplers.
    val_fraction, test_fraction : float
        Fixed split of the dataset rows.
    max_epochs : int
        Epoch budget of a torch trial.
    max_rounds : int
        Boosting-round budget of a LightGBM trial.
    limit : int or None
        Use only the first ``limit`` rows of the dataset.
    heartbeat_interval, grace_period : int
    """

    synth: str
    param: str
    data: str
    trials: int | None = 20
    timeout: float | None = None
    jobs: int = 1
    storage: str | None = None
    study: str | None = None
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    pruner: str = "median"
    studies_root: str = "studies"
    out: str = "reports"
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.15
    max_epochs: int = 30
    max_rounds: int = 600
    limit: int | None = None
    heartbeat_interval: int = 15
    grace_period: int = 60
    report: bool = True


def split_rows(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Fixed, seeded train/validation/test split of ``n`` rows (sorted positions)."""
    if not (0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 0.9):
        raise ParameterValueError(f"need 0 < val_fraction, 0 <= test_fraction, sum < 0.9; got "
                                  f"{val_fraction}, {test_fraction}")
    perm = np.random.default_rng([int(seed), 7]).permutation(n)
    n_val = max(2, int(round(val_fraction * n)))
    n_test = int(round(test_fraction * n))
    if n - n_val - n_test < 4:
        raise ParameterValueError(f"{n} rows are too few for a train/validation/test split")
    return {"val": np.sort(perm[:n_val]), "test": np.sort(perm[n_val:n_val + n_test]),
            "train": np.sort(perm[n_val + n_test:])}


def _pooled(S: np.ndarray, n_mels: int, pool: int) -> np.ndarray:
    from synth_probe.features.spectrogram import _pool_time

    frames = S.reshape(len(S), n_mels, -1)
    return _pool_time(frames, int(pool)).reshape(len(S), -1)


class FeatureStore:
    """Features of every dataset row, cached on disk per feature setting.

    Parameters
    ----------
    dataset : Dataset
        From :func:`synth_probe.dataset.load_dataset`.
    cache_dir : path
        ``studies/<synth>/_features/<dataset id>/``.
    n_rows : int
        Rows used (the first ``n_rows`` of the dataset).
    """

    def __init__(self, dataset: Any, cache_dir: str | os.PathLike, n_rows: int) -> None:
        self.ds = dataset
        self.dir = Path(cache_dir)
        self.n = int(n_rows)
        self.sr = int(dataset.settings.sample_rate)
        self.note_length = float(dataset.settings.note_length)
        self._mem: dict[str, np.ndarray] = {}
        self.seconds_computing = 0.0

    # -- transformers (also the feature steps of the saved pipeline)
    def handcrafted(self) -> Any:
        from synth_probe.features import HandcraftedFeatures

        return HandcraftedFeatures(sample_rate=self.sr, note_length=self.note_length, n_fft=N_FFT, hop_length=256)

    def logmel(self, n_mels: int, hop: int, pool: int | None = None) -> Any:
        from synth_probe.features import LogMelSpectrogram

        return LogMelSpectrogram(sample_rate=self.sr, n_fft=N_FFT, hop_length=int(hop), n_mels=int(n_mels),
                                 time_pool=None if pool is None else int(pool))

    def _compute(self, key: str, transformer: Any) -> np.ndarray:
        from synth_probe.features import DESCRIPTORS_VERSION

        # the handcrafted file names the descriptor version, so a new descriptor set is never served old columns
        name = f"{key}-v{DESCRIPTORS_VERSION}" if key == "hand" else key
        path = self.dir / f"{name}-n{self.n}.npy"
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError):  # a torn file from a killed writer: recompute
                pass
        t0 = time.perf_counter()
        audio0 = self.ds.audio[0:2]
        tr = transformer.fit(audio0)
        parts = []
        for a in range(0, self.n, 250):
            parts.append(tr.transform(self.ds.audio[a:min(a + 250, self.n)]).astype(np.float32))
        X = np.concatenate(parts)
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.save(f, X), digest=False)
        self.seconds_computing += time.perf_counter() - t0
        return X

    def get(self, key: str) -> np.ndarray:
        """Features ``(n_rows, n_features)`` float32 of a key: ``hand`` or ``mel-<n_mels>-<hop>``."""
        if key not in self._mem:
            if key == "hand":
                X = self._compute(key, self.handcrafted())
            else:
                _, m, h = key.split("-")
                X = self._compute(key, self.logmel(int(m), int(h)))
            if len(self._mem) >= 4:
                self._mem.pop(next(iter(self._mem)))
            self._mem[key] = X
        return self._mem[key]

    def matrix(self, fs: Mapping[str, Any]) -> np.ndarray:
        """The feature matrix of a feature setting (see :func:`suggest_features`)."""
        kind = fs["kind"]
        if kind == "mel":
            return self.get(f"mel-{fs['n_mels']}-{fs['hop']}")
        parts = []
        if kind in ("handcrafted", "combined"):
            parts.append(self.get("hand"))
        if kind in ("logmel_stats", "combined"):
            S = self.get(f"mel-{fs['n_mels']}-{fs['hop']}")
            parts.append(_pooled(S, int(fs["n_mels"]), int(fs["pool"])))
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def pipeline_steps(self, fs: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Fitted feature steps that turn audio rows into :meth:`matrix`'s columns."""
        from sklearn.pipeline import FeatureUnion

        a = self.ds.audio[0:2]
        kind = fs["kind"]
        if kind == "mel":
            return [("features", self.logmel(fs["n_mels"], fs["hop"]).fit(a))]
        if kind == "handcrafted":
            return [("features", self.handcrafted().fit(a))]
        stats = self.logmel(fs["n_mels"], fs["hop"], fs["pool"]).fit(a)
        if kind == "logmel_stats":
            return [("features", stats)]
        return [("features", FeatureUnion([("handcrafted", self.handcrafted().fit(a)), ("logmel", stats)]).fit(a))]

    def mel_shape(self, fs: Mapping[str, Any]) -> tuple[int, int]:
        n_samples = int(self.ds.settings.n_samples)
        return int(fs["n_mels"]), 1 + max(n_samples, N_FFT) // int(fs["hop"])


# =========================================================================== search space
def suggest_features(trial: Any, family: str) -> dict[str, Any]:
    """Feature setting of a trial: ``{"kind", "n_mels", "hop", "pool"}`` (some keys per kind)."""
    if family in TORCH_FAMILIES:
        return {"kind": "mel", "n_mels": trial.suggest_categorical("mel_n_mels", [32, 64]),
                "hop": trial.suggest_categorical("mel_hop", [256, 512])}
    kind = trial.suggest_categorical(f"{family}.features", list(TABULAR_FEATURES))
    fs: dict[str, Any] = {"kind": kind}
    if kind != "handcrafted":
        fs["n_mels"] = trial.suggest_categorical("stats_n_mels", [32, 64, 128])
        fs["hop"] = trial.suggest_categorical("stats_hop", [256, 512])
        fs["pool"] = trial.suggest_categorical("stats_pool", [4, 8, 16])
    return fs


_CHANNELS = {"small": (8, 16, 32), "medium": (16, 32, 64), "large": (16, 32, 64, 128)}
_HIDDEN = {"128": (128,), "256": (256,), "256-128": (256, 128)}
_PATCH = {"8x8": (8, 8), "16x4": (16, 4), "4x16": (4, 16)}


def suggest_model(trial: Any, family: str, max_epochs: int, max_rounds: int) -> dict[str, Any]:
    """Constructor parameters of the family's estimator for this trial."""
    s = trial
    if family == "gbm":
        return dict(
            n_estimators=int(max_rounds),
            learning_rate=s.suggest_float("gbm.learning_rate", 0.01, 0.3, log=True),
            num_leaves=s.suggest_int("gbm.num_leaves", 7, 127, log=True),
            min_child_samples=s.suggest_int("gbm.min_child_samples", 5, 80, log=True),
            subsample=s.suggest_float("gbm.subsample", 0.5, 1.0),
            colsample_bytree=s.suggest_float("gbm.colsample_bytree", 0.2, 1.0),
        )
    if family == "knn":
        return dict(
            n_neighbors=s.suggest_int("knn.n_neighbors", 1, 40, log=True),
            weights=s.suggest_categorical("knn.weights", ["uniform", "distance"]),
            metric=s.suggest_categorical("knn.metric", ["euclidean", "manhattan", "cosine"]),
        )
    common = dict(
        lr=s.suggest_float(f"{family}.lr", 1e-4, 3e-3, log=True),
        weight_decay=s.suggest_float(f"{family}.weight_decay", 1e-6, 1e-1, log=True),
        batch_size=s.suggest_categorical(f"{family}.batch_size", [32, 64]),
        dropout=s.suggest_float(f"{family}.dropout", 0.0, 0.4),
        max_epochs=int(max_epochs),
        patience=max(2, int(max_epochs) // 5),
    )
    if family == "cnn":
        return dict(common,
                    channels=_CHANNELS[s.suggest_categorical("cnn.channels", list(_CHANNELS))],
                    depth=s.suggest_int("cnn.depth", 1, 2),
                    residual=s.suggest_categorical("cnn.residual", [False, True]),
                    hidden=s.suggest_categorical("cnn.hidden", [0, 64, 256]))
    if family == "autoencoder":
        return dict(common,
                    channels=_CHANNELS[s.suggest_categorical("autoencoder.channels", ["small", "medium"])],
                    latent_dim=s.suggest_categorical("autoencoder.latent_dim", [32, 64, 128]),
                    hidden=_HIDDEN[s.suggest_categorical("autoencoder.hidden", list(_HIDDEN))],
                    pretrain_epochs=max(1, int(max_epochs) // 2),
                    freeze_encoder=s.suggest_categorical("autoencoder.freeze_encoder", [False, True]))
    if family == "transformer":
        return dict(common,
                    patch_size=_PATCH[s.suggest_categorical("transformer.patch", list(_PATCH))],
                    d_model=s.suggest_categorical("transformer.d_model", [32, 64, 96]),
                    n_layers=s.suggest_int("transformer.n_layers", 1, 3),
                    n_heads=s.suggest_categorical("transformer.n_heads", [2, 4]),
                    dim_feedforward=s.suggest_categorical("transformer.dim_feedforward", [64, 128, 256]))
    raise UnknownModelError(family, list(FAMILIES))


class _Fixed:
    """Replays a trial's ``params`` through the ``suggest_*`` calls (for the refit)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def _get(self, name: str, *a: Any, **k: Any) -> Any:
        return self.params[name]

    suggest_float = suggest_int = suggest_categorical = _get


# =========================================================================== the tuning context
class TuneContext:
    """The dataset, split, targets and feature cache shared by the trials of one process.

    Parameters
    ----------
    config : TuneConfig
    synth : Synth
        The loaded synth (only its specs are read).
    verify : bool, default=True
        Check every shard of the dataset against its sha256 (a corrupted dataset is refused, as
        ``train`` and ``evaluate`` refuse it); the worker processes of a run skip it, because the
        run verified the same files before starting them.
    """

    def __init__(self, config: TuneConfig, synth: Any, *, verify: bool = True) -> None:
        from synth_probe.dataset import load_dataset

        self.config = config
        self.spec = synth.spec(config.param)  # UnknownParameterError with the closest names
        self.synth_name = synth_label(synth, config.synth)
        self.ds = load_dataset(config.data, verify=verify)
        ds_synth = str(self.ds.meta.get("synth", {}).get("synth", ""))
        if ds_synth and _safe_name(Path(ds_synth).stem if os.sep in ds_synth else ds_synth) != self.synth_name:
            raise DatasetError(f"dataset {config.data} was rendered with synth {ds_synth!r}, not {config.synth!r}")
        if config.param not in self.ds.params.columns:
            raise UnknownParameterError(config.param, list(self.ds.params.columns), synth=f"dataset {config.data}")
        n = len(self.ds) if config.limit is None else min(len(self.ds), int(config.limit))
        y = self.ds.params[config.param].to_numpy()[:n]
        if np.unique(y).size < 2:
            raise DatasetError(f"{config.param!r} does not vary in dataset {config.data} (held at {y[0]:.3f}); "
                               "generate a dataset whose sampler varies it (e.g. --sampler all)")
        self.n = n
        self.kind = self.spec.kind
        self.split = split_rows(n, config.val_fraction, config.test_fraction, config.seed)
        self.Y = self.ds.params[[config.param]].iloc[:n].reset_index(drop=True)
        builtin = not any(ch in config.synth for ch in "/\\.")
        if builtin:
            self.target_kw: dict[str, Any] = {"synth": config.synth}
        elif self.spec.is_discrete:
            self.target_kw = {"discrete": {config.param: list(self.spec.choice_values)}}
        else:
            self.target_kw = {}
        ident = str(self.ds.meta.get("identity_sha256", ""))[:16]
        self.dataset_id = f"{ident}-{n}"
        root = Path(config.studies_root)
        self.dir = study_dir(root, self.synth_name, config.param)
        self.features = FeatureStore(self.ds, root / self.synth_name / "_features" / ident, n)
        self.threads = max(1, (os.cpu_count() or 1) // max(1, int(config.jobs)))
        self.metric = "balanced_accuracy" if self.spec.is_discrete else "r2"
        yt = y[self.split["train"]]
        if self.spec.is_discrete:
            from synth_probe.models.base import ParamTargets

            t = ParamTargets(**self.target_kw).fit(self.Y.iloc[self.split["train"]])
            cls = t.transform(self.Y.iloc[self.split["train"]])[1][:, 0]
            p = np.bincount(cls) / len(cls)
            p = p[p > 0]
            self.skill_scale = float(-(p * np.log(p)).sum()) or 1.0
        else:
            self.skill_scale = float(np.var(yt)) or 1.0

    # -- fingerprint stored with the study: trials compare only on the same rows
    def fingerprint(self) -> dict[str, Any]:
        from synth_probe.features import DESCRIPTORS_VERSION

        c = self.config
        return {"dataset": self.dataset_id, "data": str(c.data), "param": c.param, "seed": int(c.seed),
                "val_fraction": float(c.val_fraction), "test_fraction": float(c.test_fraction),
                "n_train": int(len(self.split["train"])), "n_val": int(len(self.split["val"])),
                "n_test": int(len(self.split["test"])), "metric": self.metric,
                "descriptors": DESCRIPTORS_VERSION}

    # -- models
    def estimator(self, family: str, params: Mapping[str, Any], fs: Mapping[str, Any]) -> Any:
        from synth_probe.models import model_class

        cls = model_class(family)
        names = set(cls().get_params(deep=False))
        kw = dict(params)
        kw.update(self.target_kw)
        if "random_state" in names:
            kw["random_state"] = int(self.config.seed)
        if "n_jobs" in names:
            kw["n_jobs"] = self.threads
        if "num_threads" in names:
            kw["num_threads"] = self.threads
        if "device" in names:
            kw["device"] = "cpu"
        if family in TORCH_FAMILIES:
            kw["input_shape"] = self.features.mel_shape(fs)
        return cls(**kw)

    def score(self, rows: np.ndarray, pred: Any) -> dict[str, float]:
        """Metrics of predictions for dataset rows ``rows``: the objective and MAE/accuracy, MPR."""
        from synth_probe.metrics import parameter_report

        truth = self.Y.iloc[rows].reset_index(drop=True)
        pred = pd.DataFrame(np.asarray(pred).reshape(len(rows), -1), columns=[self.config.param])
        rep = parameter_report(truth, pred, **self.target_kw).iloc[0]
        out = {"score": float(rep[self.metric]), "mpr": float(rep["mpr"])}
        out["mae" if self.kind == "continuous" else "accuracy"] = float(
            rep["mae"] if self.kind == "continuous" else rep["accuracy"])
        if not math.isfinite(out["score"]):
            out["score"] = -1.0 if self.kind == "continuous" else 0.0
        return out

    def fit_eval(self, family: str, params: Mapping[str, Any], fs: Mapping[str, Any], fit_rows: np.ndarray,
                 eval_rows: np.ndarray, reporter: Callable[[int, float], None] | None = None
                 ) -> tuple[Any, dict[str, float], float]:
        """Fit on ``fit_rows``, score on ``eval_rows``; returns ``(estimator, metrics, fit seconds)``."""
        X = self.features.matrix(fs)
        est = self.estimator(family, params, fs)
        if reporter is not None:
            self._attach(est, family, params, reporter)
        t0 = time.perf_counter()
        try:
            est.fit(X[fit_rows], self.Y.iloc[fit_rows].reset_index(drop=True))
        finally:
            est.__dict__.pop("_on_epoch", None)
            est.__dict__.pop("_round_callbacks", None)
        seconds = time.perf_counter() - t0
        pred = est.predict(X[eval_rows])
        return est, self.score(eval_rows, pred), seconds

    def _attach(self, est: Any, family: str, params: Mapping[str, Any], reporter: Callable[[int, float], None]
                ) -> None:
        scale = self.skill_scale
        if family in TORCH_FAMILIES:
            budget = int(params["max_epochs"])

            def on_epoch(rec: dict[str, Any]) -> None:
                loss = rec.get("valid_loss")
                loss = rec["train_loss"] if loss is None else loss
                # continuous: z-scored MSE, i.e. MSE/variance; discrete: cross-entropy vs the prior's entropy
                skill = 1.0 - (loss if self.kind == "continuous" else loss / scale)
                reporter(max(1, round(100 * rec["epoch"] / budget)), float(skill))

            est._on_epoch = on_epoch
        elif family == "gbm":
            budget = int(params["n_estimators"])
            every = max(1, budget // 30)

            def on_round(env: Any) -> None:
                it = env.iteration + 1
                if it % every and it != budget:
                    return
                if not env.evaluation_result_list:
                    return
                _, metric, value, _ = env.evaluation_result_list[0][:4]
                # l2 / variance (continuous) or log-loss / prior entropy (discrete)
                skill = 1.0 - value / scale
                reporter(max(1, round(100 * it / budget)), float(skill))

            est._round_callbacks = (on_round,)


# =========================================================================== objective
#: the features ``synth-probe train`` gives a family, as trial parameters
_DEFAULT_FEATURES = {"tabular": {"features": "combined", "stats_n_mels": 64, "stats_hop": 256, "stats_pool": 8},
                     "mel": {"mel_n_mels": 64, "mel_hop": 256}}
#: the searched hyperparameters whose constructor default is a point of the search space, per family
_DEFAULT_KNOBS = {
    "gbm": ("learning_rate", "num_leaves", "min_child_samples", "subsample", "colsample_bytree"),
    "knn": ("n_neighbors", "weights", "metric"),
    "cnn": ("lr", "weight_decay", "batch_size", "dropout", "channels", "depth", "residual", "hidden"),
}


def default_trial_params(family: str) -> dict[str, Any] | None:
    """The untuned default configuration of ``family`` as trial parameters, or None if the space lacks it.

    The family's constructor defaults (read from the estimator class, so they cannot drift) and the
    features ``synth-probe train`` gives it; None for the autoencoder and the transformer, whose
    defaults are not points of the search space.
    """
    from synth_probe.models import model_class

    if family not in _DEFAULT_KNOBS:
        return None
    defaults = model_class(family)().get_params(deep=False)
    out: dict[str, Any] = {"family": family}
    if family in TORCH_FAMILIES:
        out.update(_DEFAULT_FEATURES["mel"])
    else:
        tab = dict(_DEFAULT_FEATURES["tabular"])
        out[f"{family}.features"] = tab.pop("features")
        out.update(tab)
    for k in _DEFAULT_KNOBS[family]:
        v = defaults[k]
        if k == "channels":  # searched by name
            v = next(name for name, ch in _CHANNELS.items() if tuple(ch) == tuple(v))
        out[f"{family}.{k}"] = v
    return out


def enqueue_default(study: Any, families: Sequence[str]) -> bool:
    """Queue the untuned default configuration as the next trial of a study that has none yet.

    Returns
    -------
    queued : bool
        False when the study already has trials or the first family has no
        default configuration in the search space (autoencoder, transformer).
    """
    params = default_trial_params(list(families)[0])
    if study.trials or params is None:
        return False
    study.enqueue_trial(params, user_attrs={"untuned_default": True}, skip_if_exists=True)
    return True


def _trial_spec(trial: Any, families: Sequence[str], cfg: TuneConfig) -> tuple[str, dict, dict]:
    family = trial.suggest_categorical("family", list(families))
    fs = suggest_features(trial, family)
    params = suggest_model(trial, family, cfg.max_epochs, cfg.max_rounds)
    return family, params, fs


class Objective:
    """The objective of one worker: build the trial's model, fit on train, score on validation."""

    def __init__(self, ctx: TuneContext, heartbeat: JournalHeartbeat | None) -> None:
        self.ctx = ctx
        self.heartbeat = heartbeat

    def __call__(self, trial: Any) -> float:
        ctx = self.ctx
        beat = self.heartbeat.beating(trial) if self.heartbeat is not None else contextlib.nullcontext()
        with beat:
            if self.heartbeat is not None:
                self.heartbeat.fail_stale(trial.study, skip=trial.number)
            family, params, fs = _trial_spec(trial, ctx.config.families, ctx.config)
            last = {"step": -1}

            def reporter(step: int, value: float) -> None:
                if step <= last["step"] or not math.isfinite(value):
                    return
                last["step"] = step
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at {step} % of its budget (skill {value:.3f})")

            t0 = time.perf_counter()
            _, metrics, seconds = ctx.fit_eval(family, params, fs, ctx.split["train"], ctx.split["val"], reporter)
            trial.set_user_attr("fit_seconds", round(seconds, 3))
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
            for k, v in metrics.items():
                if k != "score":
                    trial.set_user_attr(k, v)
            return metrics["score"]


def _sampler(seed: int, n_existing: int) -> Any:

    # sampler state is not stored: each worker gets its own seed (from --seed, its pid and the study size)
    s = int.from_bytes(hashlib.sha256(f"{seed}:{os.getpid()}:{n_existing}".encode()).digest()[:4], "little")
    return optuna.samplers.TPESampler(seed=s, n_startup_trials=8, multivariate=True, group=True,
                                      constant_liar=True)


def _load_study(cfg: TuneConfig, ctx: TuneContext, storage: Any, n_hint: int = 0) -> Any:

    name = cfg.study or f"{ctx.synth_name}-{cfg.param}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    load_if_exists=True, pruner=make_pruner(cfg.pruner),
                                    sampler=_sampler(cfg.seed, n_hint))
    fp = ctx.fingerprint()
    old = study.user_attrs.get("fingerprint")
    if old is None:
        study.set_user_attr("fingerprint", fp)
        study.set_user_attr("synth", ctx.synth_name)
        study.set_user_attr("param", cfg.param)
        study.set_user_attr("kind", ctx.kind)
    elif old != fp:
        diffs = [f"{k}: study {old.get(k)!r}, now {fp.get(k)!r}" for k in fp if old.get(k) != fp.get(k)]
        raise ParameterValueError(
            f"study {name!r} was run on other rows, another split or other handcrafted descriptors "
            f"({'; '.join(diffs)}); its scores would not compare. Use the same --data/--seed, or another --study "
            "name (a study from before a descriptor change cannot be continued)")
    return study


def _worker(cfg_dict: dict[str, Any], n_trials: int | None, worker: int) -> int:
    """One optimizing process (also used in-process for ``jobs=1``); returns trials it finished."""

    from synth_probe.synths.registry import get_synth

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = TuneConfig(**cfg_dict)
    synth = get_synth(cfg.synth)
    try:
        ctx = TuneContext(cfg, synth, verify=False)  # run_tuning verified the dataset before starting workers
    finally:
        with contextlib.suppress(Exception):
            synth.close()
    storage = open_storage(cfg.storage, ctx.dir / "study.journal", heartbeat_interval=cfg.heartbeat_interval,
                           grace_period=cfg.grace_period)
    study = _load_study(cfg, ctx, storage, n_hint=worker)
    hb = None
    if _is_journal(storage):
        hb = JournalHeartbeat(ctx.dir / "heartbeats", cfg.heartbeat_interval, cfg.grace_period,
                              retry_callback(max_retry=1))
        hb.fail_stale(study)
    done = {"n": 0}

    def progress(study: Any, t: Any) -> None:
        done["n"] += 1
        v = "—" if t.value is None else f"{t.value:.4f}"
        try:
            best = f"{study.best_value:.4f}"
        except ValueError:
            best = "—"
        print(f"[worker {worker}] trial {t.number} {t.state.name.lower():8s} {t.params.get('family', '?'):12s} "
              f"value {v}  best {best}", file=sys.stderr, flush=True)

    study.optimize(Objective(ctx, hb), n_trials=n_trials, timeout=cfg.timeout, callbacks=[progress],
                   catch=(FloatingPointError,), gc_after_trial=True)
    return done["n"]


# =========================================================================== reference models, refit
def reference_scores(ctx: TuneContext, study: Any) -> dict[str, Any]:
    """Scores of the untuned default model and MeanBaseline (validation and test), cached in the study.

    The untuned default is the first searched family with its constructor defaults
    and the features ``synth-probe train`` gives it (``combined`` for gbm/knn:
    handcrafted + 64-band log-mel pooled into 8 segments; the 64-band log-mel
    spectrogram for torch models), with the study's budget (epochs, boosting
    rounds) — the configuration :func:`enqueue_default` makes the first trial.
    """
    key = "reference"
    ref = study.user_attrs.get(key)
    if ref is not None and ref.get("fingerprint") == ctx.fingerprint():
        return ref
    cfg = ctx.config
    family = cfg.families[0]
    default = default_trial_params(family)
    if default is not None:  # exactly the first trial's model (enqueue_default)
        family, params, fs = _trial_spec(_Fixed(default), [family], cfg)
    else:  # autoencoder, transformer: constructor defaults with the study's epoch budget
        mel = _DEFAULT_FEATURES["mel"]
        fs = {"kind": "mel", "n_mels": mel["mel_n_mels"], "hop": mel["mel_hop"]}
        params = {"max_epochs": int(cfg.max_epochs)}
    tr, va, te = ctx.split["train"], ctx.split["val"], ctx.split["test"]
    trva = np.sort(np.concatenate([tr, va]))
    _, m_val, s_val = ctx.fit_eval(family, params, fs, tr, va)
    _, m_test, _ = ctx.fit_eval(family, params, fs, trva, te) if len(te) else (None, {"score": float("nan")}, 0)
    from synth_probe.models import MeanBaseline

    def mean_score(fit_rows: np.ndarray, rows: np.ndarray) -> float:
        if not len(rows):
            return float("nan")
        m = MeanBaseline(**ctx.target_kw).fit(np.zeros((len(fit_rows), 1)),
                                               ctx.Y.iloc[fit_rows].reset_index(drop=True))
        return ctx.score(rows, m.predict(np.zeros((len(rows), 1))))["score"]

    ref = {
        "fingerprint": ctx.fingerprint(),
        "default": {"family": family, "features": fs, "params": params, "val": m_val["score"],
                    "test": m_test["score"], "fit_seconds": round(s_val, 3)},
        "mean": {"val": mean_score(tr, va), "test": mean_score(trva, te)},
    }
    ref = json.loads(json.dumps(ref, default=float))
    study.set_user_attr(key, ref)
    return ref


def refit_best(ctx: TuneContext, study: Any) -> dict[str, Any] | None:
    """Refit the best trial's configuration on train + validation, score it on test, save it.

    Saved with :func:`synth_probe.models.io.save_model` as a Pipeline (feature
    steps + estimator) in ``<study folder>/best_model/``; skipped when that
    folder already holds the same trial's refit.

    Returns
    -------
    dict or None
        ``{"trial", "family", "params", "features", "val", "test", "path", ...}``; None without a finished trial.
    """
    from sklearn.pipeline import Pipeline

    from synth_probe.models.io import read_header, save_model

    try:
        best = study.best_trial
    except ValueError:
        return None
    out = ctx.dir / "best_model"
    with file_lock(ctx.dir / "refit.lock", make_parent=True):
        if (out / "model.json").is_file():
            meta = read_header(out).get("metadata", {})
            if meta.get("trial") == best.number and meta.get("fingerprint") == ctx.fingerprint():
                return meta.get("refit")
        family, params, fs = _trial_spec(_Fixed(best.params), ctx.config.families + [best.params["family"]],
                                         ctx.config)
        tr, va, te = ctx.split["train"], ctx.split["val"], ctx.split["test"]
        trva = np.sort(np.concatenate([tr, va]))
        est, m_test, seconds = ctx.fit_eval(family, params, fs, trva, te if len(te) else va)
        model = Pipeline(ctx.features.pipeline_steps(fs) + [("estimator", est)])
        info = {"trial": best.number, "family": family, "features": fs,
                "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
                "val": best.value, "test": m_test["score"] if len(te) else float("nan"),
                "test_metrics": m_test if len(te) else {}, "fit_seconds": round(seconds, 3),
                "n_fit": int(len(trva)), "path": str(out)}
        tmp = out.with_name(f".best_model.{os.getpid()}.tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        save_model(model, tmp, metadata={"trial": best.number, "fingerprint": ctx.fingerprint(),
                                         "study": study.study_name, "refit": info})
        if out.exists():
            import shutil

            old = out.with_name(f".best_model.old.{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        return info


# =========================================================================== report
def _importances(study: Any, family: str | None = None) -> tuple[dict[str, float], str]:
    """Hyperparameter importances (fANOVA) of completed trials, or an explanation of why there are none."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if family is None or t.params.get("family") == family]
    if len(trials) < 3:
        return {}, f"{len(trials)} completed trial(s); importances need at least 3"
    sub = optuna.create_study(direction="maximize")
    sub.add_trials(trials)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                sub, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as e:
        return {}, f"not estimable from these trials ({e})"
    if not imp:
        return {}, "no hyperparameter varies across these trials"
    return dict(imp), ""


def _history_svg(trials: list[Any], families: Sequence[str], ref: Mapping[str, Any] | None,
                 width: int = 760, height: int = 300) -> str:
    from synth_probe.report.html import esc

    pts = [(t.number, t.value, t.params.get("family", "?"), t.state.name) for t in trials
           if t.value is not None and math.isfinite(t.value)]
    pruned = [(t.number, max(t.intermediate_values.values()), t.params.get("family", "?")) for t in trials
              if t.state.name == "PRUNED" and t.intermediate_values]
    if not pts and not pruned:
        return "<p>No finished trial yet.</p>"
    lines = [v for v in ((ref or {}).get("default", {}).get("val"), (ref or {}).get("mean", {}).get("val"))
             if v is not None and math.isfinite(v)]
    ys = [p[1] for p in pts] + [p[1] for p in pruned] + lines
    lo, hi = min(ys), max(ys)
    lo = max(lo, hi - 2.0) if hi - lo > 2 else lo
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    xs = [p[0] for p in pts] + [p[0] for p in pruned]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    L, R, T, B = 56, 150, 12, 34
    pw, ph = width - L - R, height - T - B

    def X(v: float) -> float:
        return L + pw * (v - x0) / (x1 - x0)

    def Y(v: float) -> float:
        return T + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    color = {f: palette[i % len(palette)] for i, f in enumerate(families)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="optimization history">']
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" class="grid"/>'
                   f'<text x="{L - 4}" y="{Y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.2f}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{height - 4}" class="tick" text-anchor="middle">trial number</text>')
    for label, v, dash in (("untuned default", (ref or {}).get("default", {}).get("val"), "6,3"),
                           ("MeanBaseline", (ref or {}).get("mean", {}).get("val"), "2,3")):
        if v is not None and math.isfinite(v):
            out.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#555" '
                       f'stroke-dasharray="{dash}"/><text x="{L + pw + 4}" y="{Y(v) + 4:.1f}" class="tick">'
                       f'{esc(label)}</text>')
    best, path = -math.inf, []
    for n, v, _, _ in sorted(pts):
        if v > best:
            best = v
        path.append(f"{X(n):.1f},{Y(best):.1f}")
    if path:
        out.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="#222" stroke-width="1.5"/>')
    for n, v, fam, _ in pts:
        out.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{color.get(fam, "#999")}">'
                   f"<title>trial {n} ({esc(fam)}): {v:.4f}</title></circle>")
    for n, v, fam in pruned:
        out.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3.5" fill="none" stroke="{color.get(fam, "#999")}">'
                   f"<title>trial {n} ({esc(fam)}) pruned; best intermediate skill {v:.4f}</title></circle>")
    for i, f in enumerate(families):
        y = T + 14 * i + 40
        out.append(f'<circle cx="{L + pw + 10}" cy="{y}" r="4" fill="{color[f]}"/>'
                   f'<text x="{L + pw + 18}" y="{y + 4}" class="tick">{esc(f)}</text>')
    out.append(f'<text x="{L + pw + 4}" y="{T + 14}" class="tick">— best so far</text>')
    out.append("</svg>")
    return "".join(out)


def _trial_note(t: Any) -> str:
    notes = []
    if "failed_trial" in t.system_attrs:
        notes.append(f"retry of trial {t.system_attrs['failed_trial']}")
    if t.state.name == "FAIL":
        notes.append(t.system_attrs.get("fail_reason") or "raised an error")
    return "; ".join(notes)


def _fmt_params(params: Mapping[str, Any]) -> str:
    def short(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    return ", ".join(f"{k.split('.', 1)[-1]}={short(v)}" for k, v in params.items() if k != "family")


def summarize(study: Any, ctx: TuneContext, ref: Mapping[str, Any], refit: Mapping[str, Any] | None
              ) -> dict[str, Any]:
    """JSON-able summary of a study: best, per family, gains, counts."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name.lower()] = by_state.get(t.state.name.lower(), 0) + 1
    fams: dict[str, dict[str, Any]] = {}
    for t in trials:
        f = t.params.get("family")
        if f is None:
            continue
        d = fams.setdefault(f, {"family": f, "trials": 0, "complete": 0, "pruned": 0, "failed": 0,
                                "best": None, "best_trial": None, "seconds": 0.0})
        d["trials"] += 1
        d[{"COMPLETE": "complete", "PRUNED": "pruned"}.get(t.state.name, "failed")] += (
            1 if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) else 0)
        if t.datetime_complete and t.datetime_start:
            d["seconds"] += (t.datetime_complete - t.datetime_start).total_seconds()
        if t.state == TrialState.COMPLETE and t.value is not None and (d["best"] is None or t.value > d["best"]):
            d["best"], d["best_trial"] = t.value, t.number
    best_val = None
    with contextlib.suppress(ValueError):
        best_val = study.best_value
    dv, dt = ref["default"]["val"], ref["default"]["test"]
    mv, mt = ref["mean"]["val"], ref["mean"]["test"]
    tv = refit["test"] if refit else None

    def diff(a: Any, b: Any) -> float | None:
        return None if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) else float(a - b)

    return {
        "synth": ctx.synth_name, "param": ctx.config.param, "kind": ctx.kind, "metric": ctx.metric,
        "study": study.study_name, "fingerprint": ctx.fingerprint(), "states": by_state,
        "n_trials": len(trials), "families": sorted(fams.values(), key=lambda d: -(d["best"] or -1e9)),
        "best": {"val": best_val, "test": tv, "refit": refit},
        "default": ref["default"], "mean": ref["mean"],
        "gain_val": {"over_default": diff(best_val, dv), "over_mean": diff(best_val, mv)},
        "gain_test": {"over_default": diff(tv, dt), "over_mean": diff(tv, mt)},
        "beats_default": (tv is not None and dt is not None and math.isfinite(tv) and tv > dt),
    }


def write_tune_report(study: Any, ctx: TuneContext, summary: Mapping[str, Any], out: str | os.PathLike,
                      audibility: Mapping[str, Any] | None = None) -> Path:
    """Write ``<out>/tune_<param>.html`` (+ ``.json``) and update ``<out>/index.html``."""
    from synth_probe.report import write_index
    from synth_probe.report.html import Column, Section, bar_chart, esc, fmt_num, key_value_table, render_page, table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    param, metric = ctx.config.param, ctx.metric
    mname = "R²" if metric == "r2" else "balanced accuracy"
    trials = study.get_trials(deepcopy=False)
    fams_present = [f for f in FAMILIES if any(t.params.get("family") == f for t in trials)]
    s = summary
    best = s["best"]
    refit = best.get("refit") or {}
    verdict = ("beats" if s["beats_default"] else "does not beat") if best.get("test") is not None else "—"
    kv = [
        ("synth / parameter", f"{s['synth']} / {param} ({ctx.kind}; metric: {mname})"),
        ("study", f"{s['study']} — {s['n_trials']} trials ("
                  + ", ".join(f"{v} {k}" for k, v in sorted(s["states"].items())) + ")"),
        ("data", f"{ctx.config.data}: {ctx.n} rows — train {s['fingerprint']['n_train']}, "
                 f"validation {s['fingerprint']['n_val']} (the objective), test {s['fingerprint']['n_test']} "
                 "(only for the refit best, the default and MeanBaseline)"),
        (f"best validation {mname}", fmt_num(best.get("val"), 4)),
        (f"test {mname}: tuned (refit on train+validation)", fmt_num(best.get("test"), 4)),
        (f"test {mname}: untuned default ({s['default']['family']})", fmt_num(s["default"]["test"], 4)),
        (f"test {mname}: MeanBaseline", fmt_num(s["mean"]["test"], 4)),
        ("gain over the untuned default (test / validation)",
         f"{fmt_num(s['gain_test']['over_default'], 4, signed=True)} / "
         f"{fmt_num(s['gain_val']['over_default'], 4, signed=True)} — tuning {verdict} the default"),
        ("gain over MeanBaseline (test / validation)",
         f"{fmt_num(s['gain_test']['over_mean'], 4, signed=True)} / "
         f"{fmt_num(s['gain_val']['over_mean'], 4, signed=True)}"),
    ]
    if audibility:
        kv.append(("sensitivity study", f"{audibility.get('classification')} (score {fmt_num(audibility.get('score'))} "
                                        f"dB, rank {audibility.get('rank')})"))
    sections = [Section("summary", "Summary", key_value_table(kv, id="summary-table"))]

    ref = {"default": s["default"], "mean": s["mean"]}
    sections.append(Section("history", "Optimization history", _history_svg(trials, fams_present, ref)
                            + f"<p>Validation {esc(mname)} of each finished trial (filled), the best intermediate "
                              "skill of pruned trials (hollow), the best so far, and the untuned default and "
                              "MeanBaseline on the same validation rows.</p>"))

    if refit:
        rows = [("trial", refit.get("trial")), ("family", refit.get("family")),
                ("features", ", ".join(f"{k}={v}" for k, v in refit.get("features", {}).items()))]
        rows += [(k, v) for k, v in refit.get("params", {}).items()]
        rows += [("saved model", refit.get("path")), ("refit seconds", refit.get("fit_seconds"))]
        body = key_value_table(rows, id="best-config")
    else:
        body = "<p>No trial has finished yet.</p>"
    sections.append(Section("best", "Best configuration", body))

    fam_rows = [dict(d, best=d["best"]) for d in s["families"]]
    if fam_rows:
        chart = bar_chart([d["family"] for d in fam_rows], [max(d["best"] or 0.0, 0.0) for d in fam_rows],
                          scale="linear", unit=mname, id="family-chart", title=f"best validation {mname} per family",
                          reference=s["default"]["val"] if s["default"]["val"] and s["default"]["val"] > 0 else None,
                          reference_label="untuned default")
        cols = [Column("family", "Family"), Column("best", f"Best {mname}", fmt=lambda v: fmt_num(v, 4), numeric=True),
                Column("best_trial", "Trial", numeric=True), Column("trials", "Trials", numeric=True),
                Column("complete", "Complete", numeric=True), Column("pruned", "Pruned", numeric=True),
                Column("failed", "Failed", numeric=True),
                Column("seconds", "Seconds", fmt=lambda v: fmt_num(v, 0), numeric=True)]
        body = chart + table(cols, fam_rows, id="families")
    else:
        body = "<p>No trials yet.</p>"
    sections.append(Section("families", "Best score per family", body))

    imp_html = []
    for fam in [None] + fams_present:
        imp, why = _importances(study, fam)
        label = "all trials (parameters every trial has)" if fam is None else f"{fam} trials"
        if imp:
            names = list(imp)[:15]
            imp_html.append(bar_chart(names, [imp[n] for n in names], scale="linear", id=f"imp-{fam or 'all'}",
                                      title=f"importance — {label}", label_width=220))
        else:
            imp_html.append(f"<p><b>{esc(label)}</b>: {esc(why)}.</p>")
    sections.append(Section("importance", "Hyperparameter importances",
                            "<p>fANOVA importances (optuna.importance, seed 0) of the validation score, over "
                            "completed trials.</p>" + "".join(imp_html)))

    trows = []
    for t in trials:
        dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        trows.append({"number": t.number, "state": t.state.name.lower(), "family": t.params.get("family", ""),
                      "value": t.value, "pruned_at": t.last_step if t.state.name == "PRUNED" else None,
                      "seconds": dur, "worker": t.user_attrs.get("worker", ""),
                      "params": _fmt_params(t.params), "note": _trial_note(t)})
    cols = [Column("number", "#", numeric=True), Column("state", "State"), Column("family", "Family"),
            Column("value", f"Validation {mname}", fmt=lambda v: fmt_num(v, 4), numeric=True),
            Column("pruned_at", "Pruned at %", numeric=True),
            Column("seconds", "Seconds", fmt=lambda v: fmt_num(v, 1), numeric=True),
            Column("params", "Configuration"), Column("worker", "Worker"), Column("note", "Note")]
    sections.append(Section("trials", "All trials", table(cols, trows, id="trials")))
    page = render_page(f"Tuning: {param} ({s['synth']})", sections,
                       subtitle=f"Optuna study {s['study']} — {mname} on a fixed validation split",
                       generated=time.strftime("%Y-%m-%d %H:%M"))
    path = out / f"tune_{_safe_name(param)}.html"
    atomic_text(path, page)
    jpath = out / f"tune_{_safe_name(param)}.json"
    atomic_text(jpath, json.dumps(summary, indent=2, default=str))
    write_index(out)
    return path


# =========================================================================== the whole run
def run_tuning(cfg: TuneConfig, audibility: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Optimize (``cfg.jobs`` processes), then refit the best, write the report; returns the summary.

    Raises
    ------
    StorageError, DatasetError, UnknownParameterError, ParameterValueError
    """

    from synth_probe.synths.registry import get_synth

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    synth = get_synth(cfg.synth)
    try:
        ctx = TuneContext(cfg, synth)
    finally:
        with contextlib.suppress(Exception):
            synth.close()
    # open the storage and the study first: a bad URL or a mismatched study fails before any work
    storage = open_storage(cfg.storage, ctx.dir / "study.journal", heartbeat_interval=cfg.heartbeat_interval,
                           grace_period=cfg.grace_period)
    study = _load_study(cfg, ctx, storage)
    # two processes starting one study at once on this host queue the default once (on several machines
    # sharing a database, each may queue it: the same configuration is then evaluated twice, nothing worse)
    with file_lock(ctx.dir / "enqueue.lock", make_parent=True):
        enqueue_default(study, cfg.families)
    t0 = time.perf_counter()
    cfg_dict = asdict(cfg)
    jobs = max(1, int(cfg.jobs))
    if cfg.trials is None or cfg.trials > 0 or cfg.timeout:
        if jobs == 1:
            _worker(cfg_dict, cfg.trials, 0)
        else:
            import multiprocessing as mp

            shares = [None] * jobs if cfg.trials is None else [
                cfg.trials // jobs + (1 if i < cfg.trials % jobs else 0) for i in range(jobs)]
            mpctx = mp.get_context("spawn")
            with mpctx.Pool(jobs) as pool:
                results = [pool.apply_async(_worker, (cfg_dict, shares[i], i)) for i in range(jobs)
                           if shares[i] is None or shares[i] > 0]
                for r in results:
                    r.get()
    seconds = time.perf_counter() - t0
    study = _load_study(cfg, ctx, storage)
    if not cfg.report:
        return {"study": study.study_name, "n_trials": len(study.trials), "seconds_this_run": round(seconds, 1)}
    ref = reference_scores(ctx, study)
    refit = refit_best(ctx, study)
    summary = summarize(study, ctx, ref, refit)
    summary["seconds_this_run"] = round(seconds, 1)
    summary["audibility"] = dict(audibility) if audibility else None
    ctx.dir.mkdir(parents=True, exist_ok=True)
    (ctx.dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    summary["report"] = str(write_tune_report(study, ctx, summary, cfg.out, audibility))
    return summary
