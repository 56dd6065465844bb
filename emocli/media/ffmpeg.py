"""Media decoding with ffmpeg: probing, 16 kHz mono audio, and frames at given timestamps in one pass."""

from __future__ import annotations

import collections
import functools
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import ffmpeg  # ffmpeg-python: builds the command lines
import numpy as np

from ..errors import EmocliError

SAMPLE_RATE_HZ = 16_000  # Wav2Vec2's input rate
#: What folder mode takes: the containers ffmpeg reads that people keep video and audio in (broadcast and camera
#: recordings included). A single file is read whatever its name; these only choose files in a folder.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mk3d", ".ts", ".m2ts", ".mts", ".mpg",
                    ".mpeg", ".m2v", ".vob", ".flv", ".wmv", ".asf", ".3gp", ".3g2", ".ogv", ".mxf", ".dv", ".rm",
                    ".rmvb", ".divx", ".f4v", ".y4m", ".nut")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac", ".wma", ".aif", ".aiff", ".ac3",
                    ".eac3", ".dts", ".mka", ".amr", ".mp2", ".ape", ".wv", ".caf", ".au")
#: Files a folder of episodes holds beside its media that need no mention: subtitles, emocli's own outputs.
_SIDECARS = (".srt", ".vtt", ".ass", ".ssa", ".sub", ".idx", ".sup")


def list_media(folder: Path) -> tuple[list[Path], list[Path]]:
    """The media files of a folder (by extension, in any case; sorted) and the other files, which folder mode
    ignores and names (subtitles, emocli's outputs and hidden files are not named: they are expected there)."""
    media, ignored = [], []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or not p.is_file():  # hidden files (and macOS's ._ companions) are not media
            continue
        suffix = p.suffix.lower()
        if suffix in VIDEO_EXTENSIONS or suffix in AUDIO_EXTENSIONS:
            media.append(p)
        elif suffix not in _SIDECARS and ".emotions." not in p.name and ".explain." not in p.name:
            ignored.append(p)
    return media, ignored
DEFAULT_FPS = 25.0  # assumed when a stream does not state its frame rate


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    """Path of ffmpeg: a system ffmpeg on PATH if there is one, else the binary shipped by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the package raises RuntimeError when its binary is missing
        raise EmocliError(f"no ffmpeg found: install ffmpeg or the imageio-ffmpeg package ({exc})", 2) from None


@functools.lru_cache(maxsize=None)
def ffprobe_exe() -> str | None:
    """Path of a system ffprobe, or None (then ffmpeg's own stream listing is parsed)."""
    return shutil.which("ffprobe")


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds: duration in seconds (None if unknown), streams, frame rate and frame size."""

    path: Path
    duration_s: float | None
    has_audio: bool
    has_video: bool
    fps: float = DEFAULT_FPS
    width: int = 0
    height: int = 0


#: What ffmpeg's "cannot open the input" reasons mean to someone who gave emocli a file (ffmpeg reports some
#: unrecognised files with a stray system error, "File exists")
_OPEN_REASONS = {"File exists": "ffmpeg recognises no media format in it",
                 "Invalid data found when processing input": "ffmpeg recognises no media format in it",
                 "moov atom not found": "an MP4 without its index, as a download or copy cut short leaves it"}


def _ffmpeg_error(path: Path, stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = lines[-1] if lines else "unknown error"
    detail = detail.replace(str(path), path.name)
    opening = re.match(r"Error opening input files?(?: [^:]*)?: (.*)", detail)
    if opening or any(reason in text for reason in _OPEN_REASONS):
        reason = opening.group(1).strip() if opening else detail
        known = next((meaning for key, meaning in _OPEN_REASONS.items() if key in text), None)
        return (f"cannot decode {path}: not a video or audio file ffmpeg can open ("
                f"{known or reason}; ffmpeg said: {reason})")
    return f"cannot decode {path}: {detail}"


def _parse_rate(rate: str | None) -> float | None:
    if not rate or rate in ("0/0", "N/A"):
        return None
    num, _, den = rate.partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return value if 0 < value < 1000 else None


def probe(path: str | Path) -> MediaInfo:
    """Probe a media file's streams and duration; raises EmocliError for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise EmocliError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise EmocliError(f"cannot decode {path}: empty file")
    info = _probe_ffprobe(path) if ffprobe_exe() else _probe_ffmpeg(path)
    if not info.has_audio and not info.has_video:
        raise EmocliError(f"cannot decode {path}: no audio or video stream")
    return info


def _probe_ffprobe(path: Path) -> MediaInfo:
    try:
        data = ffmpeg.probe(str(path), cmd=ffprobe_exe())
    except ffmpeg.Error as exc:
        raise EmocliError(_ffmpeg_error(path, exc.stderr or b"")) from None
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _float(data.get("format", {}).get("duration"))
    fps = (_parse_rate(video.get("avg_frame_rate")) or _parse_rate(video.get("r_frame_rate"))) if video else None
    return MediaInfo(path, duration, audio is not None, video is not None, fps or DEFAULT_FPS,
                     int(video.get("width", 0)) if video else 0, int(video.get("height", 0)) if video else 0)


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if out > 0 else None


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Audio|Video): (.*)")


