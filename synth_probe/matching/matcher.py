"""The whole match: load a trained model, predict a patch, refine it, measure it, write it.

:mod:`synth_probe.models.io` is imported where a model is loaded: it loads scikit-learn and the
estimator families (about a second), which the search and the target checks do not need.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

from synth_probe.errors import AudioError, DatasetError, ModelFileError, ParameterValueError, UnknownParameterError
from synth_probe.fileio import read_json
from synth_probe.matching.samples import closest_draw, draws_patches, sample_patches
from synth_probe.matching.search import MatchObjective, SearchResult, refine
from synth_probe.matching.target import PitchEstimate, PreparedAudio, estimate_pitch, note_for_pitch
from synth_probe.presets.amsynth import AMSYNTH_NAMES, unit_to_preset, write_bank
from synth_probe.spectral import mfcc_distance, multi_resolution_log_mel_distance, spectral_convergence
from synth_probe.synths.base import RenderSettings, Synth

__all__ = [
    "DEFAULT_SAMPLES", "DISTANCE_LABELS", "MatchModel", "MatchResult", "audio_distances", "load_match_model",
    "predict_patch", "match", "write_match",
]

#: draws a posterior model's match starts from, unless told otherwise
DEFAULT_SAMPLES = 8

# ============================================================================ distances
def audio_distances(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The three matching distances of ``estimate`` from ``target`` (equal-length mono clips).

    Returns
    -------
    dict
        ``log_mel`` (multi-resolution log-mel distance, dB), ``spectral_convergence``
        and ``mfcc`` (mean absolute MFCC difference).
    """
    return {
        "log_mel": float(multi_resolution_log_mel_distance(target, estimate, sample_rate)),
        "spectral_convergence": float(spectral_convergence(target, estimate)),
        "mfcc": float(mfcc_distance(target, estimate, sample_rate)),
    }


DISTANCE_LABELS = {
    "log_mel": "multi-resolution log-mel distance (dB)",
    "spectral_convergence": "spectral convergence",
    "mfcc": "MFCC distance",
}


# ============================================================================ the model
@dataclass
class MatchModel:
    """A trained model plus what it was trained on.

    Attributes
    ----------
    pipeline : object
        Fitted Pipeline (features + estimator) or estimator; ``predict`` takes audio rows.
    columns : list of str
        The parameters it predicts.
    settings : RenderSettings
        Note, lengths and sample rate of its training renders.
    synth : str or None
        The synth it was trained for (name or plugin path); only a built-in name is ever
        opened from here (:func:`synth_probe.models.io.choose_synth`).
    synth_sha256 : str or None
        sha256 of the plugin binary it was trained with (None for built-in synths).
    path : str
    """

    pipeline: Any
    columns: list[str]
    settings: RenderSettings
    synth: str | None = None
    path: str = ""
    synth_sha256: str | None = None


def _settings_from(raw: Mapping[str, Any]) -> RenderSettings:
    keys = ("note", "velocity", "note_length", "render_length", "sample_rate")
    return RenderSettings(**{k: raw[k] for k in keys if k in raw})


def load_match_model(path: str | os.PathLike) -> MatchModel:
    """Load a model saved by ``synth-probe train`` (or :func:`synth_probe.models.save_model`).

    The render settings come from the header's ``metadata.render``, or else from the
    manifest of the dataset named in ``metadata.data``.

    Raises
    ------
    ModelFileError
        Not a saved model, or its render settings cannot be found.
    """
    from synth_probe.models.io import load_model, read_header  # heavy: loads scikit-learn

    header = read_header(path)
    meta = header.get("metadata") or {}
    raw = meta.get("render")
    if raw is None and meta.get("data"):
        manifest = Path(str(meta["data"])) / "manifest.json"
        try:
            raw = read_json(manifest, error=DatasetError, what="dataset manifest").get("render")
        except DatasetError:
            raw = None
    if not isinstance(raw, Mapping):
        raise ModelFileError(
            f"model {str(path)!r} does not record the render settings it was trained with (metadata.render), "
            f"and its dataset {meta.get('data')!r} cannot be read to find them"
        )
    pipeline = load_model(path)
    columns = list(header.get("columns") or meta.get("params") or [])
    if not columns:
        raise ModelFileError(f"model {str(path)!r} does not list the parameters it predicts")
    return MatchModel(pipeline, columns, _settings_from(raw), header.get("synth"), str(path),
                      header.get("synth_sha256"))


