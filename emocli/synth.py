"""Synthetic media from ffmpeg's lavfi sources, for tests, benchmarks and the bundled sample."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

from .media.ffmpeg import ffmpeg_exe


def make_media(path: str | Path, duration_s: float, *, video: bool = True, audio: str | None = "sine",
               size: str = "320x240", fps: int = 25, frequency_hz: int = 440) -> Path:
    """Write a test file: `testsrc2` video and/or audio ("sine", "silence" or None), of a known duration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={duration_s}"]
    if audio == "sine":
        args += ["-f", "lavfi", "-i", f"sine=frequency={frequency_hz}:sample_rate=44100:duration={duration_s}"]
    elif audio == "silence":
        args += ["-f", "lavfi", "-i", f"anullsrc=r=44100:cl=mono:d={duration_s}"]
    elif audio is not None:
        raise ValueError(f"audio must be 'sine', 'silence' or None, not {audio!r}")
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps * 2)]
    if audio:
        args += ["-c:a", "aac" if path.suffix.lower() in (".mp4", ".mov", ".m4a", ".mkv") else "libopus"
                 if path.suffix.lower() == ".webm" else "pcm_s16le" if path.suffix.lower() == ".wav" else "aac"]
    args += ["-t", str(duration_s), str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def write_srt(path: str | Path, cues: list[tuple[float, float, str]], encoding: str = "utf-8") -> Path:
    """Write an SRT file from (start_s, end_s, text) triples."""
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = [f"{i}\n{stamp(s)} --> {stamp(e)}\n{text}\n" for i, (s, e, text) in enumerate(cues, start=1)]
    Path(path).write_text("\n".join(blocks), encoding=encoding)
    return Path(path)


def write_vtt(path: str | Path, cues: list[tuple[float, float, str]], ids: list[str] | None = None) -> Path:
    """Write a WebVTT file from (start_s, end_s, text) triples, with cue identifiers where given (not empty)."""
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    blocks = ["WEBVTT\n"] + [(f"{ids[i]}\n" if ids and ids[i] else "") + f"{stamp(s)} --> {stamp(e)}\n{text}\n"
                             for i, (s, e, text) in enumerate(cues)]
    Path(path).write_text("\n".join(blocks), encoding="utf-8")
    return Path(path)


def write_ass(path: str | Path, cues: list[tuple[float, float, str]], names: list[str] | None = None) -> Path:
    """Write an ASS file from (start_s, end_s, text) triples (times to the centisecond, as ASS keeps them; line
    breaks as \\N), with a speaker Name per cue if given."""
    def stamp(t: float) -> str:
        cs = int(round(t * 100))
        return f"{cs // 360_000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"

    lines = ["[Script Info]", "ScriptType: v4.00+", "", "[V4+ Styles]",
             "Format: Name, Fontname, Fontsize, PrimaryColour, Bold, Italic, Alignment, MarginL, MarginR, MarginV",
             "Style: Default,Arial,40,&H00FFFFFF,0,0,2,10,10,10", "", "[Events]",
             "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
    for i, (s, e, text) in enumerate(cues):
        name = names[i] if names else ""
        lines.append(f"Dialogue: 0,{stamp(s)},{stamp(e)},Default,{name},0,0,0,,{text.replace(chr(10), chr(92) + 'N')}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


#: Encoder shapes for tests ("tiny") and for speed measurements with real sizes ("base": bert-base,
#: wav2vec2-base and vit-base-patch16-224 dimensions). Weights are random: only shapes and speed are real.
ENCODER_SHAPES = {
    "tiny": {"hidden": 32, "layers": 2, "heads": 2, "ffn": 64, "conv": 16, "image": 32, "patch": 8},
    "base": {"hidden": 768, "layers": 12, "heads": 12, "ffn": 3072, "conv": 512, "image": 224, "patch": 16},
}


def make_encoders(root: str | Path, shape: str = "tiny", seed: int = 0, tokenizer: str = "minilm"
                  ) -> dict[str, str]:
    """Random-weight BERT, Wav2Vec2 and ViT saved with `save_pretrained` (loaded like downloaded weights).

    The BERT uses `tokenizer` (an encoder reference; by default the bundled MiniLM's, offline), whose vocabulary
    is bert-base's.
    """
    import torch

    from .environment import prepare_transformers

    prepare_transformers()
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        ViTConfig,
        ViTModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )
    from transformers.utils import logging as hf_logging

    from .model.encoders import resolve_encoder

    hf_logging.disable_progress_bar()
    s, root = ENCODER_SHAPES[shape], Path(root)
    common = {"hidden_size": s["hidden"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
              "intermediate_size": s["ffn"]}
    torch.manual_seed(seed)
    out = {"text": root / f"{shape}-bert", "audio": root / f"{shape}-wav2vec2", "video": root / f"{shape}-vit"}
    if not (out["text"] / "config.json").is_file():
        BertModel(BertConfig(vocab_size=30522, **common)).save_pretrained(out["text"])
        source = tokenizer if Path(tokenizer).is_dir() else resolve_encoder(tokenizer)  # a tokenizer alone: no config
        AutoTokenizer.from_pretrained(source).save_pretrained(out["text"])
    if not (out["audio"] / "config.json").is_file():
        small = shape == "tiny"
        Wav2Vec2Model(Wav2Vec2Config(conv_dim=(s["conv"],) * 7, num_conv_pos_embeddings=16 if small else 128,
                                     num_conv_pos_embedding_groups=2 if small else 16, **common)
                      ).save_pretrained(out["audio"])
        Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(out["audio"])
    if not (out["video"] / "config.json").is_file():
        ViTModel(ViTConfig(image_size=s["image"], patch_size=s["patch"], **common),
                 add_pooling_layer=False).save_pretrained(out["video"])
    return {k: str(v) for k, v in out.items()}


def espeak(text: str, folder: str | Path, voice: str = "en-us", pitch: int | None = None, speed: int = 160,
           trim: bool = True, rate: int = 16_000):
    """espeak-ng speaking `text` (Debian's `espeak-ng` must be installed): int16 mono at `rate`, resampled
    linearly; with `trim`, without its own leading and trailing silence. `folder` holds the temporary WAV."""
    import numpy as np

    wav = Path(folder) / "line.wav"
    subprocess.run(["espeak-ng", "-v", voice, *(["-p", str(pitch)] if pitch is not None else []), "-s", str(speed),
                    "-w", str(wav), text], check=True)
    with wave.open(str(wav)) as w:
        source, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    x = np.interp(np.arange(0, len(data) * rate / source) * source / rate, np.arange(len(data)), data)
    x = x.astype(np.int16)
    if trim:
        voiced = np.nonzero(np.abs(x) > 300)[0]
        x = x[voiced[0]:voiced[-1] + 1]
    return x


def write_wav(path: str | Path, pieces: list, rate: int = 16_000) -> Path:
    """int16 mono pieces, one after another, as a WAV file."""
    import numpy as np

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(pieces).astype(np.int16).tobytes())
    return Path(path)
