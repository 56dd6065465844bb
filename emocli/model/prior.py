"""Prior shift: a blend's probabilities moved part of the way back towards the classes' training frequencies.

emocli trains with square-root inverse-frequency class weights, so a model predicts the rare emotions (fear,
disgust) more often than they occur and neutral less often. Adding `alpha * log(train frequency)` to the averaged
log-probabilities and renormalising (logit adjustment, Menon et al., ICLR 2021, applied the other way round) undoes
a share of that: alpha 0 changes nothing, and about 0.5 undoes square-root weights entirely. alpha is chosen on dev
by cross-fitting (training/blend.py); the offsets are stored in the blend's config.json as `class_bias`, one per
label, so the shipped arithmetic can be read there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import UsageError
from ..labels import LABELS


def class_bias(counts: Sequence[float], alpha: float) -> list[float]:
    """`alpha * log(frequency)` per class, centred on zero (only differences between classes matter)."""
    if len(counts) != len(LABELS) or any(c <= 0 for c in counts):
        raise UsageError(f"a prior shift needs a positive training count for each of the {len(LABELS)} labels")
    if not math.isfinite(alpha) or alpha < 0:
        raise UsageError(f"the prior shift must be a number >= 0, not {alpha}")
    logs = [math.log(c / sum(counts)) for c in counts]
    mean = sum(logs) / len(logs)
    return [round(alpha * (v - mean), 6) for v in logs]


def apply_class_bias(probs, bias: Sequence[float] | None):
    """Probabilities [N, classes] (NumPy or torch) with `bias` added to their logarithms, renormalised."""
    if not bias:
        return probs
    if isinstance(probs, torch.Tensor):
        shift = torch.as_tensor(bias, dtype=probs.dtype, device=probs.device)
        return torch.softmax(probs.clamp_min(1e-12).log() + shift, dim=-1)
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)) + np.asarray(bias)
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=-1, keepdims=True)).astype(np.float32)


def check_class_bias(bias, where: str) -> None:
    """Refuse a `class_bias` that is not one finite number per label."""
    ok = isinstance(bias, list) and len(bias) == len(LABELS) and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bias)
    if not ok:
        raise UsageError(f"{where}: 'class_bias' must be a list of {len(LABELS)} finite numbers, one per label")
