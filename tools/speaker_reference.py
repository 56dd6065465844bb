"""Make tests/fixtures/speaker_reference.npz: embeddings by the ORIGINAL resemblyzer 0.1.4, against which
tests/test_speakers.py checks emocli's port (emocli/signals/speakers.py).

Run once, from the repository's root, in a separate venv that holds the original package (never in emocli's):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0            # the CPU build
    /tmp/refvenv/bin/pip install resemblyzer==0.1.4 librosa webrtcvad-wheels imageio-ffmpeg
    /tmp/refvenv/bin/python tools/speaker_reference.py

Seen with: resemblyzer 0.1.4, librosa 0.11.0 (stft pad_mode 'constant'), torch 2.13.0+cpu, numpy 2.x,
ffmpeg 9.0.2 from imageio-ffmpeg 0.8.1.

Inputs: emocli's espeak-ng fixture tests/fixtures/speech.opus (synthetic speech, made by tools/speech_fixture.py,
no third-party licence), decoded by ffmpeg to 16 kHz mono s16le; cut at the spans of its speech.json lines:
  clip 0 = line 0 (2.12 s), clip 1 = line 4 (1.09 s, shorter than one 1.6 s partial window: one zero-padded
  window), clip 2 = lines 0-1 with the 1 s pause between (5.11 s: several partial windows),
  clip 3 = clip 0 at 1/8 the amplitude (-18 dB: the volume normalisation raises it).
The fixture stays a few KB by not storing the audio: it stores each clip's span in samples of the decoded PCM
and the SHA-256 of that int16 PCM, so the test decodes the same file and first checks that its input is
bit-identical (ffmpeg decodes Opus and resamples deterministically for one build; a different ffmpeg may differ by
an LSB: then the test says so and compares loosely). The float input is int16 / 32768.

Preprocessing is switched as in the port: resemblyzer's `normalize_volume(wav, -30, increase_only=True)`, then
`VoiceEncoder.embed_utterance(wav)` (rate 1.3, min_coverage 0.75) -- NOT `preprocess_wav`, whose webrtcvad
trimming emocli replaces by silero-vad's voiced samples. Stored as well: each clip's partial embeddings and the
per-frame sums of clip 0's mel spectrogram (resemblyzer.audio.wav_to_mel_spectrogram of the normalised, padded
clip), so a mismatch can be traced to the front end or the network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "fixtures" / "speech.opus"
RATE = 16_000


def decode(path: Path) -> np.ndarray:
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                          "-ar", str(RATE), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int16)


def spans(speech: Path) -> np.ndarray:
    """(start, end, divisor) in samples of the decoded PCM for each clip (divisor: the amplitude is divided by it)."""
    lines = json.loads(speech.with_suffix(".json").read_text())
    s = lambda t: int(round(t * RATE))  # noqa: E731
    return np.array([[s(lines[0][0]), s(lines[0][1]), 1], [s(lines[4][0]), s(lines[4][1]), 1],
                     [s(lines[0][0]), s(lines[1][1]), 1], [s(lines[0][0]), s(lines[0][1]), 8]], dtype=np.int64)


def clips(pcm: np.ndarray, spans: np.ndarray) -> list[np.ndarray]:
    return [(pcm[a:b].astype(np.int32) // d).astype(np.int16) for a, b, d in spans]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speech", type=Path, default=SPEECH)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "speaker_reference.npz")
    args = ap.parse_args()
    import librosa
    import resemblyzer
    import torch
    from resemblyzer import VoiceEncoder, audio

    torch.set_num_threads(1)
    enc = VoiceEncoder("cpu", verbose=False)
    full = decode(args.speech)
    cuts = spans(args.speech)
    pcm = clips(full, cuts)
    embeds, partials, counts = [], [], []
    for x in pcm:
        wav = audio.normalize_volume(x.astype(np.float32) / 32768, -30, increase_only=True).astype(np.float32)
        e, p, _ = enc.embed_utterance(wav, return_partials=True)
        embeds.append(e)
        partials.append(p)
        counts.append(len(p))
    wav0 = audio.normalize_volume(pcm[0].astype(np.float32) / 32768, -30, increase_only=True).astype(np.float32)
    slices, _ = enc.compute_partial_slices(len(wav0), 1.3, 0.75)
    wav0 = np.pad(wav0, (0, max(0, slices[-1].stop - len(wav0))))
    mel0 = audio.wav_to_mel_spectrogram(wav0)
    np.savez_compressed(
        args.out, spans=cuts, pcm_sha256=np.array(hashlib.sha256(full.tobytes()).hexdigest()),
        pcm_samples=np.array(len(full)),
        embeddings=np.stack(embeds).astype(np.float32), partials=np.concatenate(partials).astype(np.float32),
        partial_counts=np.array(counts), mel0_frame_sums=mel0.sum(1).astype(np.float32),
        versions=np.array(f"resemblyzer {resemblyzer.__version__ if hasattr(resemblyzer, '__version__') else '0.1.4'}"
                          f", librosa {librosa.__version__}, torch {torch.__version__}, numpy {np.__version__}"))
    print(args.out, args.out.stat().st_size, "bytes;", "clips s:", [round(len(x) / RATE, 2) for x in pcm],
          "partials:", counts)


if __name__ == "__main__":
    main()
