"""The one reader of user-supplied JSON at each place it is used, output-path checks, audio writes, storage URLs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_probe.errors import (
    AudioError,
    DatasetError,
    OutputError,
    ParameterValueError,
    PatchFileError,
    SynthProbeError,
)
from synth_probe.fileio import check_output_dir, check_output_file, read_json, write_audio
from synth_probe.synths.base import MAX_RENDER_SECONDS, RenderSettings

DEEP = "[" * 200_000 + "]" * 200_000


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ------------------------------------------------------------------------------ read_json
@pytest.mark.parametrize("content, match", [
    (DEEP, "too deeply"),
    ('{"a":' * 50_000 + "1" + "}" * 50_000, "too deeply"),
    ("", "not valid JSON"),
    ('{"a": ', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[1]", "holds a JSON array, expected a JSON object"),
    ("null", "holds a JSON null"),
])
def test_read_json_maps_every_fault_to_the_callers_error(tmp_path, content, match):
    p = write(tmp_path / "x.json", content)
    with pytest.raises(PatchFileError, match=match):
        read_json(p, error=PatchFileError, what="patch file")


def test_read_json_missing_folder_and_size_bound(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_json(tmp_path / "none.json", error=DatasetError)
    with pytest.raises(DatasetError, match="is a folder"):
        read_json(tmp_path, error=DatasetError)
    with pytest.raises(DatasetError, match="larger than"):
        read_json("/dev/zero", error=DatasetError, max_bytes=1 << 20)
    assert read_json(write(tmp_path / "bom.json", b'\xef\xbb\xbf{"a": 1}'), error=DatasetError) == {"a": 1}


def test_patch_file_nested_200000_deep(tmp_path):
    from synth_probe.synths.base import read_patch_file

    with pytest.raises(PatchFileError, match="too deeply"):
        read_patch_file(write(tmp_path / "deep.json", DEEP))
    with pytest.raises(PatchFileError, match="not valid JSON"):
        read_patch_file(write(tmp_path / "t.json", "{"))
    assert read_patch_file(write(tmp_path / "ok.json", '{"params": {"cutoff": 0.5}}')) == {"cutoff": 0.5}


def test_patch_table_nested_deep(tmp_path, noisemaker):
    from synth_probe.dataset import read_patch_table

    with pytest.raises(PatchFileError, match="patch table .* too deeply"):
        read_patch_table(write(tmp_path / "deep.json", DEEP), noisemaker)
    with pytest.raises(PatchFileError, match="holds a JSON number"):
        read_patch_table(write(tmp_path / "n.json", "3"), noisemaker)


def test_model_whose_dataset_manifest_is_hostile(tmp_path):
    """match reads the render settings from the training dataset's manifest when the header lacks them."""
    from synth_probe.errors import ModelFileError
    from synth_probe.matching import load_match_model
    from synth_probe.models.io import FORMAT_VERSION, HEADER

    data = tmp_path / "data"
    data.mkdir()
    model = tmp_path / "model"
    model.mkdir()
    (model / HEADER).write_text(json.dumps({"format_version": FORMAT_VERSION, "metadata": {"data": str(data)}}))
    for content in (DEEP, "[]", "{"):
        write(data / "manifest.json", content)
        with pytest.raises(ModelFileError, match="does not record the render settings"):
            load_match_model(model)


def test_hostile_sensitivity_results_do_not_stop_tune(tmp_path, capsys):
    from synth_probe.tuning import check_audible

    for content in (DEEP, "[1, 2]", '{"params": [1, "x", null]}', '{"params": 3}'):
        p = write(tmp_path / "sensitivity.json", content)
        assert check_audible("cutoff", p, "noisemaker") is None
    err = capsys.readouterr().err
    assert "too deeply" in err and "audibility check is skipped" in err


def test_report_and_predictability_readers(tmp_path):
    from synth_probe.predictability import RESULTS_NAME, load_saved_run
    from synth_probe.report import load_json
    from synth_probe.report.sensitivity_section import rebuild_from_json

    write(tmp_path / RESULTS_NAME, DEEP)
    assert load_json(tmp_path / RESULTS_NAME) is None
    with pytest.raises(DatasetError, match="too deeply"):
        load_saved_run(tmp_path)
    write(tmp_path / "sensitivity.json", DEEP)
    with pytest.raises(DatasetError, match="too deeply"):
        rebuild_from_json(tmp_path)


def test_damaged_plugin_description_cache_is_read_again(tmp_path, monkeypatch):
    from synth_probe.synths import plugin

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plugin.cache_dir().mkdir(parents=True)
    write(plugin.cache_dir() / "abc.json", DEEP)
    assert plugin._load_cached("abc") is None


def test_set_value_nested_deep_is_refused():
    from synth_probe.commands._args import key_value as _kv

    with pytest.raises(ParameterValueError, match="too deeply"):
        _kv("hidden=" + "[" * 5000)
    assert _kv("hidden=[64, 32]") == ("hidden", [64, 32])
    assert _kv("kind=rbf") == ("kind", "rbf")


