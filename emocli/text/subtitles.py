"""Subtitle files -> cues: formats (SRT, WebVTT, ASS/SSA), encodings, cue numbers, validation, sibling files.

Reading keeps each cue's own number (SRT) or identifier (WebVTT) as its `index`; cleaning the text (markup,
sound descriptions, credits, two-speaker lines) is cues.py's; decoding the bytes is encoding.py's.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pysrt

from ..errors import EmocliError
from .cues import MUSIC, CleanCue, Turn, clean_cue, collapse_rolling, fill_zero_lengths
from .encoding import DecodedText, decode_subtitle_bytes

SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
#: A cue shorter than this (seconds) carries no usable audio or frames; it is counted as zero-length.
MIN_CUE_S = 0.01
#: A cue longer than this (characters) is not a subtitle: a subtitle shows two lines of about 42 characters, a
#: transcript's utterance (at most 30 s of speech) stays under about 600, and the model reads 128 tokens (about
#: 500 characters). Such a cue (a broken file's whole text in one block, or garbage) is skipped before cleaning,
#: so it costs neither time nor memory, and counted with its reason.
MAX_CUE_CHARS = 2000
TOO_LONG = f"longer than {MAX_CUE_CHARS:,} characters (not a subtitle)"


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: its own number (or WebVTT id), times in seconds, cleaned text and speaker.

    `turns` holds what each speaker says when a cue has two speakers (dash lines); empty means one turn, the
    cue's text. `non_speech` says why a cue is not speech (a sound description, music, a credit): such a cue
    is written to the outputs unlabelled. `position` is the cue's 1-based place in the file (unique, unlike
    the numbers some files repeat)."""

    index: int | str
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    shown_end_s: float | None = None  # the file's end time, where end_s was clipped to the end of the media
    position: int = 0
    turns: tuple[Turn, ...] = ()
    non_speech: str | None = None
    removed: tuple[str, ...] = ()  # sound descriptions taken out of the text
    asr: tuple[float, float] | None = None  # a transcribed cue's (confidence, no-speech probability)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def speech_turns(self) -> tuple[Turn, ...]:
        """The turns the model labels: none for a non-speech cue, else `turns` or the cue as one turn."""
        if self.non_speech is not None or not self.text:
            return ()
        return self.turns or (Turn(self.text, self.speaker),)


@dataclass
class SubtitleFile:
    """What a subtitle file (or an embedded track) holds: its cues in file order and how it was read."""

    cues: list[Cue]
    unreadable: int = 0  # blocks whose timing could not be read
    format: str = "srt"
    encoding: DecodedText | None = None
    notes: Counter = field(default_factory=Counter)  # repairs made while reading (reason -> cues)
    skipped: Counter = field(default_factory=Counter)  # cues dropped while reading (reason -> cues)


@dataclass
class SubtitleReport:
    """What happened to the cues of one file: how many were kept and why the others were skipped or changed,
    and how the file was read (format, encoding, language, track)."""

    total: int = 0
    valid: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count (cue not annotated)
    noted: Counter = field(default_factory=Counter)  # reason -> count (cue kept, but worth a warning)
    non_speech: Counter = field(default_factory=Counter)  # reason -> count (kept in the outputs, unlabelled)
    turns_split: int = 0  # cues of two or more speakers, one utterance per turn
    file: str = ""
    source: str = "subtitles"  # where the text came from: subtitles, embedded track or asr
    track: str | None = None  # an embedded track, as tracks.SubtitleTrack.describe() says
    asr_model: str | None = None
    audio_track: str | None = None  # the audio stream heard, as tracks.SubtitleTrack.describe() says
    format: str = "srt"
    encoding: DecodedText | None = None
    language: dict | None = None  # {"code", "name", "confidence"} of the cues' text, when it could be told
    language_warning: str | None = None

    def warning(self) -> str | None:
        """One line describing doubtful input and skipped or unusual cues, or None when everything was clean."""
        parts = []
        if self.encoding is not None and not self.encoding.confident:
            parts.append(f"encoding guessed as {self.encoding.encoding} (doubtful; pass --encoding NAME if the "
                         f"text looks wrong)")
        if self.language_warning:
            parts.append(self.language_warning)
        if self.skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            parts.append(f"{sum(self.skipped.values())} of {self.total} cues skipped ({reasons})")
        if self.non_speech:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.non_speech.items()))
            parts.append(f"{sum(self.non_speech.values())} cues not speech, kept unlabelled ({reasons}; "
                         f"--keep-sound-cues labels them)")
        if self.noted:
            parts.append(", ".join(f"{n} {why}" for why, n in sorted(self.noted.items())))
        return "; ".join(parts) or None

    def as_json(self, annotated: int) -> dict:
        """The `subtitles` block of the JSON output."""
        doc = {"file": self.file, "source": self.source, "track": self.track, "format": self.format,
               "encoding": self.encoding.encoding if self.encoding else None,
               "encoding_confident": self.encoding.confident if self.encoding else None,
               "language": self.language, "cues": self.total, "annotated": annotated,
               "turns_split": self.turns_split, "non_speech": dict(self.non_speech),
               "skipped": dict(self.skipped), "notes": dict(self.noted), "audio_track": self.audio_track}
        if self.track is None:
            del doc["track"]
        return doc


