"""The predictability report in a real headless Chromium: it loads offline, runs its script without
console errors, and a screenshot shows the table and the chart."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from synth_probe.fidelity import Timing, compare_synths
from synth_probe.identifiability import IdentifiabilityConfig, run_identifiability
from synth_probe.reference import probes_from_vectors
from synth_probe.report import assemble, read_parts, write_index, write_part
from synth_probe.report.fidelity_section import write_fidelity_report
from synth_probe.report.html import Column, bar_chart, spectrogram_strip, table, wav_data_uri
from synth_probe.report.pages import write_identifiability_report
from synth_probe.report.sensitivity_section import write_sensitivity_report
from synth_probe.sensitivity import SensitivityConfig, run_sensitivity

pytestmark = pytest.mark.needs("chromium")

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
PARAMS = ("cutoff", "resonance", "osc1volume", "ampattack", "lfo1rate", "unused", "midilearn")


def chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return re.findall(r":CONSOLE[:(]\d*\)?\]? (.*)", stderr)


@pytest.fixture(scope="module")
def report(noisemaker, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    cfg = SensitivityConfig(bases=2, steps=4, floor_seeds=2, render_length=0.5, note_length=0.3,
                            sample_rate=16000, params=PARAMS)
    result = run_sensitivity(noisemaker, cfg)
    result.stability = {"spearman": 0.95, "n": 5, "params": list(PARAMS[:5]), "spearman_all": 0.9, "n_all": 7,
                        "class_agreement": 1.0, "seeds": [0, 1]}
    write_sensitivity_report(result.to_dict(), result.table_rows(), out, media=result.media, audio_top=3)
    return out / "predictability.html"


def test_console_capture_sees_errors(tmp_path):
    # the check below must be able to fail: a page with a script error shows up
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); notDefined();</script></body></html>")
    res = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    msgs = console_messages(res.stderr)
    assert any("boom" in m for m in msgs) and any("notDefined" in m for m in msgs), res.stderr[-2000:]


def test_report_loads_without_console_errors(report, tmp_path):
    res = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_messages(res.stderr) == []
    dom = res.stdout
    assert 'data-report-ready="1"' in dom  # the page's script ran to its end
    assert "data-js-errors=" not in dom
    assert dom.count('<tr class="cls-') == len(PARAMS)
    assert '<svg' in dom and 'id="sensitivity-chart"' in dom
    assert "stability ρ = <b>0.95</b>" in dom


def test_screenshot_shows_the_table_and_the_chart(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    res = chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 20  # not blank
    # the chart's bars: the "strong" blue (#1f77b4) fills a visible area
    blue = (np.abs(img - [0x1F, 0x77, 0xB4]).sum(axis=-1) < 30)
    assert blue.sum() > 2000
    # the table: dark text on many rows of the upper half
    dark_rows = (img[:800].mean(axis=-1) < 90).any(axis=1).sum()
    assert dark_rows > 100
    # the chart sits below the table: its bars start below the table's first rows
    assert np.nonzero(blue.any(axis=1))[0].max() > 300


def test_identifiability_section_loads_and_sorts(report, noisemaker, tmp_path):
    import shutil


    folder = tmp_path / "reports"
    shutil.copytree(report.parent, folder)
    res = run_identifiability(noisemaker, IdentifiabilityConfig(bases=2, budget=5, params=("cutoff", "lfo1rate"),
                                                                render_length=0.5, note_length=0.3,
                                                                sample_rate=16000))
    page = write_identifiability_report(res.to_dict(), folder)["html"]
    out = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    assert console_messages(out.stderr) == []
    dom = out.stdout
    assert 'data-report-ready="1"' in dom and "data-js-errors=" not in dom
    table_html = re.search(r'<table id="identifiability-t".*?</table>', dom, re.S).group(0)
    assert table_html.count("<tr class=") == 2 and "lfo1rate" in table_html
    # the section sits between the sensitivity part and anything measured later
    assert dom.index('id="sensitivity-table"') < dom.index('id="identifiability-t"')


def test_page_is_self_contained(report):
    page = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page
    assert page.count("data:audio/wav;base64,") == 6


def test_parts_assemble_in_order_and_the_index_links_them(tmp_path):
    # a later study (the estimator issue) adds its own part to the same page
    write_part(tmp_path, "predictability", "20-measured", "Measured predictability", "<p id='m'>measured</p>")
    write_part(tmp_path, "predictability", "10-sensitivity", "Sensitivity", "<p id='s'>sensitivity</p>")
    assert [p.key for p in read_parts(tmp_path, "predictability")] == ["10-sensitivity", "20-measured"]
    page = assemble(tmp_path, "predictability").read_text()
    assert page.index("id='s'") < page.index("id='m'")
    assert '<a href="#sensitivity">' in page and '<a href="#measured">' in page
    (tmp_path / "other.html").write_text("<html><head><title>Other &amp; more</title></head></html>")
    (tmp_path / "numbers.csv").write_text("a\n1\n")
    index = write_index(tmp_path).read_text()
    for name in ("predictability.html", "other.html", "numbers.csv"):
        assert f'href="{name}"' in index
    assert "Other &amp; more" in index and "Predictability report" in index
    with pytest.raises(ValueError, match="part key"):
        write_part(tmp_path, "predictability", "../evil", "x", "")


def test_html_helpers():
    t = table([Column("name", "Name"), Column("v", "Value", numeric=True)],
              [{"name": "<b>", "v": 1.5}, {"name": "x", "v": None}], id="t")
    assert "&lt;b&gt;" in t and 'data-sort="1.5"' in t and 'data-type="num"' in t
    svg = bar_chart(["a", "b"], [2.0, 0.5], lows=[1.0, 0.1], highs=[3.0, 0.9], classes=["strong", "weak"])
    assert svg.startswith("<svg") and svg.count('class="bar') == 2 and svg.count('class="whisker"') == 6
    uri = spectrogram_strip([np.full((8, 20), -40.0), np.full((8, 30), -10.0)])
    assert uri.startswith("data:image/png;base64,")
    w = wav_data_uri(np.zeros(1600, dtype=np.int16), 16000)
    assert w.startswith("data:audio/wav;base64,UklGR")  # "RIFF"


@pytest.fixture(scope="module")
def fidelity_page(noisemaker, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fidelity")
    probes = probes_from_vectors(np.array([noisemaker.patch_vector({"cutoff": c}) for c in (0.2, 0.5, 0.8)]),
                                 noisemaker.param_names)
    res = compare_synths(noisemaker, noisemaker, probes, Timing(16000, 0.3, 0.5), floor_n=2)
    write_fidelity_report(res.summary, res.rows, res.media(res.listening(2, 1.0)), out, budget_mb=1.0)
    return out / "fidelity.html"


def test_fidelity_report_loads_without_console_errors(fidelity_page, tmp_path):
    res = chromium(tmp_path, fidelity_page.as_uri(), "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_messages(res.stderr) == []
    dom = res.stdout
    assert 'data-report-ready="1"' in dom and "data-js-errors=" not in dom
    probes = re.search(r'<table id="fidelity-probes".*?</table>', dom, re.S).group(0)
    assert probes.count("<tr") == 1 + 3  # the header and one row per probe
    assert dom.count("<audio") == 4 and 'id="median-distance"' in dom and 'id="fidelity-groups"' in dom
    page = fidelity_page.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page


def test_matching_page_of_a_tiny_evaluation_loads_and_passes_no_verdict(tmp_path, capsys):
    """``python -m synth_probe.bench.match_eval`` on 3 amsynth presets: the page comes from report/."""
    from synth_probe.bench.match_eval import AMSYNTH_PATH, main

    if not Path(AMSYNTH_PATH).exists():
        pytest.skip(f"amsynth is not installed ({AMSYNTH_PATH}): apt-get install amsynth")
    rc = main(["--n-train", "30", "--n-presets", "3", "--budget", "2", "--cmaes-presets", "1", "--jobs", "1",
               "--work", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "target >= 90 %" in printed  # the benchmark prints its targets ...
    page = tmp_path / "reports" / "matching.html"
    html = page.read_text()
    assert "target met" not in html.lower() and "not met" not in html.lower()  # ... the page shows measurements
    assert 'href="matching.html"' in (tmp_path / "reports" / "index.html").read_text()
    res = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_messages(res.stderr) == []
    dom = res.stdout
    assert 'data-report-ready="1"' in dom and "data-js-errors=" not in dom
    for anchor in ("t-log_mel", "p-log_mel", "t-mfcc", "p-spectral_convergence"):
        assert f'id="{anchor}"' in dom
    assert dom.count('aria-label="distance distributions"') == 3 and 'aria-label="search curves"' in dom
    assert dom.count("<audio") == 4 * 3  # target, model, model + hill, hill from default for each preset
