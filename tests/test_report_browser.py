"""The reports in a real headless Chromium: they load offline, run their script without console errors, a
screenshot shows the table and the chart, and at 1,280 and 1,920 px no element overflows its container and
every image and audio element loads (a script added to a copy of each page measures it and writes the
result into the DOM)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from synth_probe.fidelity import Timing, compare_synths
from synth_probe.identifiability import IdentifiabilityConfig, run_identifiability
from synth_probe.predictability import PredictabilityConfig, ensure_dataset, run_predictability
from synth_probe.reference import probes_from_vectors
from synth_probe.report import assemble, read_parts, write_index, write_part
from synth_probe.report.fidelity_section import write_fidelity_report
from synth_probe.report.charts import spectrogram_figure
from synth_probe.report.html import (Column, bar_chart, clip_plan, resample_clip, spectrogram_strip, table,
                                     wav_data_uri, wav_uri_bytes)
from synth_probe.report.pages import write_identifiability_report, write_predictability_report
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


WIDTHS = (1280, 1920)

#: opens every <details>, then lists block elements whose content is wider than their box (spilling or
#: clipped; a scroll container is allowed: a wide table scrolls inside its frame), SVG charts wider than their
#: parent, images that did not decode, and audio elements whose data does not load (metadata with a duration)
LAYOUT_CHECK = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement, bad = [];
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  function name(el) {
    var c = typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + c;
  }
  if (root.scrollWidth > window.innerWidth) { bad.push("page " + root.scrollWidth + ">" + window.innerWidth); }
  document.querySelectorAll("body *").forEach(function (el) {
    if (el instanceof SVGElement) { return; }
    var cs = getComputedStyle(el);
    if (cs.display === "none" || cs.display === "inline" || cs.display === "contents") { return; }
    if (cs.overflowX === "auto" || cs.overflowX === "scroll") { return; }
    if (el.scrollWidth > el.clientWidth + 1) { bad.push(name(el) + " " + el.scrollWidth + ">" + el.clientWidth); }
  });
  document.querySelectorAll("svg").forEach(function (s) {
    var r = s.getBoundingClientRect(), p = s.parentElement.getBoundingClientRect();
    if (r.width > 0 && r.right > p.right + 1) { bad.push(name(s) + " right " + r.right + ">" + p.right); }
  });
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  root.setAttribute("data-check", JSON.stringify({width: window.innerWidth, overflow: bad.length,
    offenders: bad.slice(0, 15), images: imgs.length, broken_images: broken.length}));
  var audios = Array.prototype.slice.call(document.querySelectorAll("audio")), ok = 0, failed = 0;
  function report() { root.setAttribute("data-audio", JSON.stringify({n: audios.length, ok: ok, failed: failed})); }
  report();
  audios.forEach(function (a) {
    a.addEventListener("loadedmetadata", function () { if (a.duration > 0) { ok++; } else { failed++; } report(); },
                       {once: true});
    a.addEventListener("error", function () { failed++; report(); }, {once: true});
    a.preload = "auto";
    a.load();
  });
});
</script>"""


def layout(tmp: Path, page: Path, width: int) -> dict:
    """The layout check's findings on ``page`` at ``width`` px (a copy of the page beside it, then removed)."""
    html = page.read_text(encoding="utf-8")
    assert "</body>" in html
    copy = page.with_name(f"_layout_{width}_{page.name}")
    copy.write_text(html.replace("</body>", LAYOUT_CHECK + "</body>", 1), encoding="utf-8")
    try:
        res = chromium(tmp, copy.as_uri(), "--dump-dom", f"--window-size={width},1000",
                       "--virtual-time-budget=20000", "--autoplay-policy=no-user-gesture-required")
    finally:
        copy.unlink()
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'data-check="([^"]*)"', res.stdout)
    a = re.search(r'data-audio="([^"]*)"', res.stdout)
    assert m and a, res.stdout[:2000]
    from html import unescape

    out = json.loads(unescape(m.group(1)))
    out["audio"] = json.loads(unescape(a.group(1)))
    return out


