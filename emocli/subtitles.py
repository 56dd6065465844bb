"""Subtitles -> cleaned cues: reading (SRT via pysrt, WebVTT), encodings, tag stripping, speakers, validation."""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pysrt

from .errors import EmocliError

SUBTITLE_EXTENSIONS = (".srt", ".vtt")
#: A cue shorter than this (seconds) carries no usable audio or frames; it is counted as zero-length.
MIN_CUE_S = 0.01


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: 1-based position in the file, times in seconds, cleaned text and optional speaker."""

    index: int
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    shown_end_s: float | None = None  # the file's end time, where end_s was clipped to the end of the media

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class SubtitleReport:
    """What happened to the cues of one file: how many were kept and why the others were skipped or changed."""

    total: int = 0
    valid: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count (cue not annotated)
    noted: Counter = field(default_factory=Counter)  # reason -> count (cue kept, but worth a warning)

    def warning(self) -> str | None:
        """One line describing skipped and unusual cues, or None when everything was clean."""
        parts = []
        if self.skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            parts.append(f"{sum(self.skipped.values())} of {self.total} cues skipped ({reasons})")
        if self.noted:
            parts.append(", ".join(f"{n} {why}" for why, n in sorted(self.noted.items())))
        return "; ".join(parts) or None


# --- decoding bytes -------------------------------------------------------------------------------------------

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode_subtitle_bytes(raw: bytes, name: str = "subtitles") -> str:
    """Decode subtitle bytes: BOMs, UTF-16 without BOM, UTF-8, else cp1252; binary data is refused."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _decode(raw[len(bom):], encoding.replace("-sig", ""), name)
    if len(raw) >= 4:
        even_nuls = raw[0::2].count(0) / len(raw[0::2])
        odd_nuls = raw[1::2].count(0) / len(raw[1::2])
        if odd_nuls > 0.3 and even_nuls < 0.05:
            return _decode(raw, "utf-16-le", name)
        if even_nuls > 0.3 and odd_nuls < 0.05:
            return _decode(raw, "utf-16-be", name)
    if b"\x00" in raw:
        raise EmocliError(f"{name}: binary data, not a subtitle file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > max(8, len(text) // 100):
        raise EmocliError(f"{name}: binary data, not a subtitle file")
    return text


def _decode(raw: bytes, encoding: str, name: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EmocliError(f"{name}: not valid {encoding} text ({exc.reason} at byte {exc.start})") from None


# --- cleaning -------------------------------------------------------------------------------------------------

_ASS_TAG = re.compile(r"\{\\[^}]*\}")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_TIMESTAMP_TAG = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{1,3}>")
_SPEAKER = re.compile(r"^\s*([A-Z][A-Za-z0-9.'\-]*(?: [A-Z][A-Za-z0-9.'\-]*){0,2})\s*:\s+(\S.*)$", re.DOTALL)


def clean_cue_text(raw: str) -> tuple[str, str | None]:
    """Strip HTML/ASS tags, join lines, and split off a leading `NAME:` (or a WebVTT `<v NAME>`) as the speaker."""
    speaker = None
    voice = _VOICE.search(raw)
    if voice:
        speaker = voice.group(1).strip()
    text = _ASS_TAG.sub("", raw).replace("\\N", "\n").replace("\\n", "\n")
    text = _TIMESTAMP_TAG.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = html.unescape(text)
    lines = [re.sub(r"^\s*-\s*", "", line) for line in text.splitlines()]
    text = " ".join(" ".join(lines).split())
    match = _SPEAKER.match(text)
    if match and speaker is None:
        speaker, text = match.group(1), match.group(2).strip()
    return text, speaker


# --- parsing --------------------------------------------------------------------------------------------------


def parse_subtitles(text: str, vtt: bool | None = None) -> tuple[list[Cue], int]:
    """Parse SRT or WebVTT text into cues in file order; returns (cues, number of blocks with unreadable timing).

    A cue's index is the 1-based position of its block among the file's timing blocks.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if vtt is None:
        vtt = text.lstrip().startswith("WEBVTT")
    blocks = [b for b in re.split(r"\n\s*\n", text) if "-->" in b]
    raw_cues = _parse_vtt(blocks) if vtt else _parse_srt(blocks)
    cues = []
    for position, start_s, end_s, body in raw_cues:
        clean, speaker = clean_cue_text(body)
        cues.append(Cue(position, start_s, end_s, clean, speaker))
    return cues, max(0, len(blocks) - len(cues))


_SRT_TIME = r"(\d{1,3}):(\d{1,2}):(\d{1,2})[,.:](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}")


def _canonical_srt(blocks: list[str]) -> str:
    """Keep the blocks whose timing line is well formed, rewritten as HH:MM:SS,mmm (pysrt is lax about both)."""
    kept = []
    for position, block in enumerate(blocks, start=1):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _SRT_TIMING.match(line)
            if match:
                g = match.groups()
                stamps = [f"{int(h):02d}:{int(m):02d}:{int(sec):02d},{frac.ljust(3, '0')}"
                          for h, m, sec, frac in (g[:4], g[4:])]
                kept.append("\n".join([str(position), " --> ".join(stamps), *lines[i + 1:]]))
                break
    return "\n\n".join(kept) + "\n"


def _parse_srt(blocks: list[str]) -> list[tuple[int, float, float, str]]:
    try:
        items = pysrt.from_string(_canonical_srt(blocks), error_handling=pysrt.SubRipFile.ERROR_PASS)
    except Exception as exc:  # pysrt raises assorted errors on garbage; the reader's contract is EmocliError only
        raise EmocliError(f"unreadable SRT ({type(exc).__name__}: {exc})") from None
    return [(item.index, item.start.ordinal / 1000.0, item.end.ordinal / 1000.0, item.text or "") for item in items]


_VTT_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TIME}\s*-->\s*{_VTT_TIME}")


def _vtt_seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def _parse_vtt(blocks: list[str]) -> list[tuple[int, float, float, str]]:
    out = []
    for position, block in enumerate(blocks, start=1):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _VTT_TIMING.match(line)
            if match:
                g = match.groups()
                out.append((position, _vtt_seconds(*g[:4]), _vtt_seconds(*g[4:]), "\n".join(lines[i + 1:])))
                break
    return out


def read_subtitles(path: str | Path) -> tuple[list[Cue], int]:
    """Read an SRT or WebVTT file in any common encoding; returns (cues in file order, unreadable blocks)."""
    path = Path(path)
    if not path.is_file():
        raise EmocliError(f"subtitle file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EmocliError(f"cannot read subtitles {path}: {exc.strerror}") from None
    text = decode_subtitle_bytes(raw, str(path))
    vtt = True if path.suffix.lower() == ".vtt" else None
    return parse_subtitles(text, vtt=vtt)


# --- validation -----------------------------------------------------------------------------------------------


def validate_cues(cues: list[Cue], duration_s: float | None, unreadable: int = 0) -> tuple[list[Cue], SubtitleReport]:
    """Keep the cues that can be annotated, sorted by start; count every skipped or unusual cue by reason.

    Times are clipped to [0, duration] for decoding (a clipped cue keeps its own end time in `shown_end_s`, for
    the outputs); a cue that starts at or past the end of the media is skipped.
    Overlapping and out-of-order cues are kept (two speakers may talk at once) and only counted.
    """
    report = SubtitleReport(total=len(cues) + unreadable)
    if unreadable:
        report.skipped["with unreadable timing"] += unreadable
    valid: list[Cue] = []
    for cue in cues:
        start_s, end_s = max(0.0, cue.start_s), cue.end_s
        if not cue.text:
            report.skipped["empty"] += 1
            continue
        if end_s - start_s < MIN_CUE_S - 1e-6:  # 5.010 - 5.000 is 0.00999... in floating point
            report.skipped["zero or negative length"] += 1
            continue
        if duration_s is not None:
            if start_s >= duration_s - MIN_CUE_S:
                report.skipped["past the end of the media"] += 1
                continue
            if end_s > duration_s:
                end_s = duration_s
                report.noted["clipped at the end of the media"] += 1
        if (start_s, end_s) != (cue.start_s, cue.end_s):
            cue = Cue(cue.index, start_s, end_s, cue.text, cue.speaker,
                      cue.end_s if end_s != cue.end_s else None)
        valid.append(cue)
    if any(b.start_s < a.start_s for a, b in zip(valid, valid[1:])):
        report.noted["out of order (sorted by start)"] += 1
        valid.sort(key=lambda c: (c.start_s, c.end_s, c.index))
    overlaps = sum(1 for a, b in zip(valid, valid[1:]) if b.start_s < a.end_s - MIN_CUE_S)
    if overlaps:
        report.noted["overlapping"] += overlaps
    report.valid = len(valid)
    return valid, report


def find_subtitles(video: Path) -> Path | None:
    """The sibling subtitle file of a video (`<stem>.srt`, then `<stem>.vtt`, the extension in any case), or None."""
    for ext in SUBTITLE_EXTENSIONS:
        for candidate in (video.with_suffix(ext), video.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    siblings = {p.name.casefold(): p for p in video.parent.iterdir()}  # .Srt, .sRT ...: one listing, no stats
    for ext in SUBTITLE_EXTENSIONS:
        candidate = siblings.get((video.stem + ext).casefold())
        if candidate is not None and candidate.stem == video.stem and candidate.is_file():
            return candidate
    return None
