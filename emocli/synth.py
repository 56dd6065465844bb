"""Synthetic media from ffmpeg's lavfi sources, for tests, benchmarks and the bundled sample."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .media import ffmpeg_exe


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
