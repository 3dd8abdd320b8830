"""Data integrity of dataset folders (issue #17 items 4-8 and 12, issue #16 item 4a).

Concurrent writers, damaged manifests, stale temporary files on dotted host names, verification by
every reader, refusing a foreign folder before touching it, a full disk while writing the manifest,
and text columns of a preset table kept as metadata. Tiny real datasets (16-40 renders of 0.25 s at
16 kHz) and real processes throughout.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_probe import load_dataset
from synth_probe.cli import main
from synth_probe.dataset import generate, read_patch_table
from synth_probe.errors import DatasetError, DatasetMismatchError, UnknownParameterError
from synth_probe.synths.base import RenderSettings

SETTINGS = RenderSettings(render_length=0.25, note_length=0.2, sample_rate=16000)
KW = dict(sampler="timbral", seed=5, settings=SETTINGS, shard_size=8)
ROOT = Path(__file__).resolve().parents[1]
CLI_SETTINGS = ["--sampler", "timbral", "--seed", "5", "--render-length", "0.25", "--note-length", "0.2",
                "--sample-rate", "16000", "--shard-size", "8", "--no-progress"]


def cli(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "synth_probe", "generate", "noisemaker", "--out", str(out), *CLI_SETTINGS, *args]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")


def one_error_line(err: str, command: str = "generate") -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(f"synth-probe {command}: error: "), err
    return lines[0]


def wait_for(cond, proc: subprocess.Popen | None = None, seconds: float = 240.0) -> None:
    deadline = time.time() + seconds
    while not cond():
        assert proc is None or proc.poll() is None, "the process ended before the condition held"
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def start_stopped(cmd: list[str], out: Path, log: Path) -> subprocess.Popen:
    """Start a real generate process, let it commit its first shard, then freeze it (it keeps its lock)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)
    wait_for(lambda: any((out / "shards").glob("shard-*.json")), proc)
    os.killpg(proc.pid, signal.SIGSTOP)
    return proc


def committed(out: Path) -> set[int]:
    return {int(p.name[6:11]) for p in (out / "shards").glob("shard-*.json")}


@pytest.fixture(scope="module")
def warm(noisemaker):
    noisemaker.render(render_length=0.05, note_length=0.05, sample_rate=SETTINGS.sample_rate)
    return noisemaker


@pytest.fixture(scope="module")
def base16(warm, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "ds"
    r = generate(warm, out, 16, **KW)
    assert r.ok and r.renders == 16
    return out


@pytest.fixture
def ds16(base16, tmp_path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(base16, out)
    return out


# ----------------------------------------------------------------------------- 4. concurrent writers


def test_second_writer_is_refused_then_waits_and_a_dead_holder_never_blocks(tmp_path, warm):
    out = tmp_path / "c"
    a = start_stopped(cli(out, "--n", "40"), out, tmp_path / "a.err")
    try:
        before = sorted(p.name for p in (out / "shards").iterdir())
        b = subprocess.run(cli(out, "--n", "24"), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240)
        assert b.returncode == 2
        line = one_error_line(b.stderr)
        assert f"pid {a.pid}" in line and socket.gethostname() in line and "--wait" in line
        assert sorted(p.name for p in (out / "shards").iterdir()) == before  # B touched nothing
        # with --wait, a third run queues behind A
        c_err = tmp_path / "c.err"
        c = subprocess.Popen(cli(out, "--n", "24", "--wait"), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                             stderr=open(c_err, "wb"), text=True)
        wait_for(lambda: "waiting" in c_err.read_text(), c)
        time.sleep(0.5)
        assert c.poll() is None
    finally:
        os.killpg(a.pid, signal.SIGKILL)  # A dies holding the lock: it must not block C
        a.wait()
    assert c.wait(timeout=240) == 0, c_err.read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 40 and manifest["complete"]  # C asked for 24 and never lowers A's n
    assert len(load_dataset(out)) == 40


def test_parts_run_together_and_a_manifest_write_never_lowers_n(tmp_path, warm):
    out = tmp_path / "p"
    a = start_stopped(cli(out, "--n", "24", "--shard", "0/2"), out, tmp_path / "a.err")  # shards 0, 2
    try:
        b = subprocess.run(cli(out, "--n", "40", "--shard", "1/2"), cwd=ROOT, env=env(), capture_output=True,
                           text=True, timeout=240)  # shards 1, 3
        assert b.returncode == 0, b.stderr
        assert json.loads((out / "manifest.json").read_text())["n"] == 40
    finally:
        os.killpg(a.pid, signal.SIGCONT)
    assert a.wait(timeout=240) == 0, (tmp_path / "a.err").read_text()  # A writes its manifest last
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 40
    assert {s["id"] for s in manifest["shards"]} == {0, 1, 2, 3} == committed(out)
    assert [m["id"] for m in manifest["missing_shards"]] == [4]
    r = generate(warm, out, 40, **KW)
    assert r.ok and r.renders == 8 and r.shards_reused == 4
    assert len(load_dataset(out)) == 40


# ----------------------------------------------------------------------------- 5. damaged manifests

DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:1000]),
    "empty": lambda p: p.write_bytes(b""),
    "deleted": lambda p: p.unlink(),
    "list": lambda p: p.write_text("[]"),
    "wrong_n": lambda p: p.write_text(json.dumps(dict(json.loads(p.read_text()), n="sixteen"))),
}


