"""Audio features as scikit-learn transformers (audio rows in, 2-D feature rows out).

The per-render steps check their audio with :func:`synth_probe.frontend.check_audio` and compute on the feature
front-end of :mod:`synth_probe.frontend`, except :class:`MatchingSpectrogram`, which computes the distance front-end's
spectrograms so that the L1 distance of its rows is the match distance.
"""
from __future__ import annotations

from synth_probe.features.handcrafted import DESCRIPTORS_VERSION, MOD_BANDS, HandcraftedFeatures, uses_handcrafted
from synth_probe.features.matching import MatchingSpectrogram
from synth_probe.features.probe import ProbeFeatures
from synth_probe.features.spectrogram import LogMelSpectrogram

__all__ = ["DESCRIPTORS_VERSION", "HandcraftedFeatures", "LogMelSpectrogram", "MOD_BANDS", "MatchingSpectrogram",
           "ProbeFeatures", "uses_handcrafted"]