@functools.lru_cache(maxsize=64)
def _listing(path: str, mtime_ns: int, size: int) -> str:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path], capture_output=True, text=True,
                          errors="replace").stderr


def stream_listing(path: str | Path) -> str:
    """ffmpeg's listing of a file's streams (`ffmpeg -i` with no output, which exits non-zero by design), run
    once per version of the file: probing, the subtitle tracks and the audio tracks all read it."""
    stat = Path(path).stat()
    return _listing(str(path), stat.st_mtime_ns, stat.st_size)


def _probe_ffmpeg(path: Path) -> MediaInfo:
    """Probe with `ffmpeg -i` alone (no ffprobe): parse its stream listing."""
    err = stream_listing(path)
    if "Stream #" not in err:
        raise EmocliError(_ffmpeg_error(path, err))
    m = _DURATION.search(err)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    has_audio = has_video = False
    fps, width, height = DEFAULT_FPS, 0, 0
    for kind, desc in _STREAM.findall(err):
        if kind == "Audio":
            has_audio = True
        elif "attached pic" not in desc and not has_video:
            has_video = True
            size = re.search(r"\b(\d{2,5})x(\d{2,5})\b", desc)
            if size:
                width, height = int(size.group(1)), int(size.group(2))
            rate = re.search(r"([\d.]+) fps", desc) or re.search(r"([\d.]+) tbr", desc)
            if rate:
                fps = _parse_rate(rate.group(1)) or DEFAULT_FPS
    return MediaInfo(path, duration or None, has_audio, has_video, fps, width, height)


def _run(args: list[str], path: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True)
    if proc.returncode != 0:
        raise EmocliError(_ffmpeg_error(path, proc.stderr))
    return proc


def audio_command(path: Path, start_s: float = 0.0, duration_s: float | None = None, track: int = 0) -> list[str]:
    """ffmpeg command that writes an audio stream (the `track`-th, from 0) as 16 kHz mono float32 to stdout."""
    kwargs = {"ss": f"{start_s:.3f}"} if start_s > 0 else {}
    if duration_s is not None:
        kwargs["t"] = f"{duration_s:.3f}"
    stream = ffmpeg.input(str(path), **kwargs).output("pipe:", map=f"0:a:{track}", format="f32le",
                                                       acodec="pcm_f32le",
                                                       ac=1, ar=SAMPLE_RATE_HZ)
    return stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(cmd=ffmpeg_exe())


def decode_audio(path: str | Path, start_s: float = 0.0, duration_s: float | None = None, track: int = 0
                 ) -> np.ndarray:
    """Decode [start, start + duration] of an audio stream (the first by default) as 16 kHz mono float32."""
    path = Path(path)
    proc = _run(audio_command(path, start_s, duration_s, track), path)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def _select_expression(times_s: np.ndarray, half_window_s: float) -> str:
    """An ffmpeg select expression true for frames within half a frame of any target time (merged windows)."""
    windows: list[list[float]] = []
    for t in np.sort(times_s):
        lo, hi = t - half_window_s, t + half_window_s
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    return _search_tree(windows)


