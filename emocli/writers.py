"""Predictions -> files: CSV, JSON, annotated SRT, WebVTT, ASS and the HTML review page, each written atomically
(temp file + rename)."""

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
    """One row of the outputs: a cue (or one speaker's turn of it) with times in seconds, text, speaker and the
    model's probabilities over LABELS; a non-speech cue has no probabilities and says why (`non_speech`)."""

    index: int | str
    start_s: float
    end_s: float
    text: str
    speaker: str | None
    probabilities: np.ndarray | None
    modalities: list[str] = field(default_factory=list)  # the modalities actually used (others were masked)
    attention: dict | None = None
    position: int = 0  # the cue's place in the subtitle file
    turn: int = 1  # 1-based turn within a two-speaker cue
    turns: int = 1
    non_speech: str | None = None
    removed: tuple[str, ...] = ()  # sound descriptions taken out of the cue's text
    source: str = "subtitles"  # where the text came from: subtitles, embedded track or asr
    asr: tuple[float, float] | None = None  # a transcribed row's (confidence, no-speech probability)
    face: object | None = None  # --face: a faces.FaceReading (None: not looked at, e.g. a non-speech row)

    @property
    def labelled(self) -> bool:
        return self.probabilities is not None

    @property
    def emotion(self) -> str | None:
        return LABELS[int(np.argmax(self.probabilities))] if self.labelled else None

    @property
    def confidence(self) -> float | None:
        return float(np.max(self.probabilities)) if self.labelled else None


def group_cues(predictions: list[Prediction]) -> list[list[Prediction]]:
    """Rows (in output order) grouped back into the subtitle file's cues: a cue's turns follow its first."""
    cues: list[list[Prediction]] = []
    for p in predictions:
        if p.turn > 1 and cues and cues[-1][0].position == p.position and cues[-1][0].index == p.index:
            cues[-1].append(p)
        else:
            cues.append([p])
    return cues


@dataclass
class VideoResult:
    """Everything written for one video."""

    video: Path
    duration_s: float | None
    model: dict
    predictions: list[Prediction]
    subtitles: dict = field(default_factory=dict)
    stem: str | None = None  # output file names: <stem>.emotions.<ext>; None: the video's stem
    faces: bool = False  # --face ran: the face columns and blocks are written

    @property
    def labelled(self) -> list[Prediction]:
        """The rows the model labelled (not the non-speech cues)."""
        return [p for p in self.predictions if p.labelled]


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
    """A row as a subtitle line: `[emotion confidence] SPEAKER: text`, a turn's dash kept; a non-speech cue's
    text as it was."""
    if not p.labelled:
        return p.text
    text = f"{p.speaker}: {p.text}" if p.speaker else p.text
    return f"[{p.emotion} {p.confidence:.2f}] {'- ' if p.turns > 1 else ''}{text}"


def _cue_span(rows: list[Prediction]) -> tuple[float, float]:
    return rows[0].start_s, max(p.end_s for p in rows)


def _cue_number(rows: list[Prediction], fallback: int) -> int:
    """The SRT number of a cue: the file's own, where it was a number; else its place among the outputs."""
    index = rows[0].index
    return index if isinstance(index, int) and not isinstance(index, bool) else fallback


class CsvWriter(ResultWriter):
    extension = "csv"

    def render(self, result: VideoResult) -> str:
        rows = []
        for p in result.predictions:
            row = {"index": p.index, "turn": p.turn, "start": round(p.start_s, 3), "end": round(p.end_s, 3),
                   "speaker": p.speaker or "", "text": p.text, "emotion": p.emotion or "",
                   "non_speech": p.non_speech or "", "source": p.source,
                   "asr_confidence": round(p.asr[0], 4) if p.asr else "",
                   "no_speech_prob": round(p.asr[1], 4) if p.asr else ""}
            if p.labelled:
                row["confidence"] = round(p.confidence, 4)
                row.update({f"p_{label}": round(float(v), 4) for label, v in zip(LABELS, p.probabilities)})
            if result.faces:  # every row gets the three (a float column would write 8 frames as 8.0)
                face = p.face
                row.update(face_emotion=(face.emotion or "") if face else "", face_frames=face.frames if face else "",
                           face_confidence=round(face.confidence, 4) if face and face.frames else "")
            rows.append(row)
        columns = (["index", "turn", "start", "end", "speaker", "text", "emotion", "confidence"]
                   + [f"p_{x}" for x in LABELS] + ["non_speech", "source", "asr_confidence", "no_speech_prob"]
                   + (["face_emotion", "face_confidence", "face_frames"] if result.faces else []))
        import pandas as pd  # here: the reader stage, which imports this module, starts before pandas loads

        return pd.DataFrame(rows, columns=columns).to_csv(index=False, lineterminator="\n")