# --- parsing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawCue:
    index: int | str
    start_s: float
    end_s: float
    body: str
    speaker: str | None = None
    style: str | None = None


_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})$|(\d+):(\d{1,2}):(\d{1,2}):(\d{1,3})$")
_TIMING = re.compile(r"^\s*(\d[\d:.,]*)\s*-->\s*(\d[\d:.,]*)(?:\s|$)")
#: The arrow mistyped (`->`, `-- >`, `—>`, `=>`, `→`): read when both times around it are whole timestamps.
_MISTYPED_TIMING = re.compile(r"^\s*(\d[\d:.,]*)\s*(?:-{1,3}\s*>|[\u2012-\u2015\u2212]+-?\s*>|=+>|\u2192)\s*"
                              r"(\d[\d:.,]*)\s*$")
MISTYPED_ARROW = "with a mistyped timing arrow (read)"


def parse_time(stamp: str) -> float | None:
    """`HH:MM:SS,mmm`, `HH:MM:SS.mmm`, `MM:SS.mmm` (WebVTT; some SRT files), `HH:MM:SS:mmm` -> seconds."""
    match = _TIME.match(stamp.strip())
    if not match:
        return None
    g = match.groups()
    h, m, s, frac = g[:4] if g[1] is not None else g[4:]
    if int(m) > 59 or int(s) > 59:
        return None
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def _timing(line: str) -> tuple[str, str, bool] | None:
    """A timing line's two stamps, and whether its arrow was mistyped; None for any other line."""
    if "-->" in line:
        match = _TIMING.match(line)
        return (match.group(1), match.group(2), False) if match else None
    match = _MISTYPED_TIMING.match(line)
    if match and parse_time(match.group(1)) is not None and parse_time(match.group(2)) is not None:
        return match.group(1), match.group(2), True
    return None


def _timed_blocks(text: str, vtt: bool) -> tuple[list[tuple[str | None, str, str, list[str]]], int, int]:
    """(identifier line, start stamp, end stamp, text lines) for every timing line, the number of lines that
    hold `-->` but no readable timing, and the number read past a mistyped arrow. A cue's text runs to the first
    empty line (WebVTT: a line with only spaces does not end a cue, an auto-caption habit) or to the next timing
    line (SRT files that lost a blank line); its identifier is the line just before its timing (SRT: only a
    number)."""
    lines = text.split("\n")
    timings = []
    broken = mistyped = 0
    for i, line in enumerate(lines):
        timing = _timing(line)
        if timing is not None:
            timings.append((i, timing[0], timing[1]))
            mistyped += timing[2]
        elif "-->" in line:
            broken += 1

    def ends(line: str) -> bool:
        return line == "" if vtt else not line.strip()

    def identifier(i: int) -> str | None:
        if i == 0 or ends(lines[i - 1]):
            return None
        candidate = lines[i - 1].strip()
        if vtt:  # after a line of spaces too: a hand-made file's "blank" line, which must not glue cues together
            return candidate if (i < 2 or not lines[i - 2].strip() or lines[i - 2].startswith("WEBVTT")) else None
        return candidate if candidate.isdigit() else None

    blocks = []
    for k, (i, start, end) in enumerate(timings):
        stop = timings[k + 1][0] if k + 1 < len(timings) else len(lines)
        if k + 1 < len(timings) and identifier(stop) is not None:
            stop -= 1
        body = []
        for line in lines[i + 1:stop]:
            if ends(line):
                break
            body.append(line)
        blocks.append((identifier(i), start, end, body))
    return blocks, broken, mistyped


def _cue_number(ident: str | None, position: int) -> int | str:
    if ident is None:
        return position
    return int(ident) if ident.isdigit() else ident


