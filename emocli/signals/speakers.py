"""Who speaks: each utterance's voice as a 256-d speaker embedding (Resemblyzer's GE2E voice encoder, Wan et al.
2018), to be grouped into speakers per video (signals/diarize.py).

A port of `resemblyzer` 0.1.4 (Apache-2.0, Corentin Jemine / Resemble AI): `VoiceEncoder` and
`audio.wav_to_mel_spectrogram`, on weights converted once from its `pretrained.pt` by tools/speaker_weights.py
(weights/speaker/, with its model card). The package itself is not a dependency (it pulls librosa and webrtcvad,
which no longer imports). No librosa here either: the mel spectrogram is librosa's `feature.melspectrogram` as
resemblyzer calls it, reimplemented:

- STFT: n_fft = 400 (25 ms), hop 160 (10 ms), periodic Hann window of 400, `center=True` with librosa >= 0.10's
  default `pad_mode="constant"` (200 zeros each side), so 1 + len(wav) // 160 frames;
- power spectrum (|X|^2, `power=2.0`), then 40 mel filters on 0 - 8 kHz, Slaney's mel scale (`htk=False`) and
  Slaney's area normalisation (`norm="slaney"`); NOT a log: the network reads the power mel as it is.

The network: 3-layer LSTM (40 -> 256), the last layer's final hidden state, Linear(256, 256), ReLU, L2 norm.
An utterance is cut into partial windows of 160 frames (1.6 s) every round(16000 / 1.3 / 160) = 77 frames (so ~50%
overlap); the last window is kept when it covers >= 75 % of its length (zero-padded), and there is always at
least one; the utterance embedding is the mean of the partial embeddings, L2-normalised (`embed_utterance`).
Preprocessing as `resemblyzer.preprocess_wav`, except that its webrtcvad silence trimming is left to the caller
(emocli passes only the voiced samples, silero-vad's mask): the volume is raised to -30 dBFS (never lowered).
tests/test_speakers.py compares the port with embeddings the original package computed (max difference 1.6e-7).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..files import WEIGHTS_DIR

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms step
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s per partial window
PARTIAL_RATE = 1.3  # partial windows per second of audio (resemblyzer's default `rate`)
MIN_COVERAGE = 0.75  # the last partial window is kept if this fraction of it is audio
NORM_DBFS = -30.0
HIDDEN = 256
EMBEDDING = 256
LAYERS = 3
INT16_MAX = 2 ** 15 - 1
#: The converted weights (tools/speaker_weights.py; model card: weights/speaker/README.md).
SPEAKER_DIR = WEIGHTS_DIR / "speaker"
WEIGHTS = SPEAKER_DIR / "speaker_encoder.safetensors"
SPEAKER_MODEL = "Resemblyzer's GE2E voice encoder (resemblyzer 0.1.4, Apache-2.0), ported to PyTorch"


# ---------------------------------------------------------------- front end (librosa's, as resemblyzer calls it)

def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa `hz_to_mel(htk=False)`): linear to 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) with its defaults (fmin 0, fmax sr/2, htk=False,
    norm='slaney', float32): (n_mels, 1 + n_fft // 2) triangles, each scaled to unit area in Hz."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) float32 power mel of 16 kHz audio, as resemblyzer's `audio.wav_to_mel_spectrogram`
    (librosa >= 0.10: centred frames, the signal padded with n_fft // 2 zeros on each side)."""
    wav = np.asarray(wav, dtype=np.float32)
    padded = np.pad(wav, (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, (n_frames, N_FFT), (HOP * 4, 4))
    spec = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return power @ _MEL.T


def normalize_volume(wav: np.ndarray, target_dbfs: float = NORM_DBFS, increase_only: bool = True) -> np.ndarray:
    """resemblyzer's `normalize_volume(wav, -30, increase_only=True)`: scale to target_dbfs RMS, never down
    (unless increase_only is False). Silence (RMS 0) is returned as it is."""
    wav = np.asarray(wav, dtype=np.float32)
    rms = float(np.sqrt(np.mean((wav.astype(np.float64) * INT16_MAX) ** 2))) if len(wav) else 0.0
    if rms == 0.0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if change < 0 and increase_only:
        return wav
    return (wav * (10 ** (change / 20))).astype(np.float32)


def partial_starts(n_samples: int, rate: float = PARTIAL_RATE, min_coverage: float = MIN_COVERAGE) -> list[int]:
    """First mel frame of each partial window (resemblyzer's `compute_partial_slices`); each spans
    PARTIAL_FRAMES frames, i.e. samples [start * HOP, (start + PARTIAL_FRAMES) * HOP)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / rate) / HOP))
    assert 0 < step <= PARTIAL_FRAMES, "rate out of range"
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return starts


def partial_mels(wav: np.ndarray, rate: float = PARTIAL_RATE, min_coverage: float = MIN_COVERAGE) -> np.ndarray:
    """(n_partials, 160, 40): the mel windows resemblyzer's `embed_utterance` feeds the network."""
    starts = partial_starts(len(wav), rate, min_coverage)
    end = (starts[-1] + PARTIAL_FRAMES) * HOP
    if end >= len(wav):
        wav = np.pad(np.asarray(wav, dtype=np.float32), (0, end - len(wav)))
    mel = mel_spectrogram(wav)
    return np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])