def _search_tree(windows: list[list[float]]) -> str:
    """Sorted disjoint windows as a binary search: O(log n) comparisons per frame, and a nesting depth that
    stays far below the limit of ffmpeg's expression parser (a flat sum fails at about 100 terms)."""
    if len(windows) == 1:
        lo, hi = windows[0]
        return f"between(t,{lo:.4f},{hi:.4f})"
    mid = len(windows) // 2
    return f"if(lt(t,{windows[mid][0]:.4f}),{_search_tree(windows[:mid])},{_search_tree(windows[mid:])})"


_PTS_TIME = re.compile(r"pts_time:\s*(-?[\d.]+(?:e[-+]?\d+)?)")


def frames_command(path: Path, times_s: np.ndarray, size: int | tuple[int, int], fps: float, start_s: float,
                   duration_s: float, threads: int | None = None, letterbox: bool = False) -> list[str]:
    """ffmpeg command selecting the frames nearest to `times_s` (relative to start_s) scaled to size x size (or
    (width, height)) RGB, stretched or (`letterbox`) fitted inside with black bars; `threads`: the decoder's
    threads (None: ffmpeg's choice, one per core)."""
    width, height = (size, size) if isinstance(size, int) else size
    expr = _select_expression(times_s, 0.5 / max(fps, 1.0))
    kwargs = {"ss": f"{start_s:.3f}"} if start_s > 0 else {}
    if threads:
        kwargs["threads"] = str(threads)
    stream = (ffmpeg.input(str(path), t=f"{duration_s:.3f}", **kwargs).video
              .filter("select", expr).filter("showinfo")
              .filter("scale", width, height, flags="bilinear",
                      **({"force_original_aspect_ratio": "decrease"} if letterbox else {})))
    if letterbox:
        stream = stream.filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")
    out = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough", an=None)
    return out.global_args("-nostdin", "-hide_banner", "-loglevel", "info").compile(cmd=ffmpeg_exe())


def sample_frames(path: str | Path, times_s: np.ndarray, size: int | tuple[int, int], fps: float = DEFAULT_FPS,
                  start_s: float = 0.0, duration_s: float | None = None, letterbox: bool = False
                  ) -> np.ndarray | None:
    """Frames (uint8 [len(times), size, size, 3]) nearest to each absolute time, decoded in one ffmpeg pass.

    Only [start_s, start_s + duration_s] is decoded. A frame farther from its time than `frame_tolerance_s` does
    not count (the nearest found one stands in for it); returns None when no time has a frame that near.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    decoded = list(stream_frames(path, times_s, size, fps, start_s, duration_s, letterbox=letterbox))
    frames, found = frames_near(times_s, decoded, frame_tolerance_s(fps), len(times_s))
    return frames[0] if frames is not None and found.any() else None


def nearest_frames(times_s: np.ndarray, decoded: list[tuple[float, np.ndarray]]) -> np.ndarray | None:
    """For each time, the decoded (time, frame) pair's frame nearest to it, stacked; None if none was decoded."""
    if not decoded:
        return None
    stamps = np.array([t for t, _ in decoded])
    nearest = np.abs(times_s[:, None] - stamps[None, :]).argmin(axis=1)
    return np.stack([decoded[i][1] for i in nearest])


def frame_tolerance_s(fps: float) -> float:
    """How far from its target time a decoded frame may lie and still stand for it: two frame intervals (half an
    interval of rounding to the frame grid, plus a frame dropped or held by a variable frame rate), at least
    0.2 s (about the shortest time in which a film's picture or a face's expression changes). A frame farther off
    is not the picture at that time (a truncated file, or a picture stream that ends before the audio, decodes
    nothing there, seconds away): the target counts as not decoded."""
    return max(2.0 / max(fps, 1.0), 0.2)


