"""Tests of synth_probe.tuning and ``synth-probe tune`` on a tiny real dataset (40 renders, 16 kHz, 0.5 s)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from synth_probe.cli import main
from synth_probe.tuning import (
    FamilyMedianPruner,
    JournalHeartbeat,
    TuneConfig,
    TuneContext,
    mask_url,
    open_storage,
    parse_families,
    retry_callback,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """40 real NoiseMaker renders of the timbral sampler, 16 kHz, 0.5 s."""
    from synth_probe.dataset import generate
    from synth_probe.synths.base import RenderSettings

    out = tmp_path_factory.mktemp("data") / "tiny"
    settings = RenderSettings(note=60, velocity=100, note_length=0.35, render_length=0.5, sample_rate=16000)
    result = generate("noisemaker", out, 40, sampler="timbral", seed=3, settings=settings, jobs=1)
    assert result.ok, result.summary()
    return out


@pytest.fixture(scope="module")
def feature_cache(tiny, tmp_path_factory) -> Path:
    """The tiny dataset's features for every feature setting, computed once in this process.

    The subprocess tests copy it into their ``studies/`` folder, so they spend their
    time on trials and storage rather than on the same 40 spectrograms.
    """
    from synth_probe.synths.registry import get_synth

    root = tmp_path_factory.mktemp("warm")
    cfg = TuneConfig(synth="noisemaker", param="cutoff", data=str(tiny), studies_root=str(root))
    ctx = TuneContext(cfg, get_synth("noisemaker"))
    ctx.features.get("hand")
    for m in (32, 64, 128):
        for h in (256, 512):
            ctx.features.get(f"mel-{m}-{h}")
    return root / "noisemaker" / "_features"


def _warm(studies: Path, cache: Path) -> None:
    import shutil

    shutil.copytree(cache, studies / "noisemaker" / "_features")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "synth_probe", "tune", "noisemaker", *args]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


# --------------------------------------------------------------------------- bad input
def test_unknown_param_lists_names_and_closest(capsys, tmp_path):
    rc = main(["tune", "noisemaker", "--param", "cutof", "--studies", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown parameter 'cutof'" in err and "Did you mean 'cutoff'" in err
    assert "88 names in all" in err and "midilock" not in err  # the closest names, not all of them
    assert not any(tmp_path.iterdir())  # nothing was started


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown model 'cnnn'.*Did you mean 'cnn'"):
        parse_families("cnnn")
    assert parse_families("cnn,transformer") == ["gbm", "knn", "autoencoder"]
    assert parse_families(None, "autoencoder_mlp,gbm") == ["gbm", "autoencoder"]


def test_unreachable_storage_fails_fast_with_password_masked(capsys, tmp_path, tiny):
    url = "postgresql://user:secret@127.0.0.1:1/db"
    t0 = time.perf_counter()
    rc = main(["tune", "noisemaker", "--param", "cutoff", "--data", str(tiny), "--storage", url,
               "--studies", str(tmp_path / "studies"), "--out", str(tmp_path / "reports"), "--trials", "1"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2
    assert elapsed < 20
    assert "secret" not in err
    assert "user:***@127.0.0.1:1/db" in err and "cannot reach the study storage" in err
    assert mask_url("mysql://a:b%40c@h/db") == "mysql://a:***@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_inaudible_parameter_needs_force(capsys, tmp_path, tiny, feature_cache):
    reports = tmp_path / "reports"
    _warm(tmp_path / "s", feature_cache)
    reports.mkdir()
    (reports / "sensitivity.json").write_text(json.dumps({
        "synth": {"synth": "noisemaker"},
        "params": [{"name": "osc2phase", "classification": "inaudible", "score": 0.01, "ci_low": 0.0,
                    "ci_high": 0.02, "rank": 80}],
    }))
    base = ["tune", "noisemaker", "--param", "osc2phase", "--data", str(tiny), "--studies", str(tmp_path / "s"),
            "--out", str(reports), "--trials", "1", "--jobs", "1", "--families", "knn"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "inaudible" in err and "no model can beat chance" in err and "--force" in err
    assert not (tmp_path / "s" / "noisemaker" / "osc2phase").exists()
    assert main(base + ["--force"]) == 0
    cap = capsys.readouterr()
    assert "tuning anyway (--force)" in cap.err
    assert (reports / "tune_osc2phase.html").is_file()


# --------------------------------------------------------------------------- pruning and reporting
def test_family_median_pruner_compares_within_a_family():
    study = optuna.create_study(direction="maximize")
    dist = {"family": optuna.distributions.CategoricalDistribution(["gbm", "cnn"])}
    for fam, curve in [("gbm", [0.5, 0.6]), ("gbm", [0.4, 0.5]), ("gbm", [0.6, 0.7]), ("cnn", [0.0, 0.1])] * 1:
        study.add_trial(optuna.create_trial(params={"family": fam}, distributions=dist, value=curve[-1],
                                            intermediate_values={20: curve[0], 100: curve[1]}))
    pruner = FamilyMedianPruner(n_startup_trials=3, n_warmup_steps=10)

    def running(fam: str, values: dict[int, float]):
        return optuna.trial.FrozenTrial(
            number=99, state=TrialState.RUNNING, value=None, datetime_start=None, datetime_complete=None,
            params={"family": fam}, distributions=dist, user_attrs={}, system_attrs={},
            intermediate_values=values, trial_id=999)

    assert pruner.prune(study, running("gbm", {25: 0.45}))       # gbm median at step 25 is 0.5
    assert not pruner.prune(study, running("gbm", {25: 0.55}))
    assert not pruner.prune(study, running("cnn", {25: 0.0}))    # one cnn trial: below n_startup_trials
    assert not pruner.prune(study, running("gbm", {5: 0.0}))     # warm-up


def test_intermediate_values_from_torch_epochs_and_boosting_rounds(tiny, tmp_path):
    from synth_probe.synths.registry import get_synth

    cfg = TuneConfig(synth="noisemaker", param="cutoff", data=str(tiny), studies_root=str(tmp_path), jobs=1,
                     max_epochs=2, max_rounds=40)
    ctx = TuneContext(cfg, get_synth("noisemaker"))
    tr, va = ctx.split["train"], ctx.split["val"]
    seen: list[tuple[int, float]] = []
    fs = {"kind": "mel", "n_mels": 32, "hop": 512}
    params = dict(lr=1e-3, weight_decay=1e-4, batch_size=32, dropout=0.0, max_epochs=2, patience=2,
                  channels=(8, 16), depth=1, residual=False, hidden=0)
    est, metrics, _ = ctx.fit_eval("cnn", params, fs, tr, va, lambda s, v: seen.append((s, v)))
    assert [s for s, _ in seen] == [50, 100]                      # one report per epoch, in % of the budget
    assert all(np.isfinite(v) for _, v in seen)
    pickle.dumps(est)                         # the hook is a fit argument: the fitted model holds no closure
    assert np.isfinite(metrics["score"]) and "mae" in metrics
    seen.clear()
    fs = {"kind": "logmel_stats", "n_mels": 32, "hop": 512, "pool": 4}
    est, metrics, _ = ctx.fit_eval("gbm", dict(n_estimators=40, min_child_samples=3), fs, tr, va,
                                   lambda s, v: seen.append((s, v)))
    assert len(seen) >= 2 and [s for s, _ in seen] == sorted(s for s, _ in seen)
    pickle.dumps(est)
    # features were cached on disk per setting, not per trial
    cached = sorted(p.name for p in (tmp_path / "noisemaker" / "_features").rglob("*.npy"))
    assert cached == [f"mel-32-512-n{ctx.n}.npy"]


# --------------------------------------------------------------------------- storage, workers, heartbeats
def test_journal_heartbeat_fails_a_dead_workers_trial_and_retries_it(tmp_path):
    storage = open_storage(None, tmp_path / "study.journal")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    hb = JournalHeartbeat(tmp_path / "hb", interval=0.2, grace_period=30, failed_trial_callback=retry_callback(1))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t_dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    t_dead.set_user_attr("worker", f"{os.uname().nodename}:{dead.pid}")
    t_live = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    with hb.beating(t_live):
        failed = hb.fail_stale(study)
        states = {t.number: t.state for t in study.get_trials()}
    assert failed == [t_dead.number]
    assert states[t_dead.number] == TrialState.FAIL
    assert states[t_live.number] == TrialState.RUNNING
    frozen = study.get_trials()[t_dead.number]
    assert "is gone" in frozen.system_attrs["fail_reason"]
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].params == t_dead.params   # retried once
    assert hb.fail_stale(study) == []                                 # idempotent


def test_two_processes_share_one_study_then_report(tiny, tmp_path, feature_cache):
    studies, reports = tmp_path / "studies", tmp_path / "reports"
    _warm(studies, feature_cache)
    args = ["--param", "cutoff", "--data", str(tiny), "--studies", str(studies), "--out", str(reports),
            "--families", "gbm,knn", "--max-rounds", "40", "--trials", "3", "--jobs", "1", "--no-report"]
    procs = [subprocess.Popen(_cli(*args, "--seed", "0"), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    journal = studies / "noisemaker" / "cutoff" / "study.journal"
    assert journal.is_file()
    study = optuna.load_study(study_name="noisemaker-cutoff", storage=open_storage(None, journal))
    trials = study.get_trials()
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs.get("worker") for t in trials}) == 2   # both processes did work
    # the search starts from the untuned default configuration
    first = min(trials, key=lambda t: t.number)
    assert first.user_attrs.get("untuned_default") and first.params["family"] == "gbm"
    assert sum(bool(t.user_attrs.get("untuned_default")) for t in trials) == 1

    # rerun: resumes the same study (0 new trials), refits the best, writes the report and the index
    r = subprocess.run(_cli("--param", "cutoff", "--data", str(tiny), "--studies", str(studies), "--out",
                            str(reports), "--families", "gbm,knn", "--max-rounds", "40", "--trials", "0"),
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "6 trials" in r.stdout and "untuned default (gbm)" in r.stdout
    html = (reports / "tune_cutoff.html").read_text()
    for heading in ("Optimization history", "Hyperparameter importances", "Best configuration",
                    "Best score per family", "All trials", "MeanBaseline", "untuned default"):
        assert heading in html
    assert "<script src=" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "tune_cutoff.html" in (reports / "index.html").read_text()
    summary = json.loads((reports / "tune_cutoff.json").read_text())
    assert summary["n_trials"] == 6 and summary["best"]["val"] == pytest.approx(study.best_value)
    # the reference "untuned default" is that first trial's configuration: the same validation score
    assert summary["default"]["val"] == pytest.approx(first.value)
    assert summary["best"]["val"] >= summary["default"]["val"]

    from synth_probe.dataset import load_dataset
    from synth_probe.models.io import load_model

    model = load_model(studies / "noisemaker" / "cutoff" / "best_model")
    ds = load_dataset(tiny)
    pred = model.predict(ds.audio[:3])
    assert pred.shape == (3, 1) and list(pred.columns) == ["cutoff"]
    assert model.steps[-1][1].model_header_["metadata"]["trial"] == study.best_trial.number


def test_killed_worker_trial_is_failed_and_study_goes_on(tiny, tmp_path, feature_cache):
    studies = tmp_path / "studies"
    _warm(studies, feature_cache)
    args = ["--param", "resonance", "--data", str(tiny), "--studies", str(studies), "--out", str(tmp_path / "r"),
            "--families", "cnn", "--max-epochs", "200", "--trials", "1", "--jobs", "1", "--no-report"]
    p = subprocess.Popen(_cli(*args), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = studies / "noisemaker" / "resonance" / "study.journal"
    try:
        deadline = time.time() + 60
        running = []
        while time.time() < deadline and not running:
            time.sleep(0.5)
            if journal.is_file():
                with _quiet():
                    try:
                        st = optuna.load_study(study_name="noisemaker-resonance", storage=open_storage(None, journal))
                        running = [t for t in st.get_trials() if t.state == TrialState.RUNNING]
                    except KeyError:
                        pass
        assert running, "no trial started within 60 s"
    finally:
        p.kill()
        p.wait()
    # the next worker finds the dead trial, fails it, retries it and the study continues
    r = subprocess.run(_cli(*[a if a != "200" else "1" for a in args]), cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"trial {running[0].number} marked failed" in r.stderr
    st = optuna.load_study(study_name="noisemaker-resonance", storage=open_storage(None, journal))
    states = [t.state for t in st.get_trials()]
    assert states[running[0].number] == TrialState.FAIL
    assert TrialState.COMPLETE in states


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        self._w.__exit__(*a)


def test_default_dataset_plan_opens_the_gate_of_a_parameter_timbral_holds():
    from synth_probe.sampling import make_plan
    from synth_probe.synths.noisemaker.samplers import TIMBRAL_VARIED
    from synth_probe.tuning import default_plan
    from synth_probe.synths.noisemaker import NoiseMaker

    nm = NoiseMaker()
    assert default_plan(nm, "cutoff") == ("timbral", "timbral", {})
    sampler, name, kw = default_plan(nm, "delayfeedback")
    assert (sampler, name) == ("timbral", "timbral+delayfeedback")
    assert kw["fix"] == {"delaywet": 0.5, "delaytime": 0.3}  # the delay is on, so its feedback is audible
    plan = make_plan(nm, sampler, **kw)
    assert sorted(plan.varied) == sorted([*TIMBRAL_VARIED, "delayfeedback"])
    X, _ = plan.rows(0, 0, 50)
    names = list(nm.param_names)
    assert (X[:, names.index("delaywet")] == 0.5).all() and X[:, names.index("delayfeedback")].std() > 0.1
    # a gate-less parameter is only added to the varied set
    assert default_plan(nm, "reverbwet")[2] == {"vary": [*make_plan(nm, "timbral").varied, "reverbwet"], "fix": None}


def test_study_on_other_descriptors_is_refused(tiny, tmp_path, monkeypatch):
    # trials scored on one descriptor set do not compare with trials on another (DESCRIPTORS_VERSION)
    import synth_probe.features as features_module
    from synth_probe.errors import ParameterValueError
    from synth_probe.synths.registry import get_synth
    from synth_probe.tuning import load_study

    cfg = TuneConfig(synth="noisemaker", param="cutoff", data=str(tiny), studies_root=str(tmp_path))
    ctx = TuneContext(cfg, get_synth("noisemaker"))
    storage = open_storage(None, tmp_path / "study.journal")
    load_study(cfg, ctx, storage)
    load_study(cfg, ctx, storage)  # the same settings: the study goes on
    v = features_module.DESCRIPTORS_VERSION
    monkeypatch.setattr(features_module, "DESCRIPTORS_VERSION", v + 1)
    with pytest.raises(ParameterValueError, match=f"descriptors: study {v}, now {v + 1}"):
        load_study(cfg, ctx, storage)
    # and the cached handcrafted features are kept per version
    ctx.features.get("hand")
    assert (ctx.features.dir / f"hand-v{v + 1}-n{ctx.features.n}.npy").is_file()


def test_cnn_gets_the_same_input_in_tune_train_and_predictability(tiny, tmp_path):
    # one builder: the CNN's untuned default in a study, `train cnn` and the predictability suite read the
    # same log-mel image (same transformer parameters, same input shape)
    from synth_probe.dataset import load_dataset
    from synth_probe.pipeline import build_pipeline
    from synth_probe.predictability import suite_feature_steps
    from synth_probe.synths.registry import get_synth
    from synth_probe.tuning.space import Fixed, default_trial_params, trial_spec

    cfg = TuneConfig(synth="noisemaker", param="cutoff", data=str(tiny), studies_root=str(tmp_path),
                     families=["cnn"])
    ctx = TuneContext(cfg, get_synth("noisemaker"))
    family, params, fs = trial_spec(Fixed(default_trial_params("cnn")), ["cnn"], cfg.max_epochs, cfg.max_rounds)
    tune_step = ctx.features.pipeline_steps(fs)[0][1]
    tune_est = ctx.estimator(family, params, fs)

    st = load_dataset(tiny).settings
    suite_step = suite_feature_steps(st.sample_rate, st.note_length, jobs=2)["logmel"]
    train = build_pipeline("cnn", sample_rate=st.sample_rate, note_length=st.note_length, n_samples=st.n_samples)

    def config(step) -> dict:  # n_jobs is how many processes compute the features, not what they compute
        return {k: v for k, v in step.get_params().items() if k != "n_jobs"}

    assert config(tune_step) == config(suite_step) == config(train.steps[0][1])
    assert tune_step.hop_length == 512 and tune_step.n_mels == 64 and tune_step.time_pool is None
    shape = (suite_step.n_bins(), suite_step.n_frames(st.n_samples))
    assert tune_est.input_shape == shape == train.steps[-1][1].input_shape
    # and the features the study fits on are what that step makes of the audio
    X = ctx.features.matrix(fs)
    np.testing.assert_allclose(X[:3], suite_step.fit(ctx.ds.audio[0:2]).transform(ctx.ds.audio[0:3]), rtol=1e-5,
                               atol=1e-4)


# --------------------------------------------------------------------------- budget, verdict and the page
@pytest.mark.needs("chromium")
def test_tune_prints_its_budget_and_a_verdict_with_reasons(tiny, tmp_path, feature_cache, capsys):
    from test_report_browser import assert_layout_holds

    studies, reports = tmp_path / "studies", tmp_path / "reports"
    _warm(studies, feature_cache)
    reports.mkdir()
    (reports / "identifiability.json").write_text("{not json")  # read defensively: as if not measured
    rc = main(["tune", "noisemaker", "--param", "cutoff", "--data", str(tiny), "--studies", str(studies), "--out",
               str(reports), "--families", "gbm,knn", "--max-rounds", "40", "--trials", "4", "--jobs", "1"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "tune cutoff: budget 4 trial(s) on 1 worker(s)" in err
    assert "[worker 0] trial 3" in err and "4/4 trials" in err
    summary = json.loads((reports / "tune_cutoff.json").read_text())
    v = summary["verdict"]
    gain = summary["gain_test"]["over_default"]
    assert v["headline"] in out and f"{gain:+.3f}" in v["headline"]
    noise = summary["gain_noise"]
    assert noise["n_rows"] == summary["fingerprint"]["n_test"] and noise["low"] <= noise["high"]
    # the reasons come exactly when tuning did not beat the default beyond the test rows' noise
    assert bool(v["reasons"]) == (not v["beats"] or noise["low"] <= 0.0 <= noise["high"])
    if v["reasons"]:
        assert "why: The gain's sampling noise on the" in out and "not measured" in out
        assert "try: more data" in out
    assert "test_pred" not in json.dumps(summary)
    html = (reports / "tune_cutoff.html").read_text()
    assert 'id="verdict"' in html and 'id="history-legend"' in html and 'href="index.html"' in html
    assert_layout_holds(tmp_path, reports / "tune_cutoff.html")


def test_verdict_gives_reasons_only_when_the_gain_is_not_beyond_noise(tmp_path):
    from synth_probe.tuning.verdict import gain_noise, in_context_estimate, verdict

    rng = np.random.default_rng(0)
    truth = rng.uniform(size=200)
    good, bad = truth + rng.normal(0, 0.05, 200), truth + rng.normal(0, 0.3, 200)

    def r2(rows, pred):
        t = truth[rows]
        return 1 - np.mean((pred - t) ** 2) / np.var(t)

    rows = np.arange(200)
    clear = gain_noise(r2, rows, good, bad)
    assert clear["low"] > 0 and clear["n_rows"] == 200 and clear["se"] > 0
    same = gain_noise(r2, rows, good, good + rng.normal(0, 0.01, 200))
    assert same["low"] < 0.01 and same["high"] > -0.01
    assert gain_noise(r2, rows[:3], good[:3], bad[:3]) is None  # too few rows to resample

    base = {"metric": "r2", "n_trials": 40, "fingerprint": {"n_val": 100, "n_train": 300},
            "default": {"test": 0.58}, "gain_val": {"over_default": 0.02}}
    won = verdict({**base, "gain_test": {"over_default": 0.1}, "beats_default": True, "gain_noise": clear})
    assert won["beats"] and not won["reasons"] and "beats the untuned default by +0.100" in won["headline"]
    lost = verdict({**base, "gain_test": {"over_default": -0.013}, "beats_default": False,
                    "gain_noise": {"se": 0.02, "low": -0.05, "high": 0.03, "n_rows": 200, "n_boot": 200}},
                   {"distinct": 0.81, "resolvable_r2": 0.6, "sampler": "timbral"})
    assert "does not beat" in lost["headline"] and "within the test rows' sampling noise" in lost["headline"]
    text = " ".join(lost["reasons"])
    assert "200 test rows" in text and "best of 40 trials on the same 100" in text
    assert "distinct (audible, no sound-alike twin) in 81 %" in text and "already nearly reaches" in text
    assert any(n.startswith("more data") for n in lost["next"])

    assert in_context_estimate(tmp_path, "cutoff") is None  # no file
    (tmp_path / "identifiability.json").write_text(json.dumps({"config": {"sampler": "timbral"}, "summary": [
        {"parameter": "cutoff", "distinct": 0.81, "resolvable_r2": 0.6}, {"parameter": "osc1waveform"}]}))
    est = in_context_estimate(tmp_path, "cutoff")
    assert est["distinct"] == pytest.approx(0.81) and est["resolvable_r2"] == pytest.approx(0.6)
    assert in_context_estimate(tmp_path, "resonance") is None
