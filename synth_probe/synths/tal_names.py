"""Map a real TAL-NoiseMaker's host parameters onto the emulation's 88 canonical names.

Four layouts exist (``shared/reference/tal-noisemaker.md`` §1):

* ``v4`` — commercial builds 4.x: 88 slots with the GPL lower-case names;
* ``v5`` — commercial builds 5.x: 88 slots with display names, some of them wrong:
  slot 5 is spelled "Fitler Keyfollow", slot 24 says "Osc 1 Waveform" but is Osc 2's
  waveform, 38 says "Osc 2 PW" but is Osc 1's pulse width, 39 says "Osc 2 Phase" but
  is Osc 1's phase;
* either of them hosted as VST3, which adds JUCE's "Bypass" at slot 88 (held at 0,
  not exposed);
* ``gpl`` — the GPL port (DISTRHO-Ports): 92 slots, GUI tab state at 77–80 (not
  exposed, never written), filter drive and the delay block at 81–89 (canonical
  77–85) and the preset load/save buttons at 90/91 (never written; the canonical
  ``midiclear``/``midilock`` slots have no audio function and stay unmapped).

The map is positional — the duplicated v5 labels make names useless as keys — and
a layout is accepted only when most of the slots' names match what that layout
reports there.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

__all__ = [
    "CANONICAL_NAMES",
    "V4_NAMES",
    "V5_NAMES",
    "GPL_NAMES",
    "TalNameMap",
    "match_tal_layout",
    "normalize_name",
]

#: the emulation's names, in commercial host order (0..87)
CANONICAL_NAMES: tuple[str, ...] = tuple(s.name for s in NOISEMAKER_SPECS)

# v5 display names, host order 0..87 (reference §1, table column "host name (v5)")
V5_NAMES: tuple[str, ...] = (
    "-", "Master Volume", "Filter Type", "Filter Cutoff", "Filter Resonance",
    "Fitler Keyfollow", "Filter Contour", "Filter Attack", "Filter Decay", "Filter Sustain",
    "Filter Release", "Amp Attack", "Amp Decay", "Amp Sustain", "Amp Release",
    "Osc 1 Volume", "Osc 2 Volume", "Osc 3 Volume", "Osc Mastertune", "Osc 1 Tune",
    "Osc 2 Tune", "Osc 1 Fine Tune", "Osc 2 Fine Tune", "Osc 1 Waveform",
    "Osc 1 Waveform",  # 24: really Osc 2's waveform
    "Osc Sync", "Lfo 1 Waveform", "Lfo 2 Waveform", "Lfo 1 Rate", "Lfo 2 Rate",
    "Lfo 1 Amount", "Lfo 2 Amount", "Lfo 1 Destination", "Lfo 2 Destination", "Lfo 1 Phase",
    "Lfo 2 Phase", "Osc 2 FM", "Osc 2 Phase",
    "Osc 2 PW",  # 38: really Osc 1's pulse width
    "Osc 2 Phase",  # 39: really Osc 1's phase
    "Transpose", "Free Ad Attack", "Free Ad Decay", "Free Ad Amount", "Free Ad Destination",
    "Lfo 1 Sync", "Lfo 1 Keytrigger", "Lfo 2 Sync", "Lfo 2 Keytrigger", "Portamento Amount",
    "Portamento Mode", "Voices", "Velocity Volume", "Velocity Contour", "Velocity Filter",
    "Pitchwheel Cutoff", "Pitchwheel Pitch", "Ringmodulation", "Chorus 1 Enable",
    "Chorus 2 Enable", "Reverb Wet", "Reverb Decay", "Reverb Pre Delay", "Reverb High Cut",
    "Reverb Low Cut", "Osc Bitcrusher", "Master High Pass", "Master Detune", "Vintage Noise",
    "Panic", "MIDI LEARN", "Envelope Destination", "Envelope Speed", "Envelope Amount",
    "Envelope One Shot Mode", "Envelope Fix Tempo", "Envelope Reset", "Filter Drive",
    "Delay Wet", "Delay Time", "Delay Sync", "Delay x2 L", "Delay x2 R", "Delay High Shelf",
    "Delay Low Shelf", "Delay Feedback", "MIDI Clear", "MIDI Lock",
)

#: v4 reports the GPL lower-case names in the commercial order; the canonical names are those
V4_NAMES: tuple[str, ...] = CANONICAL_NAMES

_GPL_TABS = ("", "", "", "")  # tab1open..tab4open report empty names
#: the GPL port's 92 slot names (empty where getParameterName returns "")
GPL_NAMES: tuple[str, ...] = (
    ("unused",) + CANONICAL_NAMES[1:69] + ("", "unused") + CANONICAL_NAMES[71:76] + ("",)
    + _GPL_TABS + CANONICAL_NAMES[77:86] + ("", "")
)

BYPASS = "bypass"
#: fraction of comparable slots whose names must match for a layout to be accepted
MIN_MATCH = 0.75


def normalize_name(name: str) -> str:
    """Lower-case letters and digits only: ``"Osc 1 Fine-Tune"`` -> ``"osc1finetune"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _same(a: str, b: str) -> bool:
    na, nb = normalize_name(a), normalize_name(b)
    if na == nb:
        return True
    return bool(na and nb) and difflib.SequenceMatcher(None, na, nb).ratio() >= 0.85