# ---------------------------------------------------------------- network

class SpeakerEncoder(nn.Module):
    """resemblyzer's VoiceEncoder: LSTM(40, 256, 3 layers) -> last hidden state -> Linear -> ReLU -> L2 norm."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 40) power mels -> (batch, 256) L2-normalised embeddings."""
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True)

    @classmethod
    def load(cls, path: str | Path = WEIGHTS) -> SpeakerEncoder:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        net = cls()
        try:
            state = {k: v.float() for k, v in load_file(str(path)).items()}
            net.load_state_dict(state)  # strict: the names and shapes of resemblyzer's model_state
        except (OSError, SafetensorError, RuntimeError) as exc:
            raise UsageError(f"the speaker encoder's weights {path} are missing or damaged "
                             f"({str(exc).splitlines()[0][:120]}); restore weights/speaker/ from the repository, or "
                             f"rebuild them with tools/speaker_weights.py") from None
        return net.eval().requires_grad_(False)

    @torch.inference_mode()
    def embed_partials(self, mels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(n, 160, 40) partial mels -> (n, 256) partial embeddings, batch_size windows per LSTM pass."""
        out = [self(torch.from_numpy(np.ascontiguousarray(mels[i:i + batch_size]))).numpy()
               for i in range(0, len(mels), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING), np.float32)

    def embed_utterance(self, wav: np.ndarray, normalize: bool = True, rate: float = PARTIAL_RATE,
                        min_coverage: float = MIN_COVERAGE) -> np.ndarray:
        """256-d L2-normalised embedding of one utterance (16 kHz mono float32, only its voiced samples)."""
        return self.embed_utterances([wav], normalize, rate, min_coverage)[0]

    def embed_utterances(self, wavs: Sequence[np.ndarray], normalize: bool = True, rate: float = PARTIAL_RATE,
                         min_coverage: float = MIN_COVERAGE, batch_size: int = 32) -> np.ndarray:
        """(len(wavs), 256): each utterance as `embed_utterance`, but every partial window of every utterance
        goes through the LSTM in shared batches. An empty utterance gives a row of NaN."""
        mels, owner = [], []
        for i, wav in enumerate(wavs):
            if len(wav) == 0:
                continue
            wav = normalize_volume(wav) if normalize else np.asarray(wav, dtype=np.float32)
            m = partial_mels(wav, rate, min_coverage)
            mels.append(m)
            owner += [i] * len(m)
        out = np.full((len(wavs), EMBEDDING), np.nan, dtype=np.float32)
        if not mels:
            return out
        partial = self.embed_partials(np.concatenate(mels), batch_size)
        owner = np.asarray(owner)
        sums = np.zeros((len(wavs), EMBEDDING), np.float64)
        np.add.at(sums, owner, partial)
        counts = np.bincount(owner, minlength=len(wavs))
        has = counts > 0
        mean = sums[has] / counts[has, None]
        out[has] = (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
        return out


@functools.lru_cache(maxsize=None)
def encoder() -> SpeakerEncoder:
    """The shipped encoder, loaded once per process."""
    return SpeakerEncoder.load()


def embed_voices(wavs: Sequence[np.ndarray], device: str | torch.device = "cpu") -> np.ndarray:
    """(len(wavs), 256) embeddings of utterances' voiced audio with the shipped weights, batched; a row of NaN
    for an utterance without voice. On the CPU the LSTM runs with one thread: its small matrix products gain
    nothing from a second, which the emotion model needs meanwhile (measured: 31 ms per utterance with one
    thread, ten times that with two on a busy 2-core machine)."""
    net = encoder().to(device)
    if torch.device(device).type != "cpu":
        return net.embed_utterances(wavs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return net.embed_utterances(wavs)
    finally:
        torch.set_num_threads(threads)
