"""Who speaks: the ported speaker encoder against the original package's outputs, and --diarize end to end on
espeak-ng voices (tests/fixtures/voices.opus, made by tools/speech_fixture.py)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emocli.signals import speakers

FIXTURES = Path(__file__).parent / "fixtures"


def decode_pcm(path: Path) -> np.ndarray:
    """16 kHz mono int16, decoded by the ffmpeg of imageio-ffmpeg (the build the reference was made with)."""
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                          "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int16)


def test_the_port_gives_the_original_packages_embeddings():
    """tools/speaker_reference.py stored, once, what resemblyzer 0.1.4 itself computes for four clips of the speech
    fixture (one shorter than a partial window, one with several, one quiet): the port must agree."""
    ref = np.load(FIXTURES / "speaker_reference.npz")
    pcm = decode_pcm(FIXTURES / "speech.opus")
    same_input = hashlib.sha256(pcm.tobytes()).hexdigest() == str(ref["pcm_sha256"])
    wavs = [(pcm[a:b].astype(np.int32) // d).astype(np.int16).astype(np.float32) / 32768 for a, b, d in ref["spans"]]
    got = speakers.embed_voices(wavs)
    tolerance = 1e-4 if same_input else 2e-2  # another ffmpeg build may decode the Opus a bit differently
    assert np.abs(got - ref["embeddings"]).max() < tolerance
    assert (got * ref["embeddings"]).sum(1).min() > (0.99999 if same_input else 0.99)
    one = speakers.encoder().embed_utterance(wavs[2])
    assert np.abs(one - got[2]).max() < 1e-5  # batched windows give what one utterance alone gives
    partials = speakers.encoder().embed_partials(speakers.partial_mels(speakers.normalize_volume(wavs[0])))
    assert np.abs(partials - ref["partials"][:len(partials)]).max() < tolerance


def test_an_utterance_without_voice_has_no_embedding_and_quiet_speech_is_raised():
    rng = np.random.default_rng(0)
    voice = rng.standard_normal(16000).astype(np.float32) * 0.01  # -40 dBFS: both are raised to -30
    out = speakers.embed_voices([voice, np.zeros(0, np.float32), voice * 0.01])
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    assert np.allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert np.abs(out[0] - out[2]).max() < 1e-4  # the volume is raised to -30 dBFS before embedding


def test_missing_weights_are_one_clear_error(tmp_path):
    from emocli.errors import UsageError

    with pytest.raises(UsageError, match="speaker encoder's weights .* are missing or damaged"):
        speakers.SpeakerEncoder.load(tmp_path / "none.safetensors")
