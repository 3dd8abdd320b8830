from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from synth_probe.errors import RenderError
from synth_probe.render import Task, TaskFailure, WorkerPool, render_chunk, render_many, run_tasks
from synth_probe.sampling import make_plan
from synth_probe.synths.base import MAX_RENDER_SECONDS, RenderSettings

SETTINGS = RenderSettings(render_length=0.25, note_length=0.2, sample_rate=16000)


@pytest.fixture(scope="module")
def patches(noisemaker):
    return make_plan(noisemaker, "timbral").rows(11, 0, 8)


def test_parallel_equals_serial(noisemaker, patches):
    vec, seeds = patches
    serial = render_many(noisemaker, vec, SETTINGS, seeds)
    assert serial.shape == (8, SETTINGS.n_samples) and serial.dtype == np.float32
    assert np.isfinite(serial).all() and np.abs(serial).max() > 0
    parallel = render_many(noisemaker, vec, SETTINGS, seeds, jobs=2)
    # workers may load the engine from the Faust bitcode cache, which rounds differently in the 7th digit
    np.testing.assert_allclose(serial, parallel, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(parallel, render_many(noisemaker, vec[::-1], SETTINGS, seeds[::-1], jobs=2)[::-1])
    with pytest.raises(RenderError, match="seeds"):
        render_many(noisemaker, vec, SETTINGS, seeds[:3], jobs=2)


def test_killed_worker_fails_only_its_task(noisemaker, patches):
    vec, seeds = patches
    with WorkerPool(noisemaker, 1) as pool:
        tasks = [Task(k, render_chunk, (vec[a:a + 4], SETTINGS, seeds[a:a + 4], a))
                 for k, a in enumerate((0, 4))]
        killed = []

        def kill_once(i):
            if not killed:
                killed.append(i)
                os.kill(pool._workers[0].proc.pid, signal.SIGKILL)

        results = dict(pool.run(tasks, on_done=kill_once))
        assert isinstance(results[0], TaskFailure) and results[0].kind == "crash"
        assert "SIGKILL" in results[0].message
        assert results[0].patch_index in range(0, 4)
        assert f"patch {results[0].patch_index}" in results[0].message
        # a fresh worker took the other task and the pool goes on
        np.testing.assert_allclose(results[1], render_many(noisemaker, vec[4:], SETTINGS, seeds[4:]), atol=1e-5)


def test_per_render_timeout(noisemaker, patches):
    vec, seeds = patches
    with WorkerPool(noisemaker, 1, timeout=60) as pool:
        first = dict(pool.run([Task(0, render_chunk, (vec[:1], SETTINGS, seeds[:1], 0))]))
        assert not isinstance(first[0], TaskFailure)
        # two renders of the longest length at the highest rate (2 x 23 M samples) take seconds; the pool
        # checks its clock whenever a quarter second passes without a message from the worker, so 0.3 s is
        # overrun for sure
        pool.timeout = 0.3
        long = RenderSettings(note_length=0.1, render_length=MAX_RENDER_SECONDS, sample_rate=192000)
        out = dict(pool.run([Task(1, render_chunk, (vec[1:3], long, seeds[1:3], 1))]))
        assert isinstance(out[1], TaskFailure) and out[1].kind == "timeout"
        assert out[1].patch_index == 1 and "timeout" in out[1].message


def test_run_tasks_failure_policies(noisemaker, patches):
    """One runner, two policies: "collect" yields a failed task beside the others, "raise" raises the first."""
    vec, seeds = patches
    bad = np.full_like(vec[:2], np.nan)  # not unit values: the render raises in the worker
    tasks = [Task("good", render_chunk, (vec[:2], SETTINGS, seeds[:2], 0)),
             Task("bad", render_chunk, (bad, SETTINGS, seeds[:2], 2))]
    got = dict(run_tasks(noisemaker, tasks, jobs=1, on_failure="collect"))
    assert isinstance(got["bad"], TaskFailure) and got["bad"].kind == "error" and got["bad"].patch_index == 2
    np.testing.assert_allclose(got["good"], render_many(noisemaker, vec[:2], SETTINGS, seeds[:2]), atol=1e-5)
    with pytest.raises(RenderError, match="patch 2 of the test"):
        list(run_tasks(noisemaker, tasks[::-1], jobs=1, error=lambda f: RenderError(f"patch {f.patch_index} of the test")))
    with pytest.raises(ValueError, match="on_failure"):
        list(run_tasks(noisemaker, tasks, on_failure="ignore"))
    # in process, the task's own exception comes through unchanged
    with pytest.raises(ValueError, match="NaN"):
        list(run_tasks(noisemaker, tasks[1:], in_process=True))


def test_run_tasks_reruns_a_crashed_task(noisemaker, patches):
    """retry_crashed=1: a task whose worker was killed runs again on a fresh worker and its result comes back."""
    from synth_probe.render import get_pool

    # the 8 patches 100 times over (about a second of renders): a loaded machine can leave the parent asleep
    # for a few short renders, and a task that ends before the kill lands does not crash
    vec, seeds = np.tile(patches[0], (100, 1)), np.tile(patches[1], 100)
    pool = get_pool(noisemaker, 1)  # the pool run_tasks uses (it may hold idle workers of earlier tests)
    seen = []

    def kill_once(i):
        seen.append(i)
        if len(seen) == 1:
            busy = [w for w in pool._workers if w.task is not None]
            os.kill(busy[0].proc.pid, signal.SIGKILL)

    # all 800 renders in one task: the kill after the first render lands long before the task's last one
    tasks = [Task(0, render_chunk, (vec, SETTINGS, seeds, 0))]
    got = dict(run_tasks(noisemaker, tasks, jobs=1, retry_crashed=1, on_done=kill_once))
    assert seen.count(0) == 2 and not isinstance(got[0], TaskFailure)  # patch 0 rendered again by the rerun
    np.testing.assert_allclose(got[0], render_many(noisemaker, vec, SETTINGS, seeds), atol=1e-5)
    seen.clear()
    got = dict(run_tasks(noisemaker, tasks, jobs=1, on_failure="collect", on_done=kill_once))
    assert isinstance(got[0], TaskFailure) and got[0].kind == "crash"


def test_an_idle_worker_that_died_is_replaced_not_handed_a_task(noisemaker, patches):
    """A pool worker killed while idle (between two runs) must not fail the next run's task."""
    from synth_probe.render import get_pool

    vec, seeds = patches
    pool = get_pool(noisemaker, 1)
    tasks = [Task(0, render_chunk, (vec[:2], SETTINGS, seeds[:2], 0))]
    dict(run_tasks(noisemaker, tasks, jobs=1))  # leaves one idle worker in the shared pool
    idle = [w for w in pool._workers if w.task is None]
    assert idle
    os.kill(idle[0].proc.pid, signal.SIGKILL)
    idle[0].proc.wait(timeout=10)
    got = dict(run_tasks(noisemaker, tasks, jobs=1, on_failure="collect"))
    assert not isinstance(got[0], TaskFailure), got[0]


def test_a_worker_ends_when_its_parent_is_killed(tmp_path):
    """kill -9 of the process that owns the pool: its busy worker ends too, instead of finishing its task."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = Path(__file__).parent
    marker = tmp_path / "started"
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from synth_probe.render import Task, run_tasks\n"
        "from synth_probe.synths.registry import get_synth\n"
        "list(run_tasks(get_synth('noisemaker'), [Task(0, 'faulty_synth:sleeping_task', (%r, 60.0))], jobs=1))\n"
    ) % (str(tests), str(marker))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tests.parent)
    deadline = time.time() + 120
    while not marker.exists() or not marker.read_text():
        assert proc.poll() is None and time.time() < deadline, "the task never started"
        time.sleep(0.02)
    worker = int(marker.read_text())
    proc.kill()
    proc.wait()
    gone_by = time.time() + 5
    while Path(f"/proc/{worker}").exists():
        stat = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if stat == "Z":
            break
        assert time.time() < gone_by, "the orphaned worker went on with its task"
        time.sleep(0.05)