@dataclass(frozen=True)
class TalNameMap:
    """Where each canonical TAL-NoiseMaker parameter lives in a real plugin.

    Attributes
    ----------
    layout : str
        ``"v4"``, ``"v5"`` or ``"gpl"``, with ``"+bypass"`` for a VST3 build.
    host_slots : tuple of (int or None)
        For canonical index ``k`` (0..87), the plugin's parameter index, or ``None``
        when the plugin has no such slot (the value is accepted and not written).
    fixed : dict of int to float
        Plugin slots that are not exposed and are set to this value before every render
        (VST3 "Bypass" -> 0).
    hidden : tuple of int
        Plugin slots neither exposed nor written (GUI tab state, preset buttons).
    mismatches : tuple of str
        Slots whose name differs from what the layout reports there, for the record.
    score : float
        Fraction of comparable slots whose names matched.
    """

    layout: str
    host_slots: tuple[int | None, ...]
    fixed: dict[int, float] = field(default_factory=dict)
    hidden: tuple[int, ...] = ()
    mismatches: tuple[str, ...] = ()
    score: float = 1.0


def _score(names: Sequence[str], expected: Sequence[str]) -> tuple[float, list[str]]:
    hits, total, miss = 0, 0, []
    for i, (got, want) in enumerate(zip(names, expected)):
        if not normalize_name(want) or normalize_name(want) in {"unused"}:
            continue  # slots whose name carries no information
        total += 1
        if _same(got, want):
            hits += 1
        else:
            miss.append(f"slot {i}: plugin says {got!r}, layout expects {want!r}")
    return (hits / total if total else 0.0), miss


def match_tal_layout(names: Sequence[str]) -> TalNameMap | None:
    """Recognise a TAL-NoiseMaker from its parameter names (host order).

    Parameters
    ----------
    names : sequence of str
        The plugin's parameter names, index 0 first.

    Returns
    -------
    TalNameMap or None
        The map onto :data:`CANONICAL_NAMES`, or ``None`` when ``names`` is not one of
        the known TAL-NoiseMaker layouts (fewer than ``MIN_MATCH`` of the names agree).
    """
    names = [str(n) for n in names]
    n = len(names)
    candidates: list[TalNameMap] = []
    if n in (88, 89):
        bypass = n == 89 and normalize_name(names[88]) == BYPASS
        if n == 89 and not bypass:
            return None
        for layout, expected in (("v4", V4_NAMES), ("v5", V5_NAMES)):
            score, miss = _score(names[:88], expected)
            candidates.append(
                TalNameMap(
                    layout=layout + ("+bypass" if bypass else ""),
                    host_slots=tuple(range(88)),
                    fixed={88: 0.0} if bypass else {},
                    mismatches=tuple(miss),
                    score=score,
                )
            )
    elif n == 92:
        score, miss = _score(names, GPL_NAMES)
        slots: list[int | None] = list(range(77)) + list(range(81, 90)) + [None, None]
        candidates.append(
            TalNameMap(
                layout="gpl",
                host_slots=tuple(slots),
                hidden=(77, 78, 79, 80, 90, 91),
                mismatches=tuple(miss),
                score=score,
            )
        )
    if not candidates:
        return None
    best = max(candidates, key=lambda m: m.score)
    if best.score < MIN_MATCH:
        return None
    # anchors: the filter cutoff and the amp envelope must be where every layout has them
    anchors = {3: ("cutoff", "filtercutoff"), 11: ("ampattack",), 14: ("amprelease",)}
    for slot, ok in anchors.items():
        if normalize_name(names[slot]) not in ok:
            return None
    assert len(best.host_slots) == len(CANONICAL_NAMES)
    return best
