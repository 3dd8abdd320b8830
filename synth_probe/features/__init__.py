"""Audio features as scikit-learn transformers (audio rows in, 2-D feature rows out)."""
from __future__ import annotations

from synth_probe.features.handcrafted import MOD_BANDS, HandcraftedFeatures
from synth_probe.features.spectrogram import LogMelSpectrogram, check_audio_rows

__all__ = ["HandcraftedFeatures", "LogMelSpectrogram", "MOD_BANDS", "check_audio_rows"]