def predict_patch(model: MatchModel, audio: np.ndarray, synth: Synth) -> dict[str, float]:
    """Predict a full patch for one clip: the model's columns, the synth's defaults elsewhere.

    Parameters
    ----------
    model : MatchModel
    audio : np.ndarray [shape=(n_samples,)] or [shape=(n_clips, n_samples)]
        At the model's sample rate and length.
    synth : Synth

    Returns
    -------
    patch : dict of str to float, or list of such dicts for 2-D input
        Unit values, discrete parameters snapped to their choices.
    """
    x = np.asarray(audio, dtype=np.float32)
    single = x.ndim == 1
    rows = x[None, :] if single else x
    pred = model.pipeline.predict(rows)
    frame = pred if isinstance(pred, pd.DataFrame) else pd.DataFrame(np.atleast_2d(pred), columns=model.columns)
    base = synth.default_patch()
    specs = {s.name: s for s in synth.specs}
    out = []
    for _, row in frame.iterrows():
        patch = dict(base)
        for c in model.columns:
            if c not in specs:
                raise UnknownParameterError(c, synth.param_names, synth=synth.name)
            v = float(np.clip(row[c], 0.0, 1.0))
            patch[c] = specs[c].quantize(v)
        out.append(patch)
    return out[0] if single else out


# ============================================================================ the whole match
@dataclass
class MatchResult:
    """The outcome of :func:`match`.

    Attributes
    ----------
    patch : dict of str to float
        The final patch (unit values).
    start_patch : dict of str to float
        The model's prediction (or the synth's defaults without a model).
    audio, target : np.ndarray [shape=(n_samples,)]
        The final patch's render and the prepared target.
    distances, start_distances : dict of str to float
        :func:`audio_distances` of the final and the start patch.
    settings : RenderSettings
        How the patches were rendered (the note chosen for the target's pitch).
    search : SearchResult or None
    notices : list of str
    pitch : PitchEstimate or None
    start_audio : np.ndarray [shape=(n_samples,)] or None
        The start patch's render.
    sample_distances : list of float
        Log-mel distance (dB) of each posterior draw the start was chosen from (empty
        for a regression model; the start is the closest draw).
    """

    patch: dict[str, float]
    start_patch: dict[str, float]
    audio: np.ndarray
    target: np.ndarray
    distances: dict[str, float]
    start_distances: dict[str, float]
    settings: RenderSettings
    search: SearchResult | None = None
    notices: list[str] = field(default_factory=list)
    pitch: PitchEstimate | None = None
    start_audio: np.ndarray | None = None
    sample_distances: list[float] = field(default_factory=list)


def _note_settings(target: PreparedAudio, settings: RenderSettings, note: int | None, estimate_note: bool,
                   notices: list[str]) -> tuple[RenderSettings, PitchEstimate | None]:
    """The render settings at the note to match with (given, estimated from the pitch, or the training note)."""
    pitch = None
    if note is None and estimate_note:
        pitch = estimate_pitch(target.audio, target.sample_rate)
        if pitch.stable:
            note = note_for_pitch(pitch.midi)
            notices.append(f"pitch {pitch.f0:.1f} Hz (MIDI {pitch.midi:.2f}): rendering note {note}")
        else:
            notices.append(
                f"no steady pitch (frames spread over {pitch.spread:.1f} semitones); rendering the training "
                f"note {settings.note}"
            )
    if note is not None:
        note = int(note)
        if not (0 <= note <= 127):
            raise ParameterValueError(f"note must be a MIDI note 0..127, got {note}")
        if note != settings.note:
            settings = RenderSettings(note, settings.velocity, settings.note_length, settings.render_length,
                                      settings.sample_rate)
    return settings, pitch


