"""Voice activity: which audio samples hold speech (silero-vad), so silence is masked instead of posing as evidence."""

from __future__ import annotations

import functools

import numpy as np

from .errors import UsageError
from .media import SAMPLE_RATE_HZ

VAD_METHODS = ("silero", "energy", "none")
ENERGY_FRAME = 320  # 20 ms at 16 kHz
ENERGY_THRESHOLD_DBFS = -45.0  # a 20 ms frame louder than this counts as voiced for the energy method


@functools.lru_cache(maxsize=1)
def _silero():
    from silero_vad import load_silero_vad

    return load_silero_vad()


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
    import torch
    from silero_vad import get_speech_timestamps

    mask = np.zeros(n, dtype=bool)
    with torch.inference_mode():
        for span in get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio)), _silero(),
                                          sampling_rate=SAMPLE_RATE_HZ):
            mask[span["start"]:span["end"]] = True
    return mask
