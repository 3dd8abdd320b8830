"""Audio features as scikit-learn transformers (audio rows in, 2-D feature rows out)."""
from __future__ import annotations

from synth_probe.features.handcrafted import DESCRIPTORS_VERSION, MOD_BANDS, HandcraftedFeatures, uses_handcrafted
from synth_probe.features.spectrogram import LogMelSpectrogram, check_audio_rows

__all__ = [
    "DESCRIPTORS_VERSION", "HandcraftedFeatures", "LogMelSpectrogram", "MOD_BANDS", "check_audio_rows",
    "uses_handcrafted",
]