def _parse_srt(text: str) -> tuple[list[_RawCue], int, int]:
    blocks, broken, mistyped = _timed_blocks(text, vtt=False)
    canonical, numbers, unreadable = [], [], broken
    for position, (ident, start, end, body) in enumerate(blocks, start=1):
        start_s, end_s = parse_time(start), parse_time(end)
        if start_s is None or end_s is None:
            unreadable += 1
            continue
        stamps = [pysrt.SubRipTime(milliseconds=round(t * 1000)) for t in (start_s, end_s)]
        canonical.append("\n".join([str(len(canonical) + 1), f"{stamps[0]} --> {stamps[1]}", *body]))
        numbers.append(_cue_number(ident, position))
    try:  # pysrt reads the canonical blocks (numbered 1..n, so its items map back to `numbers`)
        items = pysrt.from_string("\n\n".join(canonical) + "\n", error_handling=pysrt.SubRipFile.ERROR_PASS)
    except Exception as exc:  # pysrt raises assorted errors on garbage; the reader's contract is EmocliError only
        raise EmocliError(f"unreadable SRT ({type(exc).__name__}: {exc})") from None
    cues = [_RawCue(numbers[item.index - 1], item.start.ordinal / 1000.0, item.end.ordinal / 1000.0,
                    item.text or "") for item in items if 0 < item.index <= len(numbers)]
    return cues, unreadable + len(canonical) - len(cues), mistyped


def _parse_vtt(text: str) -> tuple[list[_RawCue], int, int]:
    blocks, unreadable, mistyped = _timed_blocks(text, vtt=True)
    cues = []
    for position, (ident, start, end, body) in enumerate(blocks, start=1):
        start_s, end_s = parse_time(start), parse_time(end)
        if start_s is None or end_s is None:
            unreadable += 1
            continue
        cues.append(_RawCue(_cue_number(ident, position), start_s, end_s, "\n".join(body)))
    return cues, unreadable, mistyped


#: The Events columns of an ASS file without a Format line (v4+); SSA (v4) names Layer `Marked`.
_ASS_DEFAULT_FORMAT = ["layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text"]
_ASS_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[.,](\d{1,3})\s*$")
#: ASS styles used for on-screen text and songs rather than dialogue (fansub and broadcast conventions).
_SIGN_STYLE = re.compile(r"^(?:signs?|ts|typeset\w*|screen|on-?screen|title|caption|note)\b", re.IGNORECASE)
_SONG_STYLE = re.compile(r"^(?:op|ed|opening|ending|insert|songs?|lyrics?|kara\w*|romaji)\b", re.IGNORECASE)
SIGN = "on-screen text"


def _ass_seconds(stamp: str) -> float | None:
    match = _ASS_TIME.match(stamp)
    if not match:
        return None
    h, m, s, frac = match.groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000.0


def _parse_ass(text: str) -> tuple[list[_RawCue], int, int]:
    """ASS/SSA: the Dialogue lines of [Events], their columns named by its Format line; Comment lines ignored.
    A cue's index is its position among the Dialogue lines."""
    section, columns = "", _ASS_DEFAULT_FORMAT
    cues, unreadable, position = [], 0, 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.lower()
            continue
        if section != "[events]" or ":" not in stripped:
            continue
        key, _, value = stripped.partition(":")
        key = key.strip().lower()
        if key == "format":
            columns = [c.strip().lower() for c in value.split(",")]
            continue
        if key != "dialogue":
            continue
        position += 1
        values = value.lstrip().split(",", len(columns) - 1)
        record = dict(zip(columns, values))
        start_s, end_s = _ass_seconds(record.get("start", "")), _ass_seconds(record.get("end", ""))
        if len(values) < len(columns) or start_s is None or end_s is None or "text" not in record:
            unreadable += 1
            continue
        speaker = (record.get("name") or record.get("actor") or "").strip() or None
        cues.append(_RawCue(position, start_s, end_s, record["text"], speaker,
                            (record.get("style") or "").strip() or None))
    return cues, unreadable, 0


_UNSUPPORTED = (  # (pattern on the text's start, what it is)
    (re.compile(r"^\s*\{\d+\}\{\d*\}", re.MULTILINE), "MicroDVD (frame-numbered) subtitles"),
    (re.compile(r"<sami\b", re.IGNORECASE), "SAMI subtitles"),
    (re.compile(r"<tt\b[^>]*xmlns", re.IGNORECASE), "TTML/DFXP subtitles"),
    (re.compile(r"^\d+:\d{2}:\d{2}\.\d{3},\d+:\d{2}:\d{2}\.\d{3}\s*$", re.MULTILINE), "SBV subtitles"),
    (re.compile(r"^\[\d{1,3}:\d{2}(?:\.\d{1,3})?\]", re.MULTILINE), "LRC lyrics"),
    (re.compile(r"^\[INFORMATION\]|^\[SUBTITLE\]", re.MULTILINE | re.IGNORECASE), "SubViewer subtitles"),
)


