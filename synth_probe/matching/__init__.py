"""Sound matching: from a recording to a patch.

The pipeline of ``synth-probe match``, one module per stage:

1. :mod:`~synth_probe.matching.target` — :func:`load_audio` / :func:`prepare_audio` read
   the target and make it what the model was trained on (mono, the model's sample
   rate and length, onset at the start); every change is reported as a notice, and
   audio that cannot be matched raises :class:`~synth_probe.errors.AudioError`.
   :func:`estimate_pitch` finds the target's fundamental and :func:`note_for_pitch`
   the MIDI note to render it with.
2. :mod:`~synth_probe.matching.matcher` — :func:`predict_patch`: a trained model
   (``synth-probe train``) predicts the parameters it learned, the others keep the
   synth's defaults; :func:`match` runs the whole match and :func:`write_match` saves it.
   A posterior model (:mod:`~synth_probe.matching.samples`) instead draws several
   patches (:func:`sample_patches`) and starts from the closest (:func:`closest_draw`).
3. :mod:`~synth_probe.matching.search` — :func:`refine`: an optional local search from the
   prediction within a fixed number of renders, a hill climber (:func:`hill_climb`) or
   CMA-ES through Optuna (:func:`cmaes_search`). The start is the incumbent, so the
   result is never worse than the start.

Distances (:func:`audio_distances`) are those of :mod:`synth_probe.spectral`:
multi-resolution log-mel distance (dB; the search minimizes it), spectral
convergence and MFCC distance.
"""
from __future__ import annotations

from synth_probe.matching.matcher import (
    DEFAULT_SAMPLES,
    DISTANCE_LABELS,
    MatchModel,
    MatchResult,
    audio_distances,
    load_match_model,
    match,
    predict_patch,
    write_match,
)
from synth_probe.matching.samples import (
    base_vectors,
    closest_draw,
    closest_stored,
    draws_patches,
    sample_patches,
    whole_patches,
)
from synth_probe.matching.search import (
    SEARCH_METHODS,
    MatchObjective,
    ProbeObjective,
    SearchResult,
    cmaes_search,
    hill_climb,
    refine,
)
from synth_probe.matching.target import (
    NOTE_RANGE,
    PitchEstimate,
    PreparedAudio,
    estimate_pitch,
    load_audio,
    note_for_pitch,
    prepare_audio,
)

__all__ = [
    "DEFAULT_SAMPLES",
    "DISTANCE_LABELS",
    "NOTE_RANGE",
    "PreparedAudio",
    "PitchEstimate",
    "MatchModel",
    "MatchObjective",
    "ProbeObjective",
    "SearchResult",
    "MatchResult",
    "SEARCH_METHODS",
    "load_audio",
    "prepare_audio",
    "estimate_pitch",
    "note_for_pitch",
    "audio_distances",
    "load_match_model",
    "predict_patch",
    "hill_climb",
    "cmaes_search",
    "refine",
    "sample_patches",
    "draws_patches",
    "closest_draw",
    "closest_stored",
    "base_vectors",
    "whole_patches",
    "match",
    "write_match",
]
