"""Media decoding: probing, audio slices, frames at exact timestamps in one pass, voice detection."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from emocli.media import ffmpeg as media
from emocli.errors import EmocliError
from emocli.media.vad import voiced_mask


def test_probe_reports_streams_and_duration(media_dir):
    both = media.probe(media_dir / "both.mp4")
    assert both.has_audio and both.has_video and both.duration_s == pytest.approx(6.0, abs=0.1)
    assert both.fps == pytest.approx(25.0) and (both.width, both.height) == (320, 240)
    assert not media.probe(media_dir / "noaudio.mp4").has_audio
    assert not media.probe(media_dir / "audioonly.wav").has_video


@pytest.mark.parametrize("content", [b"", b"not a video\n" * 50])
def test_probe_refuses_empty_and_garbage(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(EmocliError, match="cannot decode"):
        media.probe(path)


def test_audio_slice_has_the_requested_length_and_rate(media_dir):
    audio = media.decode_audio(media_dir / "both.mp4", 1.0, 2.0)
    assert audio.dtype == np.float32
    assert len(audio) == pytest.approx(2.0 * media.SAMPLE_RATE_HZ, rel=0.02)
    rms = float(np.sqrt((audio ** 2).mean()))
    assert 0.05 < rms < 0.5  # lavfi's sine is a steady tone at amplitude 1/8
    assert np.abs(media.decode_audio(media_dir / "silent.mp4", 0.0, 2.0)).max() < 1e-4


def test_frames_are_the_ones_at_the_requested_times(media_dir):
    path = media_dir / "noaudio.mp4"
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", "scale=32:32:flags=bilinear",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=True).stdout
    every = np.frombuffer(raw, np.uint8).reshape(-1, 32, 32, 3).astype(int)
    times = np.array([0.52, 1.0, 1.04, 2.2, 4.96, 5.9])
    for start in (0.0, 0.5):  # decoding from a seek point gives the same frames
        frames = media.sample_frames(path, times, 32, fps=25.0, start_s=start, duration_s=6.0 - start)
        assert frames.shape == (len(times), 32, 32, 3)
        picked = [int(np.argmin(np.abs(every - f.astype(int)).mean(axis=(1, 2, 3)))) for f in frames]
        assert picked == [round(t * 25) for t in times]


def test_repeated_times_give_repeated_frames(media_dir):
    frames = media.sample_frames(media_dir / "noaudio.mp4", np.array([1.0, 1.0, 1.01]), 32, fps=25.0)
    assert frames.shape[0] == 3 and (frames[0] == frames[1]).all()


def test_energy_and_silero_vad_on_tone_and_silence(media_dir):
    tone = media.decode_audio(media_dir / "both.mp4", 0.0, 2.0)
    silence = media.decode_audio(media_dir / "silent.mp4", 0.0, 2.0)
    assert voiced_mask(tone, "energy").mean() > 0.95
    assert not voiced_mask(silence, "energy").any()
    assert not voiced_mask(silence, "silero").any()
    assert voiced_mask(silence, "none").all()


def _vowels(n: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like sound silero detects: a 100-150 Hz pulse train through three vowel formants, four syllables a
    second, with a silent second in every three."""
    from scipy.signal import lfilter

    t = np.arange(n) / 16_000
    phase = np.cumsum((rng.uniform(100, 150) + 30 * np.sin(2 * np.pi * 0.7 * t)) / 16_000)
    pulses = (phase % 1.0 < 0.05) + 0.05 * rng.standard_normal(n)
    out = np.zeros(n)
    for freq, bandwidth in ((700, 130), (1200, 150), (2600, 200)):
        r = np.exp(-np.pi * bandwidth / 16_000)
        out += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / 16_000), r * r], pulses)
    out *= np.clip(np.sin(2 * np.pi * 4 * t) + 0.3, 0, 1) * (t % 3 < 2)
    return (0.3 * out / np.abs(out).max(initial=1e-9) + 0.005 * rng.standard_normal(n)).astype(np.float32)


def test_silero_sequence_model_matches_silero_streaming_reference():
    """The sequence model (one ONNX call per block of windows) gives the streaming TorchScript model's
    probabilities window by window, and the masks equal silero's own get_speech_timestamps on that model."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    from emocli.media.vad import SILERO_WINDOW, silero_probs, voiced_mask, voiced_masks

    rng = np.random.default_rng(0)
    # 20 s: more than one block of windows; 700 samples: less than two windows
    segments = [_vowels(n, rng) for n in (16_000 * 2 + 100, 5_000, 16_000 * 20, 700, 0)]
    streaming = load_silero_vad()  # the TorchScript model, one window per call
    probs = silero_probs(segments)
    for seg, p in zip(segments, probs):
        streaming.reset_states()
        with torch.inference_mode():
            one = [streaming(torch.nn.functional.pad(torch.from_numpy(seg[s:s + SILERO_WINDOW]),
                                                     (0, max(0, s + SILERO_WINDOW - len(seg)))), 16_000).item()
                   for s in range(0, len(seg), SILERO_WINDOW)]
        assert len(p) == len(one)
        assert np.allclose(p, one, atol=1e-5)
    masks = voiced_masks(segments)
    assert all(m.any() and not m.all() for m in (masks[0], masks[2]))  # voiced and unvoiced samples compared
    for seg, mask in zip(segments, masks):
        assert mask.shape == seg.shape and (mask == voiced_mask(seg, "silero")).all()
        reference = np.zeros(len(seg), dtype=bool)
        if len(seg):
            for span in get_speech_timestamps(torch.from_numpy(seg), streaming, sampling_rate=16_000):
                reference[span["start"]:span["end"]] = True
        assert (mask == reference).all()


def test_one_stream_listing_serves_probe_and_both_track_lists(media_dir, tmp_path, monkeypatch):
    """Probing, the subtitle tracks and the audio tracks read one `ffmpeg -i` listing per version of a file."""
    import shutil

    from emocli.text.tracks import list_audio_tracks, list_tracks

    monkeypatch.setattr(media, "ffprobe_exe", lambda: None)  # the listing is what probing reads without ffprobe
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args) or real_run(args, **kw))
    video = shutil.copy(media_dir / "both.mp4", tmp_path / "both.mp4")
    info = media.probe(video)
    assert info.has_audio and info.has_video and list_tracks(video) == []
    assert [t.kind for t in list_audio_tracks(video)] == ["audio"]
    assert len(calls) == 1
    (tmp_path / "both.mp4").write_bytes((media_dir / "noaudio.mp4").read_bytes())  # the file changes: read again
    assert not media.probe(video).has_audio and list_audio_tracks(video) == [] and len(calls) == 2
