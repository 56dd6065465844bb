"""Predictions -> files: CSV, JSON, annotated SRT and WebVTT, each written atomically (temp file + rename)."""

from __future__ import annotations

import glob
import html
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pysrt

from . import LABELS
from .errors import UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone makes files private (0600)


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Check, before any work that leads to them, that outputs can go to this folder (it is one, or can be made
    one): a path that cannot fails now, in one line, not after hours of decoding or training. Creates nothing."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write to {what} {path}: permission denied")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create {what} {path}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {what} {path}: permission denied in {ancestor}")
    return path


def remove_stale_temps(path: str | Path) -> None:
    """Delete the temp files of `path` that a run killed mid-write left behind (atomic_write names them)."""
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write a file so that it either exists complete or not at all (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


@dataclass
class Prediction:
    """The model's answer for one cue: times in seconds, text, speaker, probabilities over LABELS."""

    index: int
    start_s: float
    end_s: float
    text: str
    speaker: str | None
    probabilities: np.ndarray
    modalities: list[str] = field(default_factory=list)  # the modalities actually used (others were masked)
    attention: dict | None = None

    @property
    def emotion(self) -> str:
        return LABELS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


@dataclass
class VideoResult:
    """Everything written for one video."""

    video: Path
    duration_s: float | None
    model: dict
    predictions: list[Prediction]
    subtitles: dict = field(default_factory=dict)
    stem: str | None = None  # output file names: <stem>.emotions.<ext>; None: the video's stem


class ResultWriter:
    """Base writer: one file extension and one `render` method."""

    extension: str = ""

    def render(self, result: VideoResult) -> str:
        raise NotImplementedError

    def path(self, result: VideoResult, output_dir: Path) -> Path:
        return output_path(result.video, output_dir, self.extension, result.stem)

    def write(self, result: VideoResult, output_dir: Path) -> Path:
        path = self.path(result, output_dir)
        remove_stale_temps(path)
        return atomic_write(path, self.render(result))


def output_path(video: Path, output_dir: Path, extension: str, stem: str | None = None) -> Path:
    """`<output_dir>/<stem>.emotions.<ext>`, the stem being the video's unless given."""
    return Path(output_dir) / f"{stem or Path(video).stem}.emotions.{extension}"


#: One colour per emotion (subtitles, plots), chosen to stay distinct for common colour-vision deficiencies.
EMOTION_COLORS = {"anger": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "joy": "#f2b701",
                  "neutral": "#8c8c8c", "sadness": "#1f77b4", "surprise": "#ff7f0e"}


def _labelled(p: Prediction) -> str:
    text = f"{p.speaker}: {p.text}" if p.speaker else p.text
    return f"[{p.emotion} {p.confidence:.2f}] {text}"


class CsvWriter(ResultWriter):
    extension = "csv"

    def render(self, result: VideoResult) -> str:
        rows = [{"index": p.index, "start": round(p.start_s, 3), "end": round(p.end_s, 3),
                 "speaker": p.speaker or "", "text": p.text, "emotion": p.emotion,
                 "confidence": round(p.confidence, 4),
                 **{f"p_{label}": round(float(v), 4) for label, v in zip(LABELS, p.probabilities)}}
                for p in result.predictions]
        columns = ["index", "start", "end", "speaker", "text", "emotion", "confidence"] + [f"p_{x}" for x in LABELS]
        return pd.DataFrame(rows, columns=columns).to_csv(index=False, lineterminator="\n")


class JsonWriter(ResultWriter):
    extension = "json"

    def render(self, result: VideoResult) -> str:
        utterances = []
        for p in result.predictions:
            item = {"index": p.index, "start": round(p.start_s, 3), "end": round(p.end_s, 3),
                    "speaker": p.speaker, "text": p.text, "emotion": p.emotion,
                    "confidence": round(p.confidence, 4),
                    "probabilities": {label: round(float(v), 4) for label, v in zip(LABELS, p.probabilities)},
                    "modalities": p.modalities}
            if p.attention is not None:
                item["attention"] = p.attention
            utterances.append(item)
        doc = {"video": str(result.video), "duration": result.duration_s, "model": result.model,
               "subtitles": result.subtitles, "utterances": utterances}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


class SrtWriter(ResultWriter):
    """Every cue with its timing, prefixed by `[emotion confidence]`; with color, wrapped in a <font color>."""

    extension = "srt"

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def render(self, result: VideoResult) -> str:
        subs = pysrt.SubRipFile()
        for i, p in enumerate(result.predictions, start=1):
            text = _labelled(p)
            if self.color:
                text = f'<font color="{EMOTION_COLORS[p.emotion]}">{text}</font>'
            subs.append(pysrt.SubRipItem(i, start=pysrt.SubRipTime(milliseconds=round(p.start_s * 1000)),
                                         end=pysrt.SubRipTime(milliseconds=round(p.end_s * 1000)), text=text))
        buffer = io.StringIO()
        subs.write_into(buffer, eol="\n")
        return buffer.getvalue()


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


class VttWriter(ResultWriter):
    extension = "vtt"

    def render(self, result: VideoResult) -> str:
        blocks = ["WEBVTT\n"]
        for p in result.predictions:
            text = html.escape(_labelled(p), quote=False)  # WebVTT cue text: & < > as entities (so no "-->")
            blocks.append(f"{_vtt_time(p.start_s)} --> {_vtt_time(p.end_s)}\n{text}\n")
        return "\n".join(blocks)


def _ass_time(seconds: float) -> str:
    cs = int(round(seconds * 100))
    return f"{cs // 360_000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _ass_colour(hex_rgb: str) -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"&H00{b}{g}{r}".upper()


class AssWriter(ResultWriter):
    """Advanced SubStation Alpha: one style per emotion, so players and editors colour each line by emotion."""

    extension = "ass"

    def render(self, result: VideoResult) -> str:
        head = ["[Script Info]", f"Title: emotions of {Path(result.video).name}", "ScriptType: v4.00+",
                "WrapStyle: 0", "ScaledBorderAndShadow: yes", "PlayResX: 1280", "PlayResY: 720", "",
                "[V4+ Styles]",
                "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
                "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
                "Alignment, MarginL, MarginR, MarginV, Encoding"]
        for label in LABELS:
            head.append(f"Style: {label},Arial,40,{_ass_colour(EMOTION_COLORS[label])},&H000000FF,&H00000000,"
                        f"&H64000000,0,0,0,0,100,100,0,0,1,2,1,2,40,40,30,1")
        head += ["", "[Events]",
                 "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
        for p in result.predictions:
            text = f"[{p.emotion} {p.confidence:.2f}] {p.text}".replace("{", "(").replace("}", ")")
            name = (p.speaker or "").replace(",", " ")
            head.append(f"Dialogue: 0,{_ass_time(p.start_s)},{_ass_time(p.end_s)},{p.emotion},{name},0,0,0,,{text}")
        return "\n".join(head) + "\n"


WRITERS: dict[str, type[ResultWriter]] = {w.extension: w for w in (CsvWriter, JsonWriter, SrtWriter, VttWriter,
                                                                   AssWriter)}


def parse_formats(spec: str) -> list[str]:
    """'csv', 'all' or a comma list -> a list of known format names (in registry order)."""
    names = {x.strip().lower() for x in spec.split(",") if x.strip()}
    if "all" in names:
        return list(WRITERS)
    unknown = names - set(WRITERS)
    if unknown or not names:
        raise UsageError(f"unknown output format {', '.join(sorted(unknown)) or repr(spec)}: choose from "
                         f"{', '.join(WRITERS)} or all")
    return [f for f in WRITERS if f in names]


def write_outputs(result: VideoResult, formats: list[str], output_dir: Path, color: bool = False) -> list[Path]:
    """Write every requested format for one video; returns the paths written."""
    return [(SrtWriter(color) if f == "srt" else WRITERS[f]()).write(result, output_dir) for f in formats]