def _model_input(model: MatchModel, target: PreparedAudio, settings: RenderSettings, notices: list[str]) -> np.ndarray:
    """The target as the model saw its training sounds: shifted to its training note when rendered at another."""
    model_input = target.audio
    shift = (model.settings.note - settings.note)
    if shift:
        model_input = librosa.effects.pitch_shift(target.audio.astype(np.float64), sr=target.sample_rate,
                                                  n_steps=float(shift)).astype(np.float32)
        notices.append(f"the model saw the target shifted {shift:+d} semitones to its training note "
                       f"{model.settings.note}")
    return model_input


def match(
    target: PreparedAudio,
    synth: Synth,
    model: MatchModel | None,
    *,
    settings: RenderSettings | None = None,
    note: int | None = None,
    refine_budget: int = 0,
    method: str = "hill",
    seed: int = 0,
    estimate_note: bool = True,
    samples: int | None = None,
) -> MatchResult:
    """Match a prepared target: predict, render, optionally refine, measure.

    A posterior model (one that draws patches,
    :class:`~synth_probe.models.posterior.FlowMatchingPosterior`) starts from the
    closest of ``samples`` drawn patches instead of one prediction. The draws count
    in the render budget: the first draw takes the place of the prediction's render
    and the other ``samples - 1`` come out of ``refine_budget``, so the search gets
    ``max(0, refine_budget - (samples - 1))`` renders and the match makes
    ``max(samples, refine_budget + 1)`` in all (a regression model: ``refine_budget + 1``).

    Parameters
    ----------
    target : PreparedAudio
        At the model's sample rate and length.
    synth : Synth
    model : MatchModel or None
        None starts from the synth's default patch.
    settings : RenderSettings, optional
        Default: the model's training settings.
    note : int, optional
        Render note; by default estimated from the target's pitch (``estimate_note``)
        or the training note.
    refine_budget : int
        Renders for the local search (0: model only).
    method : {"hill", "cmaes"}
    seed : int
        Search, render and (for a posterior) draw seed.
    samples : int, optional
        Draws of a posterior model (default :data:`DEFAULT_SAMPLES`); a regression
        model takes only ``None`` or 1.

    Returns
    -------
    MatchResult

    Raises
    ------
    ParameterValueError
        ``samples`` above 1 with a model that cannot draw patches, or below 1.
    """
    if settings is None:
        if model is None:
            raise ParameterValueError("match needs render settings when no model is given")
        settings = model.settings
    notices = list(target.notices)
    if target.sample_rate != settings.sample_rate or target.audio.shape[0] != settings.n_samples:
        raise AudioError(
            f"target is {target.audio.shape[0]} samples at {target.sample_rate} Hz; the renders are "
            f"{settings.n_samples} samples at {settings.sample_rate} Hz — prepare it with prepare_audio"
        )
    settings, pitch = _note_settings(target, settings, note, estimate_note, notices)
    objective = MatchObjective(synth, target.audio, settings, seed=seed)
    if model is not None:
        model_input = _model_input(model, target, settings, notices)
        start_vec, budget, draw_d = _model_start(model, model_input, synth, objective, int(refine_budget), samples,
                                                 seed)
    else:
        start_vec, budget, draw_d = objective.snap(synth.patch_vector(synth.default_patch())), int(refine_budget), []
    d0 = objective(start_vec)
    start_audio = objective.audio_for(start_vec)
    start_distances = audio_distances(target.audio, start_audio, settings.sample_rate)
    search = None
    final_vec, final_audio, final_d = start_vec, start_audio, start_distances
    if budget > 0:
        search = refine(objective, start_vec, budget, method=method, seed=seed, start_distance=d0)
        if search.distance < d0:
            final_vec = search.vector
            final_audio = objective.audio_for(final_vec)
            final_d = audio_distances(target.audio, final_audio, settings.sample_rate)
    patch = {s.name: float(v) for s, v in zip(synth.specs, objective.snap(final_vec))}
    start_patch = {s.name: float(v) for s, v in zip(synth.specs, start_vec)}
    return MatchResult(patch, start_patch, final_audio, target.audio, final_d, start_distances, settings,
                       search, notices, pitch, start_audio, [float(d) for d in draw_d])


