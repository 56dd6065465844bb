"""Voice activity: which audio samples hold speech (silero-vad), so silence is masked instead of posing as evidence."""

from __future__ import annotations

import threading

import numpy as np

from ..errors import UsageError
from .ffmpeg import SAMPLE_RATE_HZ

VAD_METHODS = ("silero", "energy", "none")
ENERGY_FRAME = 320  # 20 ms at 16 kHz
ENERGY_THRESHOLD_DBFS = -45.0  # a 20 ms frame louder than this counts as voiced for the energy method


_lock = threading.Lock()
_sequence_model = None


def _silero():
    """Silero's sequence model (ONNX Runtime, one thread, no torch): a whole block of 512-sample windows per call,
    the same probabilities as the streaming model window by window. It keeps no state between calls, so the
    decode threads share one session; ONNX Runtime releases the GIL and starts no OpenMP thread teams."""
    global _sequence_model
    with _lock:
        if _sequence_model is None:
            from silero_vad import load_silero_vad

            _sequence_model = load_silero_vad(sequence=True)
        return _sequence_model


def voiced_mask(audio: np.ndarray, method: str = "silero") -> np.ndarray:
    """A bool per sample of 16 kHz mono audio: True where speech (silero) or sound (energy) was found."""
    if method not in VAD_METHODS:
        raise UsageError(f"--vad must be one of {', '.join(VAD_METHODS)}, not {method!r}")
    n = len(audio)
    if method == "none" or n == 0:
        return np.ones(n, dtype=bool)
    if method == "energy":
        frames = n // ENERGY_FRAME + 1
        padded = np.zeros(frames * ENERGY_FRAME, dtype=np.float32)
        padded[:n] = audio
        rms = np.sqrt((padded.reshape(frames, ENERGY_FRAME) ** 2).mean(1) + 1e-12)
        loud = 20 * np.log10(rms) > ENERGY_THRESHOLD_DBFS
        return np.repeat(loud, ENERGY_FRAME)[:n]
    return voiced_masks([audio], method)[0]


SILERO_WINDOW = 512  # samples per silero step at 16 kHz


def silero_probs(segments: list[np.ndarray]) -> list[np.ndarray]:
    """Silero's speech probability per 512-sample window of each segment (the last window zero-padded)."""
    model = _silero()
    return [model.audio_forward(np.ascontiguousarray(seg, dtype=np.float32)) if len(seg)
            else np.zeros(0, dtype=np.float32) for seg in segments]


def voiced_masks(segments: list[np.ndarray], method: str = "silero") -> list[np.ndarray]:
    """`voiced_mask` of many segments (one per utterance); for silero, `silero_probs` go through silero's own
    `get_speech_timestamps_from_probs`, exactly as its `get_speech_timestamps` does."""
    if method != "silero":
        return [voiced_mask(seg, method) for seg in segments]
    from silero_vad import get_speech_timestamps_from_probs

    masks = []
    for seg, probs in zip(segments, silero_probs(segments)):
        mask = np.zeros(len(seg), dtype=bool)
        if len(seg):
            for span in get_speech_timestamps_from_probs(probs.tolist(), sampling_rate=SAMPLE_RATE_HZ,
                                                         audio_length_samples=len(seg)):
                mask[span["start"]:span["end"]] = True
        masks.append(mask)
    return masks