@pytest.mark.parametrize("form", sorted(DAMAGE))
def test_damaged_manifest_is_a_clear_error_and_a_rerun_rebuilds_it(ds16, warm, form):
    good = json.loads((ds16 / "manifest.json").read_text())
    DAMAGE[form](ds16 / "manifest.json")
    with pytest.raises(DatasetError, match="rerun the generate command") as e:
        load_dataset(ds16)
    if form != "deleted":
        assert "shard records" in str(e.value)
    r = generate(warm, ds16, 8, **KW)  # a smaller --n: the records' 16 rows stay
    assert r.ok and r.renders == 0 and r.n == 16
    assert "rebuilt" in r.summary()
    rebuilt = json.loads((ds16 / "manifest.json").read_text())
    assert {k: v for k, v in rebuilt.items() if k != "libraries"} == {k: v for k, v in good.items()
                                                                     if k != "libraries"}
    assert len(load_dataset(ds16)) == 16


def test_rebuild_verifies_checksums_and_refuses_other_settings(ds16, warm, base16):
    (ds16 / "manifest.json").write_text("[]")
    f = ds16 / "shards" / "shard-00001.audio.npy"
    data = bytearray(f.read_bytes())
    data[-50] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DatasetMismatchError, match="shard records.*other settings.*same settings"):
        generate(warm, ds16, 16, **dict(KW, seed=6))
    assert (ds16 / "manifest.json").read_text() == "[]"  # the refused run changed nothing
    r = generate(warm, ds16, 16, **KW)
    assert r.ok and r.renders == 8 and [x["id"] for x in r.repaired] == [1]
    np.testing.assert_array_equal(load_dataset(ds16).audio[:], load_dataset(base16).audio[:])