# ------------------------------------------------------------------------------ output paths
def test_output_checks_touch_nothing(tmp_path):
    f = write(tmp_path / "file", "x")
    with pytest.raises(OutputError, match="existing file"):
        check_output_dir(f)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_dir(f / "a" / "b")
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_file(f / "x.json")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file(f) == f
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert isinstance(OutputError("x"), SynthProbeError) and isinstance(OutputError("x"), OSError)


# ------------------------------------------------------------------------------ audio output
def test_audio_formats_by_extension(tmp_path):
    x = (0.25 * np.sin(np.linspace(0, 100, 800))).astype(np.float32)
    for ext, subtype in ((".wav", "FLOAT"), (".flac", "PCM_24"), (".aiff", "FLOAT")):
        p = write_audio(tmp_path / f"a{ext}", x, 8000)
        assert sf.info(str(p)).subtype == subtype
        assert np.allclose(sf.read(str(p))[0], x, atol=1e-6)
    for name in ("p.txt", "noext", "a.mp3"):
        with pytest.raises(AudioError, match="extension chooses its format"):
            write_audio(tmp_path / name, x, 8000)
    assert not list(tmp_path.glob(".*tmp"))


def test_full_device_is_a_clean_error(tmp_path):
    os.symlink("/dev/full", tmp_path / "full.wav")
    with pytest.raises(OutputError, match="could not be written"):
        write_audio(tmp_path / "full.wav", np.zeros(800, np.float32), 8000)


def test_failed_write_keeps_the_earlier_file(tmp_path):
    """A write cut off by the file-size limit (as a full disk would) leaves the earlier file whole."""
    out = tmp_path / "a.wav"
    out.write_bytes(b"earlier")
    code = (
        "import resource, signal, sys, numpy as np\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from synth_probe.cli import main\n"
        f"sys.exit(main(['render', 'noisemaker', '--render-length', '0.5', '--sample-rate', '8000', '-o', {str(out)!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "could not be written" in r.stderr and "Traceback" not in r.stderr
    assert out.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_render_lengths_are_bounded():
    RenderSettings(render_length=MAX_RENDER_SECONDS, note_length=MAX_RENDER_SECONDS, sample_rate=8000)
    for kw in ({"render_length": 1e9}, {"render_length": float("nan")}, {"render_length": float("inf")},
               {"note_length": MAX_RENDER_SECONDS + 1}, {"note_length": float("nan")}):
        with pytest.raises(ParameterValueError):
            RenderSettings(**kw)


# ------------------------------------------------------------------------------ storage URLs
SECRET_URLS = [
    "postgresql://127.0.0.1:1/db?user=u&password=s3cr3tpw",
    "postgresql://user:sec/r3tpw@127.0.0.1:1/db",
    "postgresql://user:s3cr3tpw@127.0.0.1:1/db",
    "mysql://u:s3cr3t%40pw@127.0.0.1:1/db",
    "postgresql://u@h/db?sslpassword=s3cr3tpw&application_name=x",
    "postgresql://h/db?passwd=s3cr3tpw&pwd=s3cr3tpw&token=s3cr3tpw&api_key=s3cr3tpw&client_secret=s3cr3tpw",
    "postgresql://u:p@h/db?password=s3cr3tpw&password=s3cr3tpw2",
    "sqlite:////nonexistent/dir/x.db?password=s3cr3tpw",
    "postgresql://user:s3cr3tpw@host:notaport/db",  # does not parse: never echoed
    "no scheme s3cr3tpw at all",
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_mask_url_hides_every_secret(url):
    from synth_probe.tuning import mask_url, scrub_secrets

    masked = mask_url(url)
    assert "s3cr3t" not in masked and "r3tpw" not in masked, masked
    assert "s3cr3t" not in scrub_secrets(f"could not connect to {url}", url)


def test_scrub_finds_passwords_as_written_and_decoded():
    from synth_probe.tuning import scrub_secrets

    url = "mysql://u:s3cr3t%40pw@127.0.0.1:1/db?token=t0k%2Fen"
    text = scrub_secrets("denied: 's3cr3t@pw' / 's3cr3t%40pw', token t0k/en", url)
    assert "s3cr3t" not in text and "t0k" not in text, text


def test_mask_url_keeps_what_is_not_secret():
    from synth_probe.tuning import mask_url

    assert mask_url("postgresql://user:secret@db.example.org:5432/optuna") == \
        "postgresql://user:***@db.example.org:5432/optuna"
    assert mask_url("postgresql://127.0.0.1:1/db?user=u&password=x") == "postgresql://127.0.0.1:1/db?password=***&user=u"
    assert mask_url("mysql://a:b%40c@h/db") == "mysql://a:***@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("url", SECRET_URLS)
def test_storage_secrets_never_printed_by_the_cli(url, tmp_path, capsys):
    from synth_probe.cli import main

    rc = main(["tune", "noisemaker", "--param", "cutoff", "--data", str(tmp_path / "none"), "--storage", url,
               "--studies", str(tmp_path / "studies"), "--out", str(tmp_path / "reports"), "--trials", "1"])
    cap = capsys.readouterr()
    assert rc == 2
    assert "s3cr3t" not in cap.out + cap.err and "r3tpw" not in cap.out + cap.err, cap.err
    assert cap.err.count("\n") == 1 and "Traceback" not in cap.err
