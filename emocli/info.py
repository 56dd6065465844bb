"""`emocli info`: versions, device, ffmpeg and the model in use, as a dict."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from . import __version__
from .environment import broken_libraries, installed_version
from .errors import EmocliError
from .media.ffmpeg import ffmpeg_exe, ffprobe_exe
from .model.checkpoint import default_model_dir, describe, read_config, resolve_model


def collect_info(model_dir: str | Path | None = None) -> dict:
    """What emocli would run with: library versions, compute device, ffmpeg, and the model (if any)."""
    import torch
    import transformers

    out: dict = {"emocli": __version__, "python": platform.python_version(), "torch": torch.__version__,
                 "transformers": transformers.__version__}
    broken = {b.name: b.message() for b in broken_libraries()}  # report, do not fail: emocli runs without them
    out["torchaudio"] = broken.pop("torchaudio", None) or installed_version("torchaudio") or "not installed"
    out.update(broken)  # any other library transformers would import that does not load
    try:
        import onnxruntime

        out["onnxruntime"] = f"{onnxruntime.__version__} (for --precision int8)"
    except ImportError:
        out["onnxruntime"] = "not installed (--precision int8 unavailable)"
    cuda = torch.cuda.is_available()
    out["cuda_available"] = cuda
    out["gpu"] = torch.cuda.get_device_name(0) if cuda else None
    out["device"] = "cuda" if cuda else "cpu"
    try:
        exe = ffmpeg_exe()
        first = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.splitlines()
        out["ffmpeg"] = f"{exe} ({first[0].split(' Copyright')[0] if first else 'unknown version'})"
    except (EmocliError, OSError) as exc:
        out["ffmpeg"] = f"not found ({exc})"
    out["ffprobe"] = ffprobe_exe() or "not found (ffmpeg's stream listing is used instead)"
    directory = Path(model_dir) if model_dir else default_model_dir()
    if directory is None:
        out["model"] = "none installed (pass --model DIR)"
    else:
        try:
            if model_dir and not directory.exists():
                directory = resolve_model(model_dir)  # an installed model's name (large)
            config = read_config(directory)
            out["model"] = describe(config, directory)
            out["modalities"] = {m: (out["device"] if m in config.modalities else "not used")
                                 for m in ("text", "audio", "video")}
        except EmocliError as exc:
            out["model"] = f"unusable: {exc.message}"
    return out
