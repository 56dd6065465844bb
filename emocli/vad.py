"""Voice activity: which audio samples hold speech (silero-vad), so silence is masked instead of posing as evidence."""

from __future__ import annotations

import threading

import numpy as np

from .errors import UsageError
from .media import SAMPLE_RATE_HZ

VAD_METHODS = ("silero", "energy", "none")
ENERGY_FRAME = 320  # 20 ms at 16 kHz
ENERGY_THRESHOLD_DBFS = -45.0  # a 20 ms frame louder than this counts as voiced for the energy method


_local = threading.local()


def _silero():
    """One silero model per thread: the model keeps state between calls, so threads must not share it."""
    model = getattr(_local, "silero", None)
    if model is None:
        from silero_vad import load_silero_vad

        model = _local.silero = load_silero_vad()
    return model


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


def silero_probs(segments: list[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
    """Silero's speech probability per 512-sample window of each segment. Segments of similar length run side by
    side as one batch, window by window (the model keeps one state per batch row, and zero padding after a
    segment's end cannot change its earlier windows): the same numbers as one segment at a time, with about
    `batch_size` times fewer model calls."""
    import torch

    out: list[np.ndarray] = [np.zeros(-(-len(seg) // SILERO_WINDOW), dtype=np.float32) for seg in segments]
    order = sorted((i for i, seg in enumerate(segments) if len(seg)), key=lambda i: len(segments[i]))
    model = _silero()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            group = order[start:start + batch_size]
            windows = -(-max(len(segments[i]) for i in group) // SILERO_WINDOW)
            x = torch.zeros(len(group), windows * SILERO_WINDOW)
            for row, i in enumerate(group):
                x[row, :len(segments[i])] = torch.from_numpy(np.ascontiguousarray(segments[i], dtype=np.float32))
            model.reset_states()
            probs = torch.cat([model(x[:, w * SILERO_WINDOW:(w + 1) * SILERO_WINDOW], SAMPLE_RATE_HZ)
                               for w in range(windows)], dim=1).float().numpy()
            for row, i in enumerate(group):
                out[i] = probs[row, :len(out[i])]
    return out


def voiced_masks(segments: list[np.ndarray], method: str = "silero") -> list[np.ndarray]:
    """`voiced_mask` of many segments (one per utterance) at once; for silero, the batched `silero_probs` go
    through silero's own `get_speech_timestamps_from_probs`, exactly as `get_speech_timestamps` does per segment."""
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
