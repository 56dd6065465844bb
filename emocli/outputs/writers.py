"""Predictions -> files: CSV, JSON, annotated SRT, WebVTT, ASS and the HTML review page (a registry of writers, one
class per format), each written atomically (temp file + rename)."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pysrt

from ..errors import UsageError
from ..files import atomic_write, remove_stale_temps, write_together
from ..labels import EMOTION_COLORS, LABELS
from .result import Prediction, VideoResult, group_cues, output_path, rounded
from .review import render_page


class ResultWriter:
    """Base writer: one file extension and one `render` method."""

    extension: str = ""

    def render(self, result: VideoResult) -> str:
        raise NotImplementedError

    def path(self, result: VideoResult, output_dir: Path) -> Path:
        return output_path(result.video, output_dir, self.extension, result.stem)

    def content(self, result: VideoResult, path: Path) -> str:
        """The file's text, for a file at `path` (the review page links the video relative to it)."""
        return self.render(result)

    def write(self, result: VideoResult, output_dir: Path) -> Path:
        path = self.path(result, output_dir)
        remove_stale_temps(path)
        return atomic_write(path, self.content(result, path))


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


#: The CSV's columns, in order (`face_*` only with --face, `voice_*` with --voice, `speaker_source` with
#: --diarize).
CSV_COLUMNS = (["index", "turn", "start", "end", "speaker", "text", "emotion", "confidence"]
               + [f"p_{x}" for x in LABELS] + ["non_speech", "source", "asr_confidence", "no_speech_prob"])
FACE_COLUMNS = ["face_emotion", "face_confidence", "face_frames"]
VOICE_COLUMNS = ["voice_emotion", "voice_confidence"]


class CsvWriter(ResultWriter):
    """One row per record; probabilities as `p_<label>` columns, empty cells where a field does not apply."""

    extension = "csv"

    def render(self, result: VideoResult) -> str:
        rows = []
        for p in result.predictions:
            r = p.record()
            row = {"index": r["index"], "turn": r["turn"], "start": round(r["start"], 3), "end": round(r["end"], 3),
                   "speaker": r["speaker"] or "", "text": r["text"], "emotion": r["emotion"] or "",
                   "non_speech": r["non_speech"] or "", "source": r["source"],
                   "asr_confidence": _cell(rounded(r["asr_confidence"], 4)),
                   "no_speech_prob": _cell(rounded(r["no_speech_prob"], 4))}
            if r["probabilities"] is not None:
                row["confidence"] = round(r["confidence"], 4)
                row.update({f"p_{label}": round(v, 4) for label, v in r["probabilities"].items()})
            if result.faces:  # every row gets the three (a float column would write 8 frames as 8.0)
                face = r["face"]
                row.update(face_emotion=(face.emotion or "") if face else "", face_frames=face.frames if face else "",
                           face_confidence=round(face.confidence, 4) if face and face.frames else "")
            if result.voices:
                voice = r["voice"]
                row.update(voice_emotion=voice.emotion if voice else "",
                           voice_confidence=round(voice.confidence, 4) if voice else "")
            if result.speakers:
                row["speaker_source"] = r["speaker_source"] or ""
            rows.append(row)
        columns = (CSV_COLUMNS + (FACE_COLUMNS if result.faces else []) + (VOICE_COLUMNS if result.voices else [])
                   + (["speaker_source"] if result.speakers else []))
        import pandas as pd  # here: the reader stage, which imports this module, starts before pandas loads

        return pd.DataFrame(rows, columns=columns).to_csv(index=False, lineterminator="\n")


def _cell(value: object) -> object:
    return "" if value is None else value


#: JSON fields written only where they apply (a transcribed row's ASR scores, a non-speech reason, ...)
_JSON_OPTIONAL = ("asr_confidence", "no_speech_prob", "non_speech", "removed", "attention", "media_missing")


class JsonWriter(ResultWriter):
    """One document per video: the video, its duration, the model, how its subtitles were read, and a record per
    row (optional fields only where they apply)."""

    extension = "json"

    def render(self, result: VideoResult) -> str:
        utterances = []
        for p in result.predictions:
            r = p.record()
            item = {k: r[k] for k in ("index", "turn")}
            item.update(start=round(r["start"], 3), end=round(r["end"], 3), speaker=r["speaker"], text=r["text"],
                        emotion=r["emotion"], confidence=rounded(r["confidence"], 4),
                        probabilities=({k: round(v, 4) for k, v in r["probabilities"].items()}
                                       if r["probabilities"] is not None else None),
                        modalities=r["modalities"], source=r["source"])
            for key in _JSON_OPTIONAL:
                if r[key] is not None:
                    item[key] = rounded(r[key], 4) if key in ("asr_confidence", "no_speech_prob") else r[key]
            if result.faces:
                item["face"] = r["face"].as_json() if r["face"] is not None else None
            if result.voices:
                item["voice"] = r["voice"].as_json() if r["voice"] is not None else None
            if result.speakers:
                item["speaker_source"] = r["speaker_source"]
            utterances.append(item)
        doc = {"video": str(result.video), "duration": result.duration_s, "model": result.model,
               "subtitles": result.subtitles}
        if result.media_gaps:
            doc["media_gaps"] = result.media_gaps
        doc["utterances"] = utterances
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

    def content(self, result: VideoResult, path: Path) -> str:
        return render_page(result, path.parent)

    def render(self, result: VideoResult) -> str:  # as if the page sat beside the video
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


def write_outputs(result: VideoResult, formats: list[str], output_dir: Path, color: bool = False,
                  extra: list[tuple[Path, str | bytes]] = ()) -> list[Path]:
    """Write every requested format for one video (and `extra` files, such as its plot) all or none
    (files.write_together); returns the paths written."""
    files = []
    for f in formats:
        writer = SrtWriter(color) if f == "srt" else WRITERS[f]()
        path = writer.path(result, output_dir)
        files.append((path, writer.content(result, path)))
    return write_together(files + list(extra))