def assert_layout_holds(tmp: Path, page: Path, *, min_images: int = 0, min_audio: int = 0) -> None:
    """At both widths: no overflowing element, every image decoded, every audio element loaded."""
    for width in WIDTHS:
        r = layout(tmp, page, width)
        where = f"{page.name} at {width} px"
        assert r["width"] == width, (where, r)
        assert r["overflow"] == 0, f"{where}: {r['offenders']}"
        assert r["images"] >= min_images and r["broken_images"] == 0, (where, r)
        au = r["audio"]
        assert au["n"] >= min_audio and au["ok"] == au["n"] and au["failed"] == 0, (where, au)


def test_layout_check_sees_overflow_and_broken_media(tmp_path):
    # the check must be able to fail: a clipped box, a page wider than the window, a broken image and audio
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><div style="width:300px;overflow:hidden;white-space:nowrap">' + "x" * 400
                   + '</div><div style="width:2400px">wide</div><img src="data:image/png;base64,AAAA">'
                   '<audio controls src="data:audio/wav;base64,AAAA"></audio></body></html>')
    r = layout(tmp_path, bad, 1280)
    assert r["overflow"] >= 2 and any(o.startswith("page ") for o in r["offenders"])
    assert r["images"] == 1 and r["broken_images"] == 1
    assert r["audio"] == {"n": 1, "ok": 0, "failed": 1}