def _model_start(model: MatchModel, audio: np.ndarray, synth: Synth, objective: MatchObjective, refine_budget: int,
                 samples: int | None, seed: int) -> tuple[np.ndarray, int, list[float]]:
    """The start vector ``(n_params,)`` snapped, the search's renders, and the draws' distances (posterior only)."""
    if samples is not None and (isinstance(samples, bool) or int(samples) < 1):
        raise ParameterValueError(f"samples must be a number of draws >= 1, got {samples!r}")
    if not draws_patches(model.pipeline):
        if samples not in (None, 1):
            raise ParameterValueError(
                f"drawing {samples} patches needs a posterior model (family 'posterior'); the model at "
                f"{model.path!r} gives one prediction per sound")
        return objective.snap(synth.patch_vector(predict_patch(model, audio, synth))), refine_budget, []
    k = DEFAULT_SAMPLES if samples is None else int(samples)
    vectors = sample_patches(model.pipeline, synth, np.asarray(audio, dtype=np.float32)[None, :], k,
                             random_state=seed)[0]
    start, dists, _ = closest_draw(objective, vectors)
    return start, max(0, refine_budget - (k - 1)), list(dists)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    # 32-bit float, like `synth-probe render`: a render above full scale (the real TAL-NoiseMaker and
    # its emulation have no limiter) keeps its true values instead of being clipped
    sf.write(str(path), np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="FLOAT")


def write_match(result: MatchResult, synth: Synth, out: str | os.PathLike, *, extra: Mapping[str, Any] | None = None
                ) -> dict[str, Path]:
    """Write a match into folder ``out``.

    Files: ``patch.json`` (``params``: unit values, loadable by ``synth-probe render
    --patch``; ``display``: physical values; distances, settings, notices),
    ``render.wav`` (the final patch), ``start.wav`` (the model's patch, when a search
    replaced it), ``target.wav`` (the prepared target) and, for amsynth,
    ``patch.amSynth.bank`` (loadable by amsynth).

    Returns
    -------
    dict of str to Path
    """
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    sr = result.settings.sample_rate
    specs = {s.name: s for s in synth.specs}
    doc: dict[str, Any] = {
        "synth": synth.name,
        "settings": result.settings.to_dict(),
        "params": result.patch,
        "display": {k: specs[k].display(v) for k, v in result.patch.items()},
        "distances": result.distances,
        "model_distances": result.start_distances,
        "model_params": result.start_patch,
        "notices": result.notices,
    }
    if result.pitch is not None:
        doc["pitch"] = {"f0_hz": result.pitch.f0, "midi": result.pitch.midi, "spread_semitones": result.pitch.spread}
    if result.sample_distances:
        doc["samples"] = {"draws": len(result.sample_distances), "log_mel": result.sample_distances}
    if result.search is not None:
        s = result.search
        doc["refine"] = {"method": s.method, "renders": s.n_renders, "start_log_mel": s.start_distance,
                         "best_log_mel": s.distance, "seconds": round(s.seconds, 2)}
    if extra:
        doc.update(extra)
    paths = {"patch": d / "patch.json", "render": d / "render.wav", "target": d / "target.wav"}
    paths["patch"].write_text(json.dumps(doc, indent=2), encoding="utf-8")
    _write_wav(paths["render"], result.audio, sr)
    _write_wav(paths["target"], result.target, sr)
    if result.start_audio is not None and result.patch != result.start_patch:
        paths["start"] = d / "start.wav"
        _write_wav(paths["start"], result.start_audio, sr)
    if set(specs) <= set(AMSYNTH_NAMES):
        paths["bank"] = write_bank([unit_to_preset(result.patch, name="synth-probe match")], d / "patch.amSynth.bank")
    return paths

