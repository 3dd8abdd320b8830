"""The README's headline sensitivity counts are what `make sensitivity` gives today.

Runs the same study as `make sensitivity` (the real emulation, every default) and compares its class
counts with the sentence of the README that states them; a change to the emulation or the study
that moves them fails here until the README says the new counts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from synth_probe.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
HEADLINE = re.compile(r"On the emulation \(`make sensitivity`, seed 0[^)]*\): (\d+) strong, (\d+) weak, (\d+)\s+inaudible")


def test_readme_states_the_counts_of_make_sensitivity(tmp_path: Path) -> None:
    found = HEADLINE.search(README.read_text(encoding="utf-8"))
    assert found, "the README's sentence 'On the emulation (`make sensitivity`, seed 0...): N strong, ...' is missing"
    stated = tuple(int(g) for g in found.groups())
    assert main(["sensitivity", "noisemaker", "--jobs", "2", "--out", str(tmp_path), "--quiet"]) == 0
    params = json.loads((tmp_path / "sensitivity.json").read_text(encoding="utf-8"))["params"]
    counts = tuple(sum(p["classification"] == c for p in params) for c in ("strong", "weak", "inaudible"))
    assert counts == stated, f"make sensitivity gives {counts} (strong, weak, inaudible); the README says {stated}"
