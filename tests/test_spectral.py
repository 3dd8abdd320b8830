from __future__ import annotations

import numpy as np
import pytest

from synth_probe import spectral as sp
from synth_probe.errors import AudioError

SR = 22050
T = np.arange(int(1.0 * SR)) / SR


def saw(f: float, amp: float = 0.5) -> np.ndarray:
    return amp * (2.0 * ((T * f) % 1.0) - 1.0)


def sine(f: float, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f * T)


def noise(level_db: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(len(T)) * 10 ** (level_db / 20)


def test_log_mel_shapes_scale_and_floor():
    x = np.stack([sine(1000.0, 1.0), np.zeros(len(T))])
    lm = sp.log_mel_spectrogram(x, SR, n_fft=1024, hop_length=256)
    assert lm.shape == (2, 64, 1 + len(T) // 256)
    # a full-scale sine puts about 0 dB into its band; silence sits on the floor
    assert -3.0 < lm[0].max() < 1.5  # window leakage into the band adds a little
    assert np.all(lm[1] == -80.0)
    specs = sp.multi_resolution_log_mel(x[0], SR)
    assert [s.shape[0] for s in specs] == [32, 64, 128]
    assert sp.time_averaged_log_mel(x, SR).shape == (2, 128)


def test_float32_stays_float32_and_matches_float64():
    x = saw(220.0)
    p32 = sp.power_spectrogram(x.astype(np.float32), 1024, 256)
    p64 = sp.power_spectrogram(x, 1024, 256)
    assert p32.dtype == np.float32 and p64.dtype == np.float64
    np.testing.assert_allclose(p32, p64, rtol=1e-3, atol=1e-7)


def test_distances_are_zero_for_identical_and_grow_with_change():
    a, b = saw(110.0), saw(220.0)
    for f in (sp.multi_resolution_log_mel_distance, sp.log_mel_distance, sp.time_averaged_log_mel_distance,
              sp.mfcc_distance):
        assert f(a, a, SR) == pytest.approx(0.0, abs=1e-9)
        assert f(a, b, SR) > 0.5
        assert f(a, b, SR) == pytest.approx(f(b, a, SR))
    for f in (sp.spectral_convergence, sp.log_spectral_distance, sp.multi_scale_spectral_distance):
        assert f(a, a) == pytest.approx(0.0, abs=1e-9)
        assert f(a, b) > 0.1


def test_level_change_of_noise_is_its_db_difference():
    a, b = noise(-20.0), noise(-26.0)
    # same noise, scaled by 1/2: every cell moves by 6.02 dB
    d = sp.multi_resolution_log_mel_distance(a, a * 0.5, SR)
    assert d == pytest.approx(20 * np.log10(2), abs=0.05)
    assert sp.loudness_db(a) - sp.loudness_db(b) == pytest.approx(6.0, abs=0.3)


def test_batches_broadcast():
    a = np.stack([saw(110.0), saw(220.0), sine(440.0)])
    d = sp.multi_resolution_log_mel_distance(a, a[0], SR)
    assert d.shape == (3,)
    assert d[0] == pytest.approx(0.0, abs=1e-9) and d[1] > 0 and d[2] > 0
    assert sp.spectral_convergence(a, a[:1]).shape == (3,)


def test_spectral_convergence_of_silence_is_one():
    a = saw(110.0)
    assert sp.spectral_convergence(a, np.zeros_like(a)) == pytest.approx(1.0)


def test_time_averaged_distance_ignores_an_lfo_phase_shift():
    lfo0 = 1.0 + 0.9 * np.sin(2 * np.pi * 4.0 * T)
    lfo1 = 1.0 + 0.9 * np.sin(2 * np.pi * 4.0 * T + np.pi)
    a, b = saw(220.0) * lfo0, saw(220.0) * lfo1
    assert sp.multi_resolution_log_mel_distance(a, b, SR) > 3.0
    assert sp.time_averaged_log_mel_distance(a, b, SR) < 0.3


def test_pitch_f0_finds_the_period_and_rejects_noise():
    f0, clarity = sp.pitch_f0(np.stack([saw(110.0), sine(440.0), saw(65.4), noise(-20.0)]), SR)
    np.testing.assert_allclose(f0[:3], [110.0, 440.0, 65.4], rtol=0.005)
    assert np.isnan(f0[3]) and clarity[3] < 0.5
    assert sp.hz_to_semitones(440.0) == pytest.approx(69.0)


def test_describe_names_the_aspect_that_moved():
    steady = saw(220.0)
    tremolo = steady * (1.0 + 0.8 * np.sin(2 * np.pi * 6.0 * T))
    d = sp.describe(np.stack([steady, steady * 0.5, sine(220.0), tremolo, saw(440.0)]), SR)
    assert set(d) == set(sp.ASPECTS)
    assert d["loudness"][0] - d["loudness"][1] == pytest.approx(6.02, abs=0.1)
    assert d["brightness"][0] > d["brightness"][2] + 12  # a saw is far brighter than a sine
    assert d["pitch"][4] - d["pitch"][0] == pytest.approx(12.0, abs=0.1)
    assert d["modulation"][3] > 3.0 > d["modulation"][0]
    assert d["envelope"].shape == (5, 32)
    decaying = steady * np.exp(-4 * T)
    env = sp.describe(decaying, SR)["envelope"]
    assert env[0] > env[-1] + 20  # the shape falls by ~35 dB over the second


def test_describe_reuses_a_power_spectrogram():
    x = np.stack([saw(110.0), sine(300.0)])
    p = sp.power_spectrogram(x, 1024, 256)
    a, b = sp.describe(x, SR), sp.describe(x, SR, power=p)
    for k in a:
        np.testing.assert_allclose(a[k], b[k])
    with pytest.raises(AudioError, match="power has shape"):
        sp.describe(x, SR, power=p[:, :10])


def test_bad_audio_is_named():
    with pytest.raises(AudioError, match="non-finite"):
        sp.log_mel_spectrogram(np.array([0.0, np.nan] * 100), SR)
    with pytest.raises(AudioError, match="same number of samples"):
        sp.multi_resolution_log_mel_distance(np.zeros(4000), np.zeros(5000), SR)
    with pytest.raises(AudioError, match="at least 16"):
        sp.power_spectrogram(np.zeros(3))
    with pytest.raises(AudioError, match="sample_rate"):
        sp.log_mel_spectrogram(np.zeros(4000), 10)
    with pytest.raises(AudioError, match="numeric"):
        sp.check_audio("not audio")


# ------------------------------------------------------------------------------ the front-end
def test_one_pitch_estimator_for_descriptors_features_and_matching():
    from synth_probe import frontend
    from synth_probe.features import HandcraftedFeatures, handcrafted
    from synth_probe.matching import estimate_pitch, target

    # the three users call the one estimator, not copies of it
    assert handcrafted.autocorrelation_pitch is frontend.autocorrelation_pitch
    assert target.autocorrelation_pitch is frontend.autocorrelation_pitch
    assert sp.pitch_f0 is frontend.pitch_f0
    x = np.stack([saw(110.0), saw(329.6), sine(880.0)])
    truth = np.log2([110.0, 329.6, 880.0])
    f0, _ = sp.pitch_f0(x, SR)
    hc = HandcraftedFeatures(sample_rate=SR, note_length=0.9).fit(x.astype(np.float32))
    hc_f0 = hc.transform(x.astype(np.float32))[:, hc.feature_names_.index("f0_log2")]
    matched = np.log2([estimate_pitch(row, SR).f0 for row in x])
    for est in (np.log2(f0), hc_f0, matched):
        np.testing.assert_allclose(12 * est, 12 * truth, atol=0.1)  # within a tenth of a semitone
    # segments: a sine and a silent segment (NaN, clarity 0)
    seg = np.stack([sine(200.0)[:4096], np.zeros(4096)])
    f, c = frontend.autocorrelation_pitch(seg, SR, fmin=40.0, fmax=2000.0)
    assert abs(f[0] - 200.0) < 0.5 and c[0] > 0.95
    assert np.isnan(f[1]) and c[1] == 0.0


def test_two_log_mel_front_ends_share_one_mel_basis():
    from synth_probe import frontend
    from synth_probe.features import LogMelSpectrogram

    # the distance front-end is the one spectral's distances use, under both names
    assert sp.log_mel_spectrogram is frontend.distance_log_mel
    unit = frontend.mel_basis(SR, 1024, 32, 30.0, SR / 2.0, None)
    np.testing.assert_array_equal(sp.mel_filterbank(SR, 1024, 32), unit.astype(np.float64))
    x = np.stack([sine(1000.0, 1.0)]).astype(np.float32)
    dist = sp.log_mel_spectrogram(x, SR, n_fft=1024, hop_length=256, n_mels=32)
    feat = LogMelSpectrogram(sample_rate=SR, n_mels=32, flatten=False).fit_transform(x)
    power = frontend.feature_stft_magnitude(x, 1024, 256) ** 2
    np.testing.assert_array_equal(feat, frontend.feature_log_mel(power, SR, 32).astype(np.float32))
    # the conventions differ on purpose: 0 dB is a full-scale sine for distances, a bin of power 1 for features
    assert -3.0 < dist.max() < 1.5
    assert feat.max() > dist.max() + 20.0


def test_one_validator_reads_three_layouts():
    from synth_probe.frontend import check_audio

    stereo = np.stack([sine(220.0), 0.5 * sine(220.0)], axis=1)  # (n, 2), as soundfile reads it
    assert check_audio(stereo, layout="channels").shape == (2, len(T))
    assert check_audio(stereo.T, layout="channels").shape == (2, len(T))
    assert check_audio(sine(220.0), layout="channels").shape == (1, len(T))
    with pytest.raises(AudioError, match="at most 16 channels"):
        check_audio(np.zeros((20, 20)), layout="channels")
    assert check_audio(np.zeros(100), layout="rows", dtype=np.float32).shape == (1, 100)
    with pytest.raises(AudioError, match="numeric"):
        check_audio(np.ones(100, dtype=bool))
    with pytest.raises(AudioError, match="numeric"):
        check_audio(np.ones(100, dtype=complex))
    with pytest.raises(AudioError, match="at least 50 ms"):
        check_audio(np.zeros(100), sample_rate=SR, min_samples=int(0.05 * SR))
    with pytest.raises(AudioError, match="not a number of Hz"):
        check_audio(np.zeros(100), sample_rate="fast")
