from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from synth_probe.errors import AudioError, ParameterValueError
from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram
from synth_probe.frontend import check_audio

SR = 16000


def _tone(f0: float, seconds: float = 0.5, am_hz: float = 0.0, am_depth: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    env = 1.0 + am_depth * np.sin(2 * np.pi * am_hz * t)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.3 * env * x).astype(np.float32)


def check_audio_rows(X):
    return check_audio(X, layout="rows", min_samples=1, name="X", dtype=np.float32)


def test_check_audio_rows_errors():
    with pytest.raises(AudioError, match="2-D audio rows"):
        check_audio_rows(np.zeros((2, 3, 4)))
    bad = np.zeros((3, 100), dtype=np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(AudioError, match="row 1 holds NaN"):
        check_audio_rows(bad)
    assert check_audio_rows(np.zeros(10)).shape == (1, 10)
    assert check_audio_rows(np.zeros(10)).dtype == np.float32
    # the strictest rules of the one validator: no booleans or text as audio, no empty batch
    with pytest.raises(AudioError, match="numeric"):
        check_audio_rows(np.ones((2, 10), dtype=bool))
    with pytest.raises(AudioError, match="no samples"):
        check_audio_rows(np.zeros((0, 10)))


@pytest.mark.parametrize("kind,bins", [("mel", 32), ("stft", 257), ("mfcc", 13)])
def test_logmel_shapes(kind, bins):
    X = np.stack([_tone(220), _tone(440)])
    tr = LogMelSpectrogram(sample_rate=SR, n_fft=512, hop_length=128, n_mels=32, n_mfcc=13, kind=kind).fit(X)
    n_frames = 1 + X.shape[1] // 128
    assert tr.output_shape_ == (bins, n_frames)
    S = tr.transform(X)
    assert S.shape == (2, bins * n_frames) and S.dtype == np.float32
    S3 = clone(tr).set_params(flatten=False).fit_transform(X)
    np.testing.assert_array_equal(S3.reshape(2, -1), S)


def test_logmel_levels_and_pitch():
    X = np.stack([_tone(220), _tone(880), np.zeros_like(_tone(220))])
    S = LogMelSpectrogram(sample_rate=SR, n_mels=64, flatten=False).fit_transform(X)
    assert S[2].max() == -80.0  # silence sits on the floor
    peak = S.mean(axis=2).argmax(axis=1)
    assert peak[1] > peak[0]  # the higher tone peaks in a higher band
    pooled = LogMelSpectrogram(sample_rate=SR, n_mels=64, time_pool=4).fit_transform(X)
    assert pooled.shape == (3, 64 * 4)
    np.testing.assert_allclose(pooled.reshape(3, 64, 4).mean(axis=2), S.mean(axis=2), atol=1.5)


def test_logmel_parallel_and_cache_match(tmp_path):
    X = np.stack([_tone(100 + 20 * i) for i in range(70)])  # two batches of 64
    ref = LogMelSpectrogram(sample_rate=SR, n_mels=16).fit_transform(X)
    par = LogMelSpectrogram(sample_rate=SR, n_mels=16, n_jobs=2).fit_transform(X)
    np.testing.assert_array_equal(ref, par)
    cached = LogMelSpectrogram(sample_rate=SR, n_mels=16, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(cached.fit_transform(X), ref)
    files = list(tmp_path.glob("logmel-*.npy"))
    assert len(files) == 1 and not any(tmp_path.rglob("*.pkl"))  # a plain array, never a pickle
    cached_rows = np.load(files[0], allow_pickle=False)
    cached_rows[:] = 0.0  # change the cached array: a cache hit returns what the file holds
    np.save(files[0], cached_rows, allow_pickle=False)
    np.testing.assert_array_equal(cached.transform(X), np.zeros_like(ref))  # served from the cache
    assert not np.array_equal(LogMelSpectrogram(sample_rate=SR, n_mels=16, n_fft=512, cache_dir=str(tmp_path))
                              .fit_transform(X), np.zeros_like(ref))  # other parameters: another key


def test_logmel_bad_params():
    X = np.zeros((1, 1000), dtype=np.float32)
    with pytest.raises(ParameterValueError, match="kind must be"):
        LogMelSpectrogram(kind="cqt").fit(X)
    with pytest.raises(ParameterValueError, match="hop_length must be a positive int"):
        LogMelSpectrogram(hop_length=0).fit(X)


def _col(tr, F, name):
    return F[:, tr.feature_names_.index(name)]


def test_handcrafted_pitch_brightness_and_noise():
    rng = np.random.default_rng(0)
    X = np.stack([_tone(110), _tone(220), _tone(440), (0.1 * rng.standard_normal(8000)).astype(np.float32)])
    tr = HandcraftedFeatures(sample_rate=SR, note_length=0.4).fit(X)
    F = tr.transform(X)
    assert F.shape == (4, len(tr.feature_names_)) == (4, 66 + 2 * 13)
    assert np.isfinite(F).all()
    f0 = 2 ** _col(tr, F, "f0_log2")
    np.testing.assert_allclose(f0[:3], [110, 220, 440], rtol=0.02)
    cent = _col(tr, F, "centroid_mean")
    assert cent[0] < cent[1] < cent[2] < cent[3]
    harm = _col(tr, F, "harmonicity")
    assert harm[:3].min() > 0.9 and harm[3] < 0.3
    assert _col(tr, F, "noisiness")[3] > _col(tr, F, "noisiness")[:3].max()
    assert list(tr.get_feature_names_out()) == tr.feature_names_


def test_handcrafted_envelope():
    n = int(1.0 * SR)
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * 330 * t)
    note_off = 0.6

    def adsr(attack, release):
        env = np.clip(t / attack, 0, 1)
        after = t > note_off
        env[after] *= np.exp(-(t[after] - note_off) * 6.9 / release)  # -60 dB at `release`
        return (0.5 * env * tone).astype(np.float32)

    X = np.stack([adsr(0.01, 0.05), adsr(0.2, 0.05), adsr(0.01, 0.3)])
    tr = HandcraftedFeatures(sample_rate=SR, note_length=note_off).fit(X)
    F = tr.transform(X)
    attack = _col(tr, F, "attack_time")
    release = _col(tr, F, "release_time")
    assert attack[0] < 0.05 and 0.12 < attack[1] < 0.25
    assert release[0] < release[2] and 0.1 < release[2] < 0.35


def test_handcrafted_onset_tells_short_attacks_apart():
    # 3, 10 and 30 ms linear attacks: the frame envelope (11.6 ms hop) blurs them, the onset windows do not
    n = int(0.5 * SR)
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * 330 * t)
    X = np.stack([(0.5 * np.clip(t / a, 0, 1) * tone).astype(np.float32) for a in (0.003, 0.01, 0.03)])
    tr = HandcraftedFeatures(sample_rate=SR, note_length=0.4).fit(X)
    F = tr.transform(X)
    assert np.isfinite(F).all()
    near_peak = np.exp(_col(tr, F, "onset_t_1dB")) - 1e-3  # seconds to come within 1 dB of the peak
    np.testing.assert_allclose(near_peak, [0.003, 0.01, 0.03], rtol=0.35, atol=0.002)
    assert near_peak[0] < near_peak[1] < near_peak[2]
    at_8ms = _col(tr, F, "onset_level_8ms")
    assert at_8ms[0] > -1.5 and at_8ms[2] < -8.0  # 8 ms: the 3 ms attack is up, the 30 ms one is 11 dB down
    silent = tr.transform(np.zeros((1, n), dtype=np.float32))
    assert np.isfinite(silent).all()


def test_handcrafted_modulation_rate():
    X = np.stack([_tone(220, 1.0, am_hz=3.0, am_depth=0.5), _tone(220, 1.0, am_hz=9.0, am_depth=0.5),
                  _tone(220, 1.0)])
    tr = HandcraftedFeatures(sample_rate=SR, note_length=0.9).fit(X)
    F = tr.transform(X)
    rate = _col(tr, F, "loudness_mod_peak_hz")
    depth = _col(tr, F, "loudness_mod_depth")
    assert abs(rate[0] - 3.0) < 1.0 and abs(rate[1] - 9.0) < 1.5
    assert depth[2] < 0.1 < depth[0]
    np.testing.assert_array_equal(HandcraftedFeatures(sample_rate=SR, note_length=0.9, n_jobs=2).fit_transform(X), F)


def test_handcrafted_bad_params():
    X = np.zeros((1, 1000), dtype=np.float32)
    with pytest.raises(ParameterValueError, match="fmin_f0"):
        HandcraftedFeatures(fmin_f0=3000.0).fit(X)
    with pytest.raises(ParameterValueError, match="note_length"):
        HandcraftedFeatures(note_length=-1).fit(X)
