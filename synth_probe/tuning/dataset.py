"""The dataset ``tune`` uses when none is given: which patches it holds, and rendering it once."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from synth_probe.dataset import generate, load_dataset
from synth_probe.errors import DatasetError, SamplerError
from synth_probe.predictability_probe import probe_slug
from synth_probe.probe import parse_probe
from synth_probe.sampling import make_plan
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.registry import get_synth

__all__ = ["default_plan", "default_dataset"]

def default_plan(synth: Any, param: str) -> tuple[str, str, dict[str, Any]]:
    """How ``tune`` samples its default dataset for ``param``: ``(sampler, name, generate keywords)``.

    * a parameter the ``timbral`` sampler varies: that sampler (``timbral``);
    * another TAL-NoiseMaker parameter (an effect, velocity, the bitcrusher...):
      the timbral sampler plus this parameter, with its gate held open (e.g.
      delay wet 0.5 for delay feedback; ``timbral+<param>``), so the study asks
      what a listener would: in a timbral patch with the effect on, what is
      the setting? (On the all-parameter sampler most such parameters sit
      behind dozens of other random effects and no model gets above chance);
    * a synth without TAL-NoiseMaker's names: every parameter random (``all``).
    """
    try:
        varied = make_plan(synth, "timbral").varied
    except (SamplerError, TypeError, ValueError):
        return "all", "all", {}
    if param in varied:
        return "timbral", "timbral", {}
    gate = {k: v for k, v in dict(synth.spec(param).gate or {}).items() if k not in varied and k != param}
    return "timbral", f"timbral+{param}", {"vary": list(varied) + [param], "fix": gate or None}


def default_dataset(synth_name: str, label: str, param: str, jobs: int, n: int, probe: Any = None) -> Path:
    """``data/<synth>-<plan>-default``: the dataset ``tune`` uses without --data (``n`` patches, made if missing).

    See :func:`default_plan` for which patches it holds. With a ``probe`` of several renders
    (:func:`synth_probe.probe.parse_probe`) each patch is rendered at each of them, in
    ``data/<synth>-<plan>-default-<probe>``.
    """
    probe = parse_probe(probe)
    synth = get_synth(synth_name)
    try:
        sampler, name, kw = default_plan(synth, param)
        slug = probe_slug(probe)
        out = Path("data") / (f"{label}-{name}-default" + (f"-{slug}" if slug else ""))
        try:
            ds = load_dataset(out)  # a corrupted shard falls through to generate, which re-renders it
            if param in ds.params.columns and ds.params[param].nunique() > 1 and ds.probe == probe:
                return out
        except DatasetError:
            pass
        settings = RenderSettings(note=60, velocity=100, note_length=1.0, render_length=1.5, sample_rate=22050)
        what = f"sampler {sampler}" + (f" + {param}, gate {kw['fix']}" if "vary" in kw else "")
        what += "" if probe.is_default else f", probe {probe.text()}"
        print(f"no --data: rendering the default dataset {out} ({n} patches, {what}, "
              f"22.05 kHz, 1.5 s) with {jobs} job(s)...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = generate(synth, out, int(n), sampler=sampler, seed=0, settings=settings, jobs=max(1, jobs), probe=probe,
                          progress=True, wait=True,  # tune processes started together share it
                          on_wait=lambda msg: print(msg, file=sys.stderr, flush=True), **kw)
        print(f"{result.summary()} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if not result.ok:
            raise DatasetError(f"the default dataset {out} could not be rendered: {result.summary()}")
        return out
    finally:
        synth.close()