def frames_near(times_s: np.ndarray, decoded: list[tuple[float, np.ndarray]], max_gap_s: float,
                per_item: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Frames for groups of `per_item` target times (one group per utterance): for each target the decoded frame
    nearest to it if one lies within `max_gap_s`; a target without one takes the found frame of its own group
    nearest to it (the picture it would have shown is unknown; a neighbouring one of the same utterance is the
    best stand-in), and a group with none found gets zeros. Returns the frames [groups, per_item, h, w, 3] (None
    when nothing was decoded) and which targets were found [groups, per_item]."""
    times_s = np.asarray(times_s, dtype=np.float64)
    groups = len(times_s) // per_item
    found = np.zeros((groups, per_item), dtype=bool)
    if not decoded:
        return None, found
    stamps = np.array([t for t, _ in decoded])
    gap = np.abs(times_s[:, None] - stamps[None, :])
    nearest = gap.argmin(axis=1)
    found = (gap[np.arange(len(times_s)), nearest] <= max_gap_s).reshape(groups, per_item)
    frames = np.zeros((groups, per_item, *decoded[0][1].shape), dtype=decoded[0][1].dtype)
    for g in range(groups):
        ok = np.flatnonzero(found[g])
        for k in range(per_item):
            source = k if found[g, k] else (ok[np.abs(ok - k).argmin()] if len(ok) else None)
            if source is not None:
                frames[g, k] = decoded[nearest[g * per_item + source]][1]
    return frames, found


def stream_frames(path: str | Path, times_s: np.ndarray, size: int | tuple[int, int], fps: float = DEFAULT_FPS,
                  start_s: float = 0.0, duration_s: float | None = None, threads: int | None = None,
                  stop=None, letterbox: bool = False) -> Iterator[tuple[float, np.ndarray]]:
    """The frames `sample_frames` chooses from, as ffmpeg decodes them: (absolute time, uint8 [h, w, 3]) in
    time order, from one pass over [start_s, start_s + duration_s]. Frame times come from ffmpeg's showinfo lines,
    which it writes before the frame itself; if they cannot be read, times are spread over the targets' range once
    the pass ends (as `sample_frames` does). Stops early, ending ffmpeg, when `stop` (anything with is_set()) is
    set."""
    path = Path(path)
    times_s = np.asarray(times_s, dtype=np.float64)
    if duration_s is None:
        duration_s = float(times_s.max()) - start_s + 1.0
    rel = times_s - start_s
    proc = subprocess.Popen(frames_command(path, rel, size, fps, start_s, duration_s, threads, letterbox),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = _StderrReader(proc.stderr)
    width, height = (size, size) if isinstance(size, int) else size
    frame_bytes = width * height * 3
    unpaired: list[np.ndarray] = []  # frames whose time was not found in time
    try:
        k = 0
        while not (stop is not None and stop.is_set()):
            buf = bytearray(frame_bytes)
            got = proc.stdout.readinto(memoryview(buf))
            while 0 < got < frame_bytes:  # a pipe read may return part of a frame
                more = proc.stdout.readinto(memoryview(buf)[got:])
                if not more:
                    break
                got += more
            if got < frame_bytes:
                break
            frame = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            pts = None if unpaired else log.pts(k)
            if pts is None:
                unpaired.append(frame)
            else:
                yield start_s + pts, frame
            k += 1
        if stop is not None and stop.is_set():
            return
        proc.stdout.close()
        if proc.wait() != 0:
            raise EmocliError(_ffmpeg_error(path, log.tail()))
        if unpaired:  # cannot pair frames with times: spread them over the targets in the order they came
            n = len(unpaired)
            spread = np.linspace(rel.min(), rel.max(), n) if n > 1 else np.array([rel.min()])
            for t, frame in zip(spread, unpaired):
                yield start_s + float(t), frame
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _StderrReader:
    """Drains an ffmpeg's stderr in a thread (so ffmpeg never blocks on it), keeping showinfo's frame times and
    the last other lines (for error messages)."""

    def __init__(self, stream) -> None:
        self._times: list[float] = []
        self._lines: collections.deque = collections.deque(maxlen=20)
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            m = _PTS_TIME.search(line)
            with self._cond:
                if m:
                    self._times.append(float(m.group(1)))
                    self._cond.notify_all()
                elif line.strip():
                    self._lines.append(line)
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def pts(self, k: int, timeout_s: float = 10.0) -> float | None:
        """The k-th frame's time (relative to the seek point); None if ffmpeg ended, or went silent for
        timeout_s, without writing it."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._times) > k or self._done, timeout=timeout_s)
            return self._times[k] if len(self._times) > k else None

    def tail(self) -> str:
        self._thread.join(timeout=5.0)
        with self._cond:
            return "\n".join(self._lines)
