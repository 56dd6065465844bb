"""Model calls for annotate: lists of utterance inputs -> probabilities and attention weights, in batches, in the
arithmetic `--precision` asks for; a CUDA out-of-memory error halves the batch and retries."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..device import amp_dtype, precision_name
from ..errors import EmocliError
from ..labels import LABELS
from ..media.ffmpeg import SAMPLE_RATE_HZ
from ..model.int8 import quantize_text_encoders, use_pytorch
from ..model.network import EmotionModel, UtteranceInput


class BatchPredictor:
    """Runs the model on lists of inputs in batches; a CUDA out-of-memory error halves the batch and retries."""

    def __init__(self, model: EmotionModel, batch_size: int, precision: str = "auto",
                 log: Callable[[str], None] | None = None) -> None:
        self.model, self.batch_size = model, max(1, batch_size)
        self.amp = amp_dtype(model.device, precision)
        # the predictor sets the model's arithmetic: int8 swaps its text encoders for quantised graphs
        if precision == "int8":
            quantize_text_encoders(model, log)
        else:
            use_pytorch(model)
        self.precision = precision_name(self.amp, precision, model.config.modalities)

    def __call__(self, inputs: list[UtteranceInput]) -> tuple[np.ndarray, list[dict]]:
        probs, attn = [], []
        i = 0
        while i < len(inputs):
            batch = inputs[i:i + self.batch_size]
            try:
                p, a = self._run(batch)
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise EmocliError("out of GPU memory even with batch size 1; use --device cpu") from None
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                continue
            probs.append(p)
            attn.extend(a)
            i += len(batch)
        return np.concatenate(probs) if probs else np.zeros((0, len(LABELS))), attn

    def _run(self, batch: list[UtteranceInput]) -> tuple[np.ndarray, list[dict]]:
        probs, attention, present = self.model.predict(batch, self.amp)
        mods = self.model.config.modalities
        per_item = []
        for b in range(len(batch)):
            item = {m: {o: round(float(attention[m][b, j]), 4) for j, o in enumerate(mods) if o != m}
                    for m in mods if m in attention}
            item["present"] = {m: bool(present[b, j]) for j, m in enumerate(mods)}
            if "frames" in attention:
                item["frames"] = [round(float(x), 4) for x in attention["frames"][b]]
            per_item.append(item)
        return probs, per_item


class SignalReader:
    """What the voice says beside the model, per utterance: its emotion (--voice, signals/voice.py) and its
    voiceprint for finding speakers (--diarize, signals/diarize.py). Both read Whisper tiny.en's encoder over the
    utterance's voiced span (run once for both, in batches sorted by length, on the model's device); the
    voiceprint also reads Resemblyzer's embedding of the voiced samples. An utterance without voice (voice
    detection found none in it) gets neither."""

    def __init__(self, voice: bool, speakers: bool, device: torch.device | str = "cpu") -> None:
        self.voice, self.speakers, self.device = voice, speakers, torch.device(device)

    def __bool__(self) -> bool:
        return self.voice or self.speakers

    def __call__(self, inputs: list[UtteranceInput]) -> tuple[list, list]:
        """(voice readings, voiceprints), one each per input (None where there is none)."""
        have = [k for k, item in enumerate(inputs) if voiced_span(item) is not None]
        readings: list = [None] * len(inputs)
        prints: list = [None] * len(inputs)
        if not have:
            return readings, prints
        from ..signals.whisper import pooled_states

        upto = 3 if self.voice else 2  # the voice head reads hidden states 1-3, the voiceprint state 2
        states = pooled_states([voiced_span(inputs[k]) for k in have], upto, self.device)
        if self.voice:
            from ..signals.voice import read_voices

            seconds = [float(inputs[k].voiced.sum() if inputs[k].voiced is not None else len(inputs[k].audio))
                       / SAMPLE_RATE_HZ for k in have]
            for k, reading in zip(have, read_voices(states, seconds)):
                readings[k] = reading
        if self.speakers:
            from ..signals.diarize import WHISPER_STATE, Voiceprint
            from ..signals.speakers import embed_voices

            embeddings = embed_voices([voiced_samples(inputs[k]) for k in have], self.device)
            for j, k in enumerate(have):
                if np.isfinite(embeddings[j]).all():
                    prints[k] = Voiceprint(embeddings[j], states[j, WHISPER_STATE])
        return readings, prints


def voiced_samples(item: UtteranceInput) -> np.ndarray | None:
    """The utterance's voiced samples, put together (16 kHz mono), or None when voice detection found none."""
    if item.audio is None or not len(item.audio):
        return None
    if item.voiced is None:
        return item.audio
    return item.audio[item.voiced[:len(item.audio)]] if item.voiced.any() else None


def voiced_span(item: UtteranceInput) -> np.ndarray | None:
    """The utterance's audio from its first voiced sample to its last (pauses inside kept), or None."""
    if item.audio is None or not len(item.audio):
        return None
    if item.voiced is None:
        return item.audio
    where = np.flatnonzero(item.voiced[:len(item.audio)])
    return item.audio[where[0]:where[-1] + 1] if len(where) else None