class JsonWriter(ResultWriter):
    extension = "json"

    def render(self, result: VideoResult) -> str:
        utterances = []
        for p in result.predictions:
            item = {"index": p.index, "turn": p.turn, "start": round(p.start_s, 3), "end": round(p.end_s, 3),
                    "speaker": p.speaker, "text": p.text, "emotion": p.emotion,
                    "confidence": round(p.confidence, 4) if p.labelled else None,
                    "probabilities": ({label: round(float(v), 4) for label, v in zip(LABELS, p.probabilities)}
                                      if p.labelled else None),
                    "modalities": p.modalities, "source": p.source}
            if p.asr:
                item["asr_confidence"], item["no_speech_prob"] = round(p.asr[0], 4), round(p.asr[1], 4)
            if p.non_speech:
                item["non_speech"] = p.non_speech
            if p.removed:
                item["removed"] = list(p.removed)
            if p.attention is not None:
                item["attention"] = p.attention
            if result.faces:
                item["face"] = p.face.as_json() if p.face is not None else None
            utterances.append(item)
        doc = {"video": str(result.video), "duration": result.duration_s, "model": result.model,
               "subtitles": result.subtitles, "utterances": utterances}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


class SrtWriter(ResultWriter):
    """Every cue with its number and timing, each line (a turn) prefixed by `[emotion confidence]`; with color,
    each wrapped in a <font color>. Non-speech cues are written as they were, unlabelled."""

    extension = "srt"

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def render(self, result: VideoResult) -> str:
        subs = pysrt.SubRipFile()
        for i, rows in enumerate(group_cues(result.predictions), start=1):
            lines = []
            for p in rows:
                line = _labelled(p)
                if self.color and p.labelled:
                    line = f'<font color="{EMOTION_COLORS[p.emotion]}">{line}</font>'
                lines.append(line)
            start_s, end_s = _cue_span(rows)
            subs.append(pysrt.SubRipItem(_cue_number(rows, i),
                                         start=pysrt.SubRipTime(milliseconds=round(start_s * 1000)),
                                         end=pysrt.SubRipTime(milliseconds=round(end_s * 1000)),
                                         text="\n".join(lines)))
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
        for rows in group_cues(result.predictions):
            # WebVTT cue text: & < > as entities (so no "-->"); the cue keeps the file's number or identifier
            text = "\n".join(html.escape(_labelled(p), quote=False) for p in rows)
            start_s, end_s = _cue_span(rows)
            ident = " ".join(str(rows[0].index).replace("-->", "->").split())
            blocks.append(f"{ident}\n{_vtt_time(start_s)} --> {_vtt_time(end_s)}\n{text}\n")
        return "\n".join(blocks)


def _ass_time(seconds: float) -> str:
    cs = int(round(seconds * 100))
    return f"{cs // 360_000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


NON_SPEECH_STYLE = "non-speech"  # the ASS style of cues that were not labelled (sound descriptions, credits)


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
        for label, colour in [*EMOTION_COLORS.items(), (NON_SPEECH_STYLE, "#c8c8c8")]:
            head.append(f"Style: {label},Arial,40,{_ass_colour(colour)},&H000000FF,&H00000000,"
                        f"&H64000000,0,0,0,0,100,100,0,0,1,2,1,2,40,40,30,1")
        head += ["", "[Events]",
                 "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
        for rows in group_cues(result.predictions):
            lines = [(_labelled(p) if p.turns > 1 or not p.speaker or not p.labelled
                      else f"[{p.emotion} {p.confidence:.2f}] {p.text}") for p in rows]
            text = "\\N".join(line.replace("{", "(").replace("}", ")").replace("\\", "/") for line in lines)
            speakers = list(dict.fromkeys(p.speaker for p in rows if p.speaker))
            name = " / ".join(speakers).replace(",", " ")
            style = next((p.emotion for p in rows if p.labelled), NON_SPEECH_STYLE)
            start_s, end_s = _cue_span(rows)
            head.append(f"Dialogue: 0,{_ass_time(start_s)},{_ass_time(end_s)},{style},{name},0,0,0,,{text}")
        return "\n".join(head) + "\n"


class HtmlWriter(ResultWriter):
    """`<stem>.emotions.html`: the review page (review.py), referencing the video by its path relative to it."""

    extension = "html"

    def write(self, result: VideoResult, output_dir: Path) -> Path:
        from .review import render_page

        path = self.path(result, output_dir)
        remove_stale_temps(path)
        return atomic_write(path, render_page(result, path.parent))

    def render(self, result: VideoResult) -> str:  # as if the page sat beside the video
        from .review import render_page

        return render_page(result, Path(result.video).parent)


WRITERS: dict[str, type[ResultWriter]] = {w.extension: w for w in (CsvWriter, JsonWriter, SrtWriter, VttWriter,
                                                                   AssWriter, HtmlWriter)}


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