def test_damaged_manifest_through_the_cli(ds16, tmp_path):
    (ds16 / "manifest.json").write_text("[]")
    p = subprocess.run([sys.executable, "-m", "synth_probe", "train", "mean", "--data", str(ds16), "--out",
                        str(tmp_path / "m")], cwd=ROOT,
                       env=env(), capture_output=True, text=True, timeout=240)
    assert p.returncode == 2 and "rerun the generate command" in one_error_line(p.stderr, "train")
    p = subprocess.run(cli(ds16, "--n", "16"), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert len(load_dataset(ds16)) == 16


# ----------------------------------------------------------------------------- 6. stale temporary files


def test_stale_tmp_files_of_a_dotted_host_are_removed(ds16, warm, monkeypatch):
    host = "node07.cluster.example.org"
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    shards = ds16 / "shards"
    stale = [shards / f".shard-00001.audio.npy.{host}.{dead.pid}.tmp", shards / f".shard-00000.json.{host}.{dead.pid}.tmp",
             ds16 / f".manifest.json.{host}.{dead.pid}.tmp"]
    kept = [shards / f".shard-00001.rows.npy.{host}.{os.getpid()}.tmp",  # a live process
            shards / f".shard-00001.rows.npy.node08.cluster.example.org.{dead.pid}.tmp"]  # another host
    for p in stale + kept:
        p.write_bytes(b"x" * 1000)
    assert generate(warm, ds16, 16, **KW).ok
    assert [p.exists() for p in stale] == [False] * 3
    assert [p.exists() for p in kept] == [True] * 2


# ----------------------------------------------------------------------------- 7. every reader verifies


def test_tune_refuses_a_corrupted_dataset(ds16, tmp_path, capsys):
    f = ds16 / "shards" / "shard-00000.rows.npy"
    data = bytearray(f.read_bytes())
    data[-8] ^= 0x01
    f.write_bytes(bytes(data))
    rc = main(["tune", "noisemaker", "--param", "cutoff", "--data", str(ds16), "--studies", str(tmp_path / "s"),
               "--out", str(tmp_path / "r"), "--trials", "1", "--jobs", "1", "--families", "knn"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "corrupted shard" in one_error_line(err, "tune") and "shard 0" in err


# ----------------------------------------------------------------------------- 8. refuse before touching


@pytest.mark.parametrize("content", ["notes.txt", "manifest.json"])
def test_foreign_folder_is_refused_untouched(tmp_path, warm, content):
    out = tmp_path / "other"
    out.mkdir()
    (out / content).write_text('{"name": "my web app"}')
    with pytest.raises(DatasetError, match="choose an empty or new folder"):
        generate(warm, out, 8, **KW)
    assert sorted(os.listdir(out)) == [content]


# ----------------------------------------------------------------------------- 12. full disk


def test_full_disk_while_writing_the_manifest(tmp_path):
    """A real full disk: a 1 MiB tmpfs in a private mount namespace (``unshare``), filled up."""
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private tmpfs here: {probe.stderr.decode().strip()}")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    gen = " ".join(cli(mnt / "ds", "--n", "16"))
    script = f"""
mount -t tmpfs -o size=1m tmpfs {mnt} || exit 90
{gen} >/dev/null 2>{tmp_path}/1.err; echo $? > {tmp_path}/1.rc
cp {mnt}/ds/manifest.json {tmp_path}/before.json
dd if=/dev/zero of={mnt}/fill bs=4096 2>/dev/null
{gen} >/dev/null 2>{tmp_path}/2.err; echo $? > {tmp_path}/2.rc
cp {mnt}/ds/manifest.json {tmp_path}/after.json
ls -a {mnt}/ds {mnt}/ds/shards > {tmp_path}/ls.txt
rm {mnt}/fill
{gen} >/dev/null 2>{tmp_path}/3.err; echo $? > {tmp_path}/3.rc
"""
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, env=env(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()

    def rc(k: int) -> int:
        return int((tmp_path / f"{k}.rc").read_text())

    assert rc(1) == 0, (tmp_path / "1.err").read_text()
    assert rc(2) == 2
    line = one_error_line((tmp_path / "2.err").read_text())
    assert "No space left on device" in line and "kept" in line and "manifest.json" in line
    assert (tmp_path / "after.json").read_bytes() == (tmp_path / "before.json").read_bytes()
    assert ".tmp" not in (tmp_path / "ls.txt").read_text()
    assert rc(3) == 0, (tmp_path / "3.err").read_text()


# ----------------------------------------------------------------------------- #16 4a: preset metadata


def test_text_columns_of_a_preset_table_are_kept_as_metadata(tmp_path, warm, base16):
    table = tmp_path / "bank.csv"
    pd.DataFrame({"program": ["Fat Bass", "Glass Pad", "Zap", "Lead, 2"], "bank": ["A", "A", "B", "B"],
                  "cutoff": [0.2, 0.5, 0.9, 0.4], "meta:number": [1, 2, 3, 4]}).to_csv(table, index=False)
    rc = main(["generate", "noisemaker", "--patches", str(table), "--out", str(tmp_path / "p"), "--render-length",
               "0.25", "--note-length", "0.2", "--sample-rate", "16000", "--shard-size", "3", "--no-progress"])
    assert rc == 0
    ds = load_dataset(tmp_path / "p")
    np.testing.assert_array_equal(ds.params["cutoff"], [0.2, 0.5, 0.9, 0.4])
    assert list(ds.patch_info.columns) == ["program", "bank", "number"]
    assert list(ds.patch_info["program"]) == ["Fat Bass", "Glass Pad", "Zap", "Lead, 2"]
    assert list(ds.patch_info.index) == list(ds.params.index)
    assert list(ds.patch_info["number"]) == [1, 2, 3, 4]
    assert ds.labels([2, 3]) == ["Zap", "Lead, 2"]
    assert ds.meta["sampling"]["patches"]["meta"]["columns"] == ["program", "bank", "number"]
    # a renamed program is another table: refused, not mixed in
    pd.read_csv(table).assign(program=["Fat Bass", "Glass Pad", "Zip", "Lead, 2"]).to_csv(table, index=False)
    with pytest.raises(DatasetMismatchError, match="sampling.patches.meta"):
        generate(warm, tmp_path / "p", patches=table, settings=SETTINGS, shard_size=3)
    # JSON objects: every key beside "params" is metadata
    js = tmp_path / "bank.json"
    js.write_text(json.dumps([{"name": "One", "params": {"cutoff": 0.3}}, {"name": "Two", "params": {}}]))
    params, info = read_patch_table(js, warm, meta=True)
    assert list(info["name"]) == ["One", "Two"] and params["cutoff"].iloc[0] == 0.3
    # an unknown numeric column is still refused with the closest names; a dataset without metadata loads
    pd.DataFrame({"cutof": [0.1], "program": ["x"]}).to_csv(table, index=False)
    with pytest.raises(UnknownParameterError, match="cutof.*Did you mean 'cutoff'.*meta:"):
        read_patch_table(table, warm)
    old = load_dataset(base16)
    assert old.patch_info.shape == (16, 0) and old.labels([0, 1]) == ["", ""]
