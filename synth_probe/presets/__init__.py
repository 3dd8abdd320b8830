"""Human-made presets of real synths, read from the synths' own files and mapped into unit space.

:mod:`synth_probe.presets.amsynth` reads amsynth's ``.bank`` files (the factory
banks in ``/usr/share/amsynth/banks``) and maps their values, stored in
amsynth's internal units, onto the plugin's normalized parameters.
"""
from __future__ import annotations

from synth_probe.presets.amsynth import (
    AMSYNTH_PARAMS,
    FACTORY_BANK_DIR,
    AmsynthParam,
    Preset,
    load_factory_presets,
    preset_to_unit,
    read_bank,
    unit_to_preset,
    write_bank,
)

__all__ = [
    "AMSYNTH_PARAMS",
    "FACTORY_BANK_DIR",
    "AmsynthParam",
    "Preset",
    "load_factory_presets",
    "preset_to_unit",
    "read_bank",
    "unit_to_preset",
    "write_bank",
]