@pytest.fixture(scope="module")
def report(noisemaker, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    cfg = SensitivityConfig(bases=2, steps=4, floor_seeds=2, render_length=0.5, note_length=0.3,
                            sample_rate=16000, params=PARAMS)
    result = run_sensitivity(noisemaker, cfg)
    result.stability = {"spearman": 0.95, "n": 5, "params": list(PARAMS[:5]), "spearman_all": 0.9, "n_all": 7,
                        "class_agreement": 1.0, "seeds": [0, 1]}
    write_sensitivity_report(result.to_dict(), result.table_rows(), out, media=result.media)
    return out / "predictability.html"


def audible(folder: Path) -> list[str]:
    data = json.loads((folder / "sensitivity.json").read_text())
    return [p["name"] for p in data["params"] if p["classification"] != "inaudible"]


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
    # the first screen: what is measured, and the commands that add the rest with their times
    status = dom[dom.index('id="status"'):dom.index('id="sensitivity"')]
    assert "Measured so far: <strong>Sensitivity</strong>" in status
    for cmd, when in (("make predictability", "about 20 min on 2 cores"),
                      ("make identifiability", "about 12 min on 2 cores")):
        assert f"<code>{cmd}</code> ({when})" in status
    assert dom.index('id="status"') < dom.index('id="sensitivity-table"')
    assert 'href="index.html" id="home-link"' in dom


def test_sensitivity_page_layout_holds_at_two_widths(report, tmp_path):
    n = len(audible(report.parent))
    assert n >= 3
    assert_layout_holds(tmp_path, report, min_images=len(PARAMS), min_audio=2 * n)


def test_index_is_a_landing_page(report, tmp_path):
    index = report.parent / "index.html"
    html = index.read_text()
    assert 'id="home-link"' not in html  # the index is home
    runs = re.search(r'<table id="runs".*?</table>', html, re.S).group(0)
    assert ">sensitivity<" in runs and ">noisemaker<" in runs and 'href="predictability.html"' in runs
    data = json.loads((report.parent / "sensitivity.json").read_text())
    top = min(data["params"], key=lambda p: p["rank"])["name"]
    answer = re.search(r'<div id="answer-sensitivity">.*?</div>', html, re.S).group(0)
    assert f'href="predictability.html#param-{top}"' in answer
    not_run = re.search(r'<ul class="next" id="not-run">.*?</ul>', html, re.S).group(0)
    assert "make predictability" in not_run and "make sensitivity" not in not_run
    assert_layout_holds(tmp_path, index)


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
    status = dom[dom.index('id="status"'):dom.index('id="sensitivity"')]
    assert "<strong>Identifiability in context</strong>" in status and "make identifiability" not in status
    assert "<code>make predictability</code> (about 20 min on 2 cores)" in status
    assert_layout_holds(tmp_path, page, min_images=len(PARAMS))
    index = folder / "index.html"
    assert 'id="answer-identifiability"' in index.read_text()
    assert_layout_holds(tmp_path, index)


def test_measured_part_and_landing_page_hold_at_two_widths(report, tmp_path):
    """A tiny predictability run beside the sensitivity part: the page, its first screen and the index."""
    folder = tmp_path / "reports"
    shutil.copytree(report.parent, folder)
    data = ensure_dataset("noisemaker", tmp_path / "tiny", 40, sampler="timbral", jobs=1, sample_rate=16000,
                          render_length=0.5, note_length=0.3, progress=False)
    results = run_predictability(data, PredictabilityConfig(
        models=("mean", "gbm", "cnn"), params="cutoff,ampattack,osc1waveform", test_fraction=0.25, epochs=2,
        patience=2, jobs=1, audio=2, pairs=2, overrides={"gbm": {"n_estimators": 10}, "cnn": {"channels": [8, 16]}}),
        out=folder, cache_dir=tmp_path / "cache")
    page = write_predictability_report(results, folder)["html"]
    html = page.read_text()
    status = html[html.index('id="status"'):html.index('id="sensitivity"')]
    assert "<strong>Sensitivity</strong>" in status and "<strong>Measured predictability</strong>" in status
    assert "make predictability" not in status and "<code>make identifiability</code> (about 12 min" in status
    assert_layout_holds(tmp_path, page, min_images=len(PARAMS), min_audio=4)
    index = (folder / "index.html").read_text()
    best = re.search(r'<table id="answer-best-models".*?</table>', index, re.S).group(0)
    assert best.count("<tr") == 1 + len(results["best"]) and ">cutoff<" in best
    assert "make predictability" not in re.search(r'id="not-run">.*?</ul>', index, re.S).group(0)
    assert_layout_holds(tmp_path, folder / "index.html")


def test_page_is_self_contained(report):
    page = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page
    assert page.count("data:audio/wav;base64,") == 2 * len(audible(report.parent))
    note = re.search(r'<p class="muted" id="sweeps-note">(.*?)</p>', page, re.S).group(1)
    assert "every audible parameter" in note and "within a budget of 5 MB" in note


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


def test_index_reads_partial_or_broken_data_defensively(tmp_path):
    # a run cut short, a file from an older version, a file that is not JSON: the index is still written
    (tmp_path / "sensitivity.json").write_text("{not json")
    (tmp_path / "predictability.json").write_text(json.dumps({"synth": "noisemaker", "best": [1, 2]}))
    (tmp_path / "identifiability.json").write_text(json.dumps({"summary": [{"parameter": "cutoff"}]}))
    (tmp_path / "fidelity.json").write_text(json.dumps({"overall": {"median_db": None}}))
    (tmp_path / "tune_cutoff.json").write_text(json.dumps({"param": "cutoff", "best": None}))
    (tmp_path / "matching.json").write_text("[]")
    html = write_index(tmp_path).read_text()
    for answer in ("sensitivity", "predictability", "identifiability", "fidelity", "matching"):
        assert f'id="answer-{answer}"' not in html
    runs = re.search(r'<table id="runs".*?</table>', html, re.S).group(0)
    assert ">predictability<" in runs and ">tune cutoff<" in runs and ">sensitivity<" not in runs
    tune = re.search(r'<div id="answer-tuning">.*?</table>', html, re.S).group(0)
    assert ">cutoff<" in tune and "—" in tune  # no test scores: no verdict
    not_run = re.search(r'id="not-run">.*?</ul>', html, re.S).group(0)
    assert "make sensitivity" in not_run and "make match-eval" in not_run and "make tune" not in not_run


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
    assert len(w) == wav_uri_bytes(1600)


def test_audio_budget_axes_and_scales():
    # the highest rate that fits, then shorter clips; the plan keeps its promise
    assert clip_plan(150, 1.0, 5.0) == (12000, 1.0) and clip_plan(150, 1.0, 4.0) == (8000, 1.0)
    rate, sec = clip_plan(150, 1.0, 1.0)
    assert rate == 8000 and 0.1 <= sec < 1.0 and 150 * wav_uri_bytes(int(rate * sec)) <= 1.0e6
    tone = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 20000).astype(np.int16)
    y = resample_clip(tone, 16000, 8000, 0.5)
    assert y.dtype == np.int16 and len(y) == 4000 and abs(int(np.abs(y).max()) - 20000) < 400
    # a tall chart repeats its tick labels above the bars; a short one does not
    tall = bar_chart([f"p{i}" for i in range(30)], list(np.linspace(0.1, 9, 30)), unit="dB")
    short = bar_chart(["a", "b"], [1.0, 2.0], unit="dB")
    for svg, per_tick in ((tall, 2), (short, 1)):  # tick labels per grid line, plus the unit under the axis
        assert svg.count('class="tick"') == per_tick * svg.count('class="grid"') + 1
    assert tall.count(">dB</text>") == 2 and short.count(">dB</text>") == 1
    fig = spectrogram_figure([np.full((64, 60), -30.0)] * 2, ["A", "B"], sample_rate=22050, hop=256)
    for label in ("5 kHz", "1 kHz", ">0<", ">0.5<", ">-80<", ">dB<"):
        assert label in fig, label
    assert fig.count('class="spec-panel"') == 2 and fig.count("<img") == 1


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
    assert_layout_holds(tmp_path, fidelity_page, min_images=2, min_audio=4)
    assert 'id="answer-fidelity"' in (fidelity_page.parent / "index.html").read_text()


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
    assert_layout_holds(tmp_path, page, min_audio=12)
    assert_layout_holds(tmp_path, tmp_path / "reports" / "index.html")