def detect_format(text: str, suffix: str = "") -> str:
    """srt, vtt or ass, from the text (an extension only settles WebVTT and ASS files without their header);
    a subtitle format emocli does not read raises EmocliError naming it."""
    head = text.lstrip()[:4096]
    if head.startswith("WEBVTT"):
        return "vtt"
    if re.search(r"^\s*\[(?:script info|v4\+? styles|events)\]", text[:65536], re.IGNORECASE | re.MULTILINE):
        return "ass"
    if suffix in (".ass", ".ssa"):
        return "ass"
    if suffix == ".vtt":
        return "vtt"
    if any(_TIMING.match(line) for line in text.split("\n", 2000)[:2000]):
        return "srt"
    for pattern, what in _UNSUPPORTED:
        if pattern.search(head):
            raise EmocliError(f"{what} are not read by emocli: convert the file to SRT (e.g. with a subtitle "
                              f"editor, or `ffmpeg -i FILE out.srt`)")
    return "srt"


_PARSERS = {"srt": _parse_srt, "vtt": _parse_vtt, "ass": _parse_ass}


def parse_subtitles(text: str, fmt: str | None = None, keep_sound_cues: bool = False) -> SubtitleFile:
    """Parse SRT, WebVTT or ASS text into cleaned cues in file order.

    Rolling auto-captions are collapsed and, when most cues have no length, each is given the time up to the
    next one (both counted in `notes`)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    fmt = fmt or detect_format(text)
    raw, unreadable, mistyped = _PARSERS[fmt](text)
    notes: Counter = Counter()
    skipped: Counter = Counter()
    if mistyped:
        notes[MISTYPED_ARROW] += mistyped
    too_long = sum(1 for r in raw if len(r.body) > MAX_CUE_CHARS)
    if too_long:  # before any cleaning: such a text is never looked at again
        skipped[TOO_LONG] += too_long
        raw = [r for r in raw if len(r.body) <= MAX_CUE_CHARS]
    bodies, collapsed = collapse_rolling([r.body for r in raw], [r.end_s - r.start_s for r in raw])
    if collapsed:
        notes["rolling auto-caption repeats collapsed"] += collapsed
    times, filled = fill_zero_lengths([(r.start_s, r.end_s) for r in raw])
    if filled:
        notes["zero-length cues timed to the next cue (at most 5 s)"] += filled
    cues = []
    for position, (r, body, (start_s, end_s)) in enumerate(zip(raw, bodies, times), start=1):
        if body is None:
            continue
        clean = clean_cue(body, r.speaker, keep_sound_cues)
        if r.style and clean.non_speech is None and not keep_sound_cues:
            if _SIGN_STYLE.match(r.style):
                clean = CleanCue((), clean.text, SIGN)
            elif _SONG_STYLE.match(r.style):
                clean = CleanCue((), clean.text, MUSIC)
        turns = clean.turns
        speaker = turns[0].speaker if turns else r.speaker
        cues.append(Cue(r.index, start_s, end_s, clean.text, speaker, None, position,
                        turns if len(turns) > 1 else (), clean.non_speech, clean.removed))
    return SubtitleFile(cues, unreadable, fmt, None, notes, skipped)


_IMAGE_MAGIC = ((b"PG", "a PGS (Blu-ray) image subtitle file"), (b"\x00\x00\x01\xba", "a VobSub (DVD) image "
                 "subtitle file"))


def read_subtitles(path: str | Path, encoding: str | None = None, keep_sound_cues: bool = False) -> SubtitleFile:
    """Read an SRT, WebVTT or ASS/SSA file in any common encoding (or the one given)."""
    path = Path(path)
    if path.is_dir():
        raise EmocliError(f"subtitle path {path} is a folder, not a file")
    if not path.is_file():
        raise EmocliError(f"subtitle file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EmocliError(f"cannot read subtitles {path}: {exc.strerror}") from None
    for magic, what in _IMAGE_MAGIC:
        if raw.startswith(magic) and path.suffix.lower() in (".sup", ".sub"):
            raise EmocliError(f"{path}: {what}; emocli reads text subtitles (OCR it to SRT first)")
    decoded = decode_subtitle_bytes(raw, str(path), encoding)
    try:
        fmt = detect_format(decoded.text, path.suffix.lower())
    except EmocliError as exc:
        raise EmocliError(f"{path}: {exc.message}") from None
    parsed = parse_subtitles(decoded.text, fmt, keep_sound_cues)
    parsed.encoding = decoded
    if decoded.nuls_dropped:
        parsed.notes["NUL bytes dropped (the file was padded or cut by a broken tool)"] += decoded.nuls_dropped
    return parsed


# --- validation -----------------------------------------------------------------------------------------------


def validate_cues(cues: list[Cue], duration_s: float | None, unreadable: int = 0,
                  skipped: Counter | None = None) -> tuple[list[Cue], SubtitleReport]:
    """Keep the cues that can be annotated (and the non-speech ones, which the outputs list unlabelled), sorted
    by start; count every skipped or unusual cue by reason (`unreadable` and `skipped`: the blocks reading
    dropped already).

    Times are clipped to [0, duration] for decoding (a clipped cue keeps its own end time in `shown_end_s`, for
    the outputs); a cue that starts at or past the end of the media is skipped.
    Overlapping and out-of-order cues are kept (two speakers may talk at once) and only counted.
    """
    report = SubtitleReport(total=len(cues) + unreadable + sum((skipped or {}).values()))
    if unreadable:
        report.skipped["with unreadable timing"] += unreadable
    report.skipped.update(skipped or {})
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
            cue = replace(cue, start_s=start_s, end_s=end_s, shown_end_s=cue.end_s if end_s != cue.end_s else None)
        valid.append(cue)
    if any(b.start_s < a.start_s for a, b in zip(valid, valid[1:])):
        report.noted["out of order (sorted by start)"] += 1
        valid.sort(key=lambda c: (c.start_s, c.end_s, c.position))
    speech = [c for c in valid if c.speech_turns()]
    overlaps = sum(1 for a, b in zip(speech, speech[1:]) if b.start_s < a.end_s - MIN_CUE_S)
    if overlaps:
        report.noted["overlapping"] += overlaps
    report.non_speech.update(c.non_speech for c in valid if c.non_speech)
    report.turns_split = sum(1 for c in speech if len(c.speech_turns()) > 1)
    report.valid = len(speech)
    return valid, report


#: Language tags of sibling files (`episode.en.srt`) that mean English, preferred over other tagged siblings.
_ENGLISH_TAGS = ("en", "eng", "english", "en-us", "en-gb", "en_us", "en_gb")
_TAG = re.compile(r"^(?:[a-z]{2,3}(?:[-_][a-z0-9]{2,4})?|[a-z]+ish|[a-z]+ian|[a-z]+ese|french|dutch|greek|"
                  r"forced|sdh|cc|hi|full|default)$", re.IGNORECASE)


def find_subtitles(video: Path) -> Path | None:
    """The sibling subtitle file of a video, or None: `<stem>.srt`, `.vtt`, `.ass`, `.ssa` (the extension in
    any case), else a language-tagged one (`<stem>.en.srt`, `<stem>.eng.forced.srt`, ...): English first, then
    full (not `forced`) files, then by name."""
    wanted = {video.stem + ext for ext in SUBTITLE_EXTENSIONS}
    for ext in SUBTITLE_EXTENSIONS:
        candidate = video.with_suffix(ext)
        if candidate.is_file():
            return candidate
    siblings = [p for p in video.parent.iterdir() if p.suffix.lower() in SUBTITLE_EXTENSIONS
                and p.name.casefold().startswith(video.stem.casefold() + ".")]  # one listing, few stats
    exact = [p for p in siblings if p.stem.casefold() == video.stem.casefold() and p.is_file()]
    exact.sort(key=lambda p: (p.name not in wanted, SUBTITLE_EXTENSIONS.index(p.suffix.lower()), p.name))
    if exact:
        return exact[0]

    def rank(p: Path) -> tuple:
        tags = [t.casefold() for t in p.name[len(video.stem) + 1:].split(".")[:-1]]
        return (not any(t in _ENGLISH_TAGS for t in tags), any(t in ("forced", "sdh-forced") for t in tags),
                SUBTITLE_EXTENSIONS.index(p.suffix.lower()), p.name)

    def tagged(p: Path) -> bool:  # `ep1.en.srt`, not another video's `ep1.part2.srt` or our `ep1.emotions.srt`
        tags = p.name[len(video.stem) + 1:].split(".")[:-1]
        return bool(tags) and all(_TAG.match(t) for t in tags) and p.is_file()

    found = sorted((p for p in siblings if p.stem.casefold() != video.stem.casefold() and tagged(p)), key=rank)
    return found[0] if found else None
