from __future__ import annotations

import numpy as np
import pytest

from synth_probe.errors import ParameterValueError, SamplerError, UnknownParameterError
from synth_probe.sampling import SAMPLERS, make_plan, render_seeds, sample_patches, sampler_presets
from synth_probe.synths.base import ParamSpec, SamplerPreset, Synth
from synth_probe.synths.noisemaker import NoiseMaker
from synth_probe.synths.noisemaker.samplers import INVERSYNTH_GRIDS, TIMBRAL_FIXED, TIMBRAL_HELD, TIMBRAL_VARIED


@pytest.fixture(scope="module")
def nm():
    return NoiseMaker()  # specs only: nothing here renders


class TwoKnobs(Synth):
    """A synth with other parameter names (sampling never renders)."""

    name = "twoknobs"
    _specs = (
        ParamSpec(0, "gain", "continuous", 0.5, "master"),
        ParamSpec(1, "wave", "discrete", 0.0, "osc", choices=("a", "b", "c"), choice_values=(0.0, 0.5, 1.0)),
    )

    @property
    def specs(self):
        return self._specs

    def _render_unit(self, vec, settings, seed):  # pragma: no cover - never called
        raise NotImplementedError


def test_row_depends_only_on_seed_and_index(nm):
    a = sample_patches(nm, 10, seed=7)
    b = sample_patches(nm, 4, seed=7, start=6)
    assert list(b.index) == [6, 7, 8, 9]
    np.testing.assert_array_equal(a.loc[6:9].to_numpy(), b.to_numpy())
    c = sample_patches(nm, 10, seed=8)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    np.testing.assert_array_equal(render_seeds(7, 6, 4), render_seeds(7, 0, 10)[6:])
    plan = make_plan(nm, "all")
    _, seeds = plan.rows(7, 0, 10)
    np.testing.assert_array_equal(seeds, render_seeds(7, 0, 10))
    assert seeds.min() >= 0 and seeds.max() < 2**31 and len(set(seeds)) == 10


def test_all_sampler_distributions(nm):
    df = sample_patches(nm, 3000, seed=1)
    assert list(df.columns) == nm.param_names
    for s in nm.specs:
        col = df[s.name].to_numpy()
        if s.is_discrete:
            assert set(np.unique(col)) <= set(s.choice_values), s.name
            counts = np.array([(col == v).sum() for v in s.choice_values])
            expect = 3000 / s.n_choices
            assert np.all(np.abs(counts - expect) < 6 * np.sqrt(expect)), (s.name, counts)
        else:
            assert col.min() >= 0 and col.max() < 1
            assert abs(col.mean() - 0.5) < 0.03, s.name
            assert len(np.unique(col)) == 3000


def test_timbral_varies_exactly_43(nm):
    assert len(TIMBRAL_VARIED) == 43
    assert set(TIMBRAL_VARIED) | set(TIMBRAL_HELD) | set(TIMBRAL_FIXED) == set(nm.param_names)
    assert not set(TIMBRAL_VARIED) & set(TIMBRAL_HELD)
    assert not (set(TIMBRAL_VARIED) | set(TIMBRAL_HELD)) & set(TIMBRAL_FIXED)
    df = sample_patches(nm, 200, sampler="timbral", seed=2)
    varied = [c for c in df.columns if df[c].nunique() > 1]
    assert sorted(varied) == sorted(TIMBRAL_VARIED)
    for name in TIMBRAL_HELD:
        assert (df[name] == nm.spec(name).default).all(), name
    # held at defaults means: effects off, bitcrusher off
    assert (df["reverbwet"] == 0).all() and (df["delaywet"] == 0).all() and (df["oscbitcrusher"] == 1).all()
    # key-triggered LFOs, so that the phase knobs are audible
    assert (df["lfo1keytrigger"] == 1).all() and (df["lfo2keytrigger"] == 1).all()


def test_inversynth_grids(nm):
    df = sample_patches(nm, 400, sampler="inversynth", seed=3)
    assert sorted(c for c in df.columns if df[c].nunique() > 1) == sorted(INVERSYNTH_GRIDS)
    assert (df["lfo1keytrigger"] == 1).all() and (df["lfo2keytrigger"] == 1).all()
    assert set(np.round(df["cutoff"].unique(), 9)) == set(np.round(np.linspace(0.3, 1.0, 16), 9))
    # discrete grid values snap to the canonical choice values (0.285 -> 2/7 = osc1)
    assert set(df["lfo1destination"].unique()) == {0.0, 2 / 7, 3 / 7, 1.0}
    assert set(df["osc2tune"].unique()) == {k / 8 for k in range(9)}
    with pytest.raises(SamplerError, match="own value grids"):
        make_plan(nm, "inversynth", grid=16)


def test_grid_quantizes_continuous(nm):
    df = sample_patches(nm, 300, seed=4, grid=5)
    assert set(np.round(df["cutoff"].unique(), 12)) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(df["filtertype"].unique()) <= set(nm.spec("filtertype").choice_values)
    with pytest.raises(SamplerError, match="at least 2"):
        make_plan(nm, grid=1)


