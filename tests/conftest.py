"""Shared fixtures: tiny random-weight encoders saved like real ones, tiny checkpoints, synthetic media."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from emocli.model.checkpoint import save_checkpoint  # noqa: E402
from emocli.model.network import EmotionModel, FusionConfig, make_config  # noqa: E402
from emocli.synth import make_encoders, make_media, write_srt  # noqa: E402

torch.set_num_threads(2)
MELD_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "meld"


@pytest.fixture(scope="session")
def encoders(tmp_path_factory) -> dict[str, str]:
    """Tiny BERT, Wav2Vec2 and ViT with random weights, written with save_pretrained (the real loading path)."""
    return make_encoders(tmp_path_factory.mktemp("encoders"), "tiny")


def build_checkpoint(directory: Path, encoders: dict[str, str], modalities: list[str], context: int = 0,
                     seed: int = 0) -> Path:
    """A random-weight checkpoint over the tiny encoders, saved like a trained one."""
    config = make_config(modalities, encoders["text"], encoders["audio"], encoders["video"], context=context,
                         fusion=FusionConfig(hidden=16, heads=2, lstm_hidden=8, frame_heads=2))
    torch.manual_seed(seed)
    return save_checkpoint(EmotionModel(config), directory)


@pytest.fixture(scope="session")
def trimodal_model(tmp_path_factory, encoders) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("models") / "tav", encoders, ["text", "audio", "video"])


@pytest.fixture(scope="session")
def text_model(tmp_path_factory, encoders) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("models") / "text", encoders, ["text"])


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Synthetic media of known durations: with both streams, video only, silent audio, audio only."""
    root = tmp_path_factory.mktemp("media")
    make_media(root / "both.mp4", 6.0)
    make_media(root / "noaudio.mp4", 6.0, audio=None)
    make_media(root / "silent.mp4", 6.0, audio="silence")
    make_media(root / "audioonly.wav", 6.0, video=False)
    return root


SIX_CUES = [(0.2, 1.0, "I can't believe you did that!"), (1.1, 2.0, "JOEY: How you doin'?"),
            (2.1, 3.0, "<i>Oh my God.</i>"), (3.2, 4.0, "That's so sad."), (4.1, 5.0, "Get out!"),
            (5.1, 5.9, "Okay.")]


@pytest.fixture
def six_cue_srt(tmp_path) -> Path:
    return write_srt(tmp_path / "six.srt", SIX_CUES)


def season(media_dir: Path, folder: Path, count: int) -> Path:
    """A folder of `count` episodes (the 6-second clip under other names), each with the six-cue SRT."""
    folder.mkdir()
    for k in range(count):
        (folder / f"ep{k}.mp4").symlink_to(media_dir / "both.mp4")
        write_srt(folder / f"ep{k}.srt", SIX_CUES)
    return folder
