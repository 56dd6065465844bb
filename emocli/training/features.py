"""Embedding cache: encoder features of MELD utterances computed once per (encoder, modality, split, input)
and stored as safetensors, so every training run and ablation reuses them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..errors import EmocliError
from ..media.ffmpeg import decode_audio, probe, sample_frames
from ..media.vad import voiced_mask
from ..model.encoders import resolve_encoder
from ..model.network import EmotionModel, UtteranceInput
from ..text.segments import frame_times
from .meld import MeldUtterance


def default_cache_dir() -> Path:
    """$EMOCLI_CACHE, else ~/.cache/emocli (or $XDG_CACHE_HOME/emocli)."""
    env = os.environ.get("EMOCLI_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emocli"


def encoder_fingerprint(ref: str) -> str:
    """Identifies encoder weights: a local folder by its files' names, sizes and mtimes; otherwise by name."""
    path = Path(resolve_encoder(ref))
    if not path.is_dir():
        return ref
    parts = [ref] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.iterdir())
                     if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clip_id(u: MeldUtterance) -> str:
    if u.clip is None:
        return "-"
    st = u.clip.stat()
    return f"{u.clip.name}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(model: EmotionModel, modality: str, utterances: list[MeldUtterance], vad: str,
              extra: str = "") -> str:
    """A hash of everything that changes a modality's features: encoder, its settings, and the inputs."""
    settings = getattr(model.config, modality).__dict__.copy()
    settings.pop("dim", None)
    settings["fingerprint"] = encoder_fingerprint(settings.get("encoder", ""))
    if modality == "text":
        data = [f"{u.text}\t{u.context}" for u in utterances]
    else:
        data = [_clip_id(u) for u in utterances]
        settings["vad"] = vad if modality == "audio" else None
    blob = json.dumps({"modality": modality, "settings": settings, "extra": extra, "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def clip_input(u: MeldUtterance, modalities: list[str], frames: int, image_size: int, vad: str,
               letterbox: bool = False) -> UtteranceInput:
    """Decode one MELD clip into model inputs; a missing or unreadable clip leaves its modalities masked."""
    item = UtteranceInput(text=u.text, context=u.context)
    if u.clip is None or not ({"audio", "video"} & set(modalities)):
        return item
    try:
        info = probe(u.clip)
        if "audio" in modalities and info.has_audio:
            item.audio = decode_audio(u.clip)
            item.voiced = voiced_mask(item.audio, vad)
        if "video" in modalities and info.has_video and info.duration_s:
            times = np.array(frame_times(0.0, info.duration_s, frames))
            item.frames = sample_frames(u.clip, times, image_size, info.fps, duration_s=info.duration_s + 0.1,
                                        letterbox=letterbox)
    except EmocliError:
        pass  # counted by the caller as masked
    return item


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def compute_features(model: EmotionModel, modality: str, utterances: list[MeldUtterance], split: str,
                     cache_dir: Path | None, vad: str = "silero", batch_size: int = 32, progress: bool = True,
                     log: Callable[[str], None] = print, extra_key: str = "", amp_dtype: torch.dtype | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, D] ([N, F, D] for video) and a present mask [N] for one modality, from the cache if there.

    `amp_dtype`: autocast the encoder to it (None: float32); `extra_key` must then tell the arithmetic apart."""
    key = cache_key(model, modality, utterances, vad, extra_key)
    file = cache_dir / f"{split}-{modality}-{key}.safetensors" if cache_dir else None
    if file is not None and file.is_file():
        stored = load_file(str(file))
        return stored["features"], stored["present"].bool()
    cfg = model.config
    feats, present = [], []
    bar = tqdm(total=len(utterances), desc=f"{split} {modality} features", unit="utt", disable=not progress)
    for batch in _batches(utterances, batch_size):
        inputs = [clip_input(u, [modality], cfg.video.frames if cfg.video else 8,
                             cfg.video.image_size if cfg.video else 224, vad,
                             bool(cfg.video and cfg.video.letterbox)) for u in batch]
        with torch.inference_mode(), torch.autocast(model.device.type, dtype=amp_dtype,
                                                    enabled=amp_dtype is not None):
            f, p = model.encode_modality(modality, inputs)
        feats.append(f.float().cpu())
        present.append(p.cpu())
        bar.update(len(batch))
    bar.close()
    features, mask = torch.cat(feats), torch.cat(present)
    if modality != "text" and (~mask).any():
        log(f"{split}: {int((~mask).sum())} of {len(mask)} utterances have no usable {modality} "
            f"(clip missing, unreadable, or silent); that modality is masked for them")
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        save_file({"features": features.contiguous(), "present": mask.to(torch.uint8)}, str(tmp))
        os.replace(tmp, file)
    return features, mask