def test_fix_and_vary(nm):
    base = sample_patches(nm, 50, seed=5)
    fixed = sample_patches(nm, 50, seed=5, fix={"cutoff": 0.25, "filtertype": 0.3})
    assert (fixed["cutoff"] == 0.25).all()
    assert (fixed["filtertype"] == nm.spec("filtertype").quantize(0.3)).all()
    # holding parameters does not move the others
    others = [c for c in nm.param_names if c not in ("cutoff", "filtertype")]
    np.testing.assert_array_equal(base[others].to_numpy(), fixed[others].to_numpy())
    only = sample_patches(nm, 50, seed=5, vary=["cutoff", "resonance"])
    assert sorted(c for c in only.columns if only[c].nunique() > 1) == ["cutoff", "resonance"]
    np.testing.assert_array_equal(only["cutoff"], base["cutoff"])
    with pytest.raises(UnknownParameterError, match="cutoff"):
        make_plan(nm, fix={"cutof": 0.5})
    with pytest.raises(UnknownParameterError, match="resonance"):
        make_plan(nm, vary=["resonanse"])
    with pytest.raises(ParameterValueError, match="outside"):
        make_plan(nm, fix={"cutoff": 1.5})
    with pytest.raises(SamplerError, match="both fixed and varied"):
        make_plan(nm, fix={"cutoff": 0.5}, vary=["cutoff"])
    with pytest.raises(SamplerError, match="unknown sampler"):
        make_plan(nm, "timbrel")


def test_named_samplers_come_from_the_synth(nm):
    synth = TwoKnobs()
    df = sample_patches(synth, 20, seed=0)
    assert list(df.columns) == ["gain", "wave"] and set(df["wave"]) <= {0.0, 0.5, 1.0}
    assert sorted(sampler_presets(synth)) == ["all"]
    assert sorted(sampler_presets(nm)) == ["all", "inversynth", "timbral"]
    assert set(SAMPLERS) == {"all", "inversynth", "timbral"}
    for name in ("timbral", "inversynth"):
        # a sampler of another synth: the error names the samplers this synth offers
        with pytest.raises(SamplerError, match=r"not offered by .*offers: all\b"):
            sample_patches(synth, 5, sampler=name)
    with pytest.raises(SamplerError, match="unknown sampler 'timbrel'; .* offers: all, inversynth, timbral"):
        make_plan(nm, "timbrel")


class TwoKnobsWithPresets(TwoKnobs):
    """A synth that offers its own samplers: one on its grid, one naming a parameter it lacks."""

    @property
    def sampler_presets(self):
        return {
            "gainonly": SamplerPreset("gainonly", "gain on 3 levels", ("gain",), grids={"gain": (0.0, 0.5, 1.0)},
                                      fixed={"wave": 1.0}),
            "broken": SamplerPreset("broken", "names a knob the synth lacks", ("gain", "cutoff")),
        }


def test_a_synth_offers_its_own_samplers():
    synth = TwoKnobsWithPresets()
    assert sorted(sampler_presets(synth)) == ["all", "broken", "gainonly"]
    df = sample_patches(synth, 40, sampler="gainonly", seed=1)
    assert set(df["gain"]) == {0.0, 0.5, 1.0} and set(df["wave"]) == {1.0}
    assert make_plan(synth, "gainonly").settings["held"] == {"wave": 1.0}
    with pytest.raises(SamplerError, match="names 1 parameters the synth lacks .*cutoff"):
        make_plan(synth, "broken")
    # a TAL-NoiseMaker sampler stays TAL-NoiseMaker's
    with pytest.raises(SamplerError, match="not offered by twoknobs.*offers: all, broken, gainonly"):
        make_plan(synth, "timbral")


@pytest.mark.parametrize("sampler, moved, audible", [
    # InverSynth II writes its "attack" and "release" to the filter envelope while the contour stays at 0:
    # on that sampler they cannot change a render, which caps any model's MPR on them at chance
    ("inversynth", {"filterattack": (0.0, 0.5), "filterrelease": (0.2, 0.8)}, False),
    # key-triggered LFOs make the phase knobs audible on the timbral sampler
    ("timbral", {"lfo1phase": (0.0, 0.5), "lfo2phase": (0.0, 0.5)}, True),
])
def test_what_a_sampler_leaves_audible(noisemaker, sampler, moved, audible):
    from synth_probe.sampling import SAMPLERS
    from synth_probe.synths.base import RenderSettings

    plan = make_plan(noisemaker, sampler)
    settings = RenderSettings(**dict(SAMPLERS[sampler].render_defaults, render_length=0.6, note_length=0.5))
    X, seeds = plan.rows(5, 0, 8)
    names = noisemaker.param_names
    for name, (a, b) in moved.items():
        j = names.index(name)
        diffs = []
        for x, seed in zip(X, seeds):
            xa, xb = x.copy(), x.copy()
            xa[j], xb[j] = a, b
            ra = noisemaker.render_vector(xa, settings, seed=int(seed))
            rb = noisemaker.render_vector(xb, settings, seed=int(seed))
            diffs.append(float(np.abs(ra - rb).max()))
        assert (max(diffs) > 1e-3) if audible else (max(diffs) == 0.0), (name, diffs)


def test_what_a_sampler_holds_is_part_of_the_dataset_identity(nm):
    # a timbral folder sampled before the LFO key-triggers were held on must not be extended as if it were the same
    assert make_plan(nm, "timbral").settings["held"] == {"lfo1keytrigger": 1.0, "lfo2keytrigger": 1.0}
    assert "held" not in make_plan(nm, "all").settings
    # user-fixed values are recorded under "fix" only
    s = make_plan(nm, "all", fix={"cutoff": 0.25}).settings
    assert s["fix"] == {"cutoff": 0.25} and "held" not in s