#: writes whether #headroom-summary is rendered (a box with a size, not hidden) and its text into the DOM
HEADROOM_CHECK = """<script>
window.addEventListener("load", function () {
  var el = document.getElementById("headroom-summary"), r = el.getBoundingClientRect();
  document.documentElement.setAttribute("data-headroom", JSON.stringify({
    visible: el.checkVisibility() && r.width > 0 && r.height > 0, text: el.textContent}));
});
</script>"""


def test_headroom_summary_is_visible_above_the_measured_table(tmp_path):
    """Hand-made predictability and identifiability data: the headroom line shows in the page, no script errors."""
    from html import unescape

    from test_headroom import identifiability, results

    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "predictability.json").write_text(json.dumps(results()))
    (folder / "identifiability.json").write_text(json.dumps(identifiability(cutoff=0.82)))
    page = write_predictability_report(None, folder)["html"]
    copy = page.with_name("_headroom_check.html")
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", HEADROOM_CHECK + "</body>", 1),
                    encoding="utf-8")
    res = chromium(tmp_path, copy.as_uri(), "--dump-dom", "--window-size=1280,1000", "--virtual-time-budget=5000")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_messages(res.stderr) == []
    assert 'data-report-ready="1"' in res.stdout and "data-js-errors=" not in res.stdout
    check = json.loads(unescape(re.search(r'data-headroom="([^"]*)"', res.stdout).group(1)))
    assert check["visible"], check
    assert check["text"].startswith("1 of 4 parameters limited by the render, 2 by the models")
    r = layout(tmp_path, page, 1280)
    assert r["overflow"] == 0, r["offenders"]
