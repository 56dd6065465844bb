"""Raw cue text -> what was said: markup stripped, sound descriptions and credits set apart, two-speaker dash
lines split into turns; and the file-level repairs: rolling auto-captions collapsed, zero-length cues timed.

Sound descriptions follow the captioning conventions for deaf and hard-of-hearing viewers: `[door slams]` and
`(laughs)` (brackets anywhere, parentheses at the start or end of a line, or in capitals), music notes around
lyrics. Credits are the lines subtitle sites and translators add: addresses (`www.example.org`), `Downloaded
from`, `Subtitles by`, `Translation:`. A cue made only of these is kept out of the model's input and
written unlabelled, with its reason; inside a spoken cue they are removed from the text the model reads.
"""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass

# --- markup ---------------------------------------------------------------------------------------------------

_ASS_DRAWING = re.compile(r"\{[^}]*\\p[1-9][^}]*\}.*?(?=\{[^}]*\\p0[^}]*\}|$)", re.DOTALL)
_ASS_TAG = re.compile(r"\{[^}]*\}")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_TIMESTAMP_TAG = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{1,3}>")
_INVISIBLE = re.compile("[\x00\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")  # NUL, zero width, bidi
_SPEAKER = re.compile(r"^\s*([A-Z][A-Za-z0-9.'\-]*(?: [A-Z][A-Za-z0-9.'\-]*){0,2})\s*:\s+(\S.*)$", re.DOTALL)


def strip_markup(raw: str) -> tuple[list[str], str | None]:
    """The cue's text lines without HTML/WebVTT/ASS markup, and a WebVTT `<v NAME>` voice as the speaker.

    ASS line breaks (`\\N`, `\\n`) become lines, `\\h` a space; ASS drawings (`{\\p1}m 0 0 l ...`) are dropped;
    bidi and zero-width control characters are removed; lines holding only spaces are dropped."""
    voice = _VOICE.search(raw)
    text = _ASS_DRAWING.sub("", raw)
    text = _ASS_TAG.sub("", text).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    text = _TIMESTAMP_TAG.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = _INVISIBLE.sub("", html.unescape(text)).replace("\u00a0", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return [line for line in lines if line], (voice.group(1).strip() if voice else None)


# --- sound descriptions and credits ---------------------------------------------------------------------------

_NOTES = "♪♫♬♩#"
_BRACKETED = re.compile(r"\[[^\[\]]*\]|\{[^{}]*\}")  # [door slams]; {sighs} where a file uses braces
_PARENS = re.compile(r"\([^()]*\)")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|info|tv|io|ru|me|co|to|cc|ws|biz)"
                  r"\b(?:/\S*)?", re.IGNORECASE)
_CREDIT = re.compile(
    r"^(?:downloaded\s+from|subtitles?\s*(?:by|:|ripped|edited|created|synced|extracted|downloaded)|"
    r"(?:sub|subs|caption(?:s|ing|ed)?|transcript|transcribed|translat(?:ion|ed|or)|sync(?:ed|hronized)?|"
    r"resync(?:ed)?|corrections?|corrected|ripped|encoded|timing|timed|proofread|edited|"
    r"traduction|traducci[oó]n|traduzione|tradu[cç][aã]o|sous-titr\w*|subt[ií]tulos|untertitel|"
    r"[üu]bersetzung|prevod|prijevod|titlovi|перевод|субтитры|переклад|altyaz[ıi]|[çc]eviri|tekster|"
    r"tekstning|undertekster)\b[^:]{0,30}(?:\s*:|\s+by\b)|"
    r"support us and become vip|advertise your product|opensubtitles|addic7ed|podnapisi|subscene|yify)",
    re.IGNORECASE)

SOUND, MUSIC, CREDIT = "sound description", "music", "credit or advertisement"


def _is_sound(line: str) -> bool:
    """A line that is only sound descriptions: brackets and parentheses with nothing outside them."""
    rest = _PARENS.sub("", _BRACKETED.sub("", line))
    return rest != line and not rest.strip(" -–—.,:;!?…*")


def _is_music(line: str) -> bool:
    return bool(line) and (line[0] in _NOTES or line[-1] in _NOTES)


def _is_credit(line: str) -> bool:
    stripped = line.strip(" -–—*")
    if _CREDIT.search(stripped):
        return True
    return bool(_URL.search(stripped)) and len(_URL.sub("", stripped).split()) <= 4  # an address and a few words


def line_kind(line: str) -> str | None:
    """Why a line is not speech (SOUND, MUSIC or CREDIT), or None for a spoken line."""
    if _is_credit(line):
        return CREDIT
    if _is_music(line):
        return MUSIC
    if _is_sound(line):
        return SOUND
    return None


def remove_descriptions(line: str) -> tuple[str, list[str]]:
    """A spoken line without its sound descriptions; returns (line, descriptions removed).

    Brackets go wherever they are; parentheses go at the start or the end of the line, or when in capitals
    (`(LAUGHS)`), since mid-sentence parentheses in subtitles are usually speech (`he said (twice) no`)."""
    removed: list[str] = []

    def cut(match: re.Match) -> str:
        removed.append(match.group(0))
        return " "

    line = _BRACKETED.sub(cut, line)
    for match in list(_PARENS.finditer(line)):
        inner = match.group(0)[1:-1]
        at_edge = not line[:match.start()].strip(" -–—") or not line[match.end():].strip(" .,!?…")
        if at_edge or (inner.isupper() and any(ch.isalpha() for ch in inner)):
            removed.append(match.group(0))
            line = line.replace(match.group(0), " ", 1)
    return " ".join(line.split()).strip(" ") if removed else line, removed


# --- turns ----------------------------------------------------------------------------------------------------

#: A new speaker's turn: a dash ('- Yes.', '-Yes.', '– Oui.'; not '-5 degrees') or broadcast captions' '>>'
_DASH = re.compile(r"^(?:[-–—‐]+(?!\d)|>>+)\s*")
_INLINE_TURN = re.compile(r"(?<=[.?!…\"”])\s+[-–—]\s+(?=[^\s\d])")  # '- Yes. - No.' on one line


@dataclass(frozen=True)
class Turn:
    """What one speaker says in a cue: its text (as the model reads it) and speaker."""

    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class CleanCue:
    """A cue's text after cleaning: its turns (empty for non-speech), why it is not speech, what was removed."""

    turns: tuple[Turn, ...]
    text: str  # the whole cue as one line: the turns' text, or the non-speech cue's own text
    non_speech: str | None = None
    removed: tuple[str, ...] = ()


def _speaker_split(text: str) -> tuple[str, str | None]:
    match = _SPEAKER.match(text)
    if match and not _is_credit(text):
        return match.group(2).strip(), match.group(1)
    return text, None


def split_turns(lines: list[str]) -> list[str]:
    """A cue's lines -> one text per speaker turn: a new turn at every line (after the first) that starts with a
    dash, and at ' - ' after a sentence on a line that starts with one; other lines continue the turn before."""
    dashed = [bool(_DASH.match(line)) for line in lines]
    if not any(dashed[1:]) and not (dashed and dashed[0] and _INLINE_TURN.search(lines[0])):
        return [" ".join(_DASH.sub("", line, count=1) if i == 0 else line for i, line in enumerate(lines))]
    turns: list[list[str]] = []
    for line, dash in zip(lines, dashed):
        if dash or not turns:
            parts = _INLINE_TURN.split(_DASH.sub("", line, count=1)) if dash else [line]
            turns.extend([part] for part in parts)
        else:
            turns[-1].append(line)
    return [" ".join(t) for t in turns if " ".join(t).strip()]


def clean_cue(raw: str, speaker: str | None = None, keep_sound_cues: bool = False) -> CleanCue:
    """Clean one cue's raw text (any supported format's markup) into turns.

    `speaker` is the format's own speaker field (ASS Name); else a WebVTT voice or a leading `NAME:` is used.
    A cue whose every line is a sound description, music or credit is non-speech (its most frequent kind wins;
    credit first); with `keep_sound_cues` it is labelled as speech like any other."""
    lines, voice = strip_markup(raw)
    speaker = speaker or voice
    kinds = [line_kind(_DASH.sub("", line)) for line in lines]
    if len(lines) > 1 and not all(kinds) and _is_credit(" ".join(lines)):  # an advert over two lines
        kinds = [CREDIT] * len(lines)
    if lines and all(kinds) and not keep_sound_cues:
        kind = CREDIT if CREDIT in kinds else max(set(kinds), key=kinds.count)
        return CleanCue((), " ".join(lines), kind)
    removed: list[str] = []
    spoken = []
    for line, kind in zip(lines, kinds):
        if keep_sound_cues:
            spoken.append(line)
            continue
        if kind is not None:  # a sound or music line inside a spoken cue
            if _DASH.match(line) and kind != CREDIT:
                spoken.append("- ")  # keeps the turn boundary the line stood for
            removed.append(_DASH.sub("", line))
            continue
        text, cut = remove_descriptions(line)
        removed.extend(cut)
        if text.strip(" -–—"):
            spoken.append(text)
    turns = []
    for text in split_turns(spoken):
        text = " ".join(text.split())
        if not text.strip(" -–—"):
            continue
        text, own = _speaker_split(text)
        turns.append(Turn(text, own or speaker))
    return CleanCue(tuple(turns), " ".join(t.text for t in turns), None, tuple(removed))


def clean_cue_text(raw: str) -> tuple[str, str | None]:
    """The cue's text as one line and its speaker (the first turn's): the simple view of `clean_cue`."""
    cue = clean_cue(raw, keep_sound_cues=True)
    return cue.text, (cue.turns[0].speaker if cue.turns else None)


def share_time(start_s: float, end_s: float, texts: list[str]) -> list[tuple[float, float]]:
    """A cue's time span shared between its turns in proportion to their text length (characters without
    spaces, at least 1 each): a subtitle is timed to be read, so a longer line takes longer."""
    weights = [max(1, len("".join(t.split()))) for t in texts]
    total, spans, acc = sum(weights), [], 0
    for w in weights:
        spans.append((start_s + (end_s - start_s) * acc / total, start_s + (end_s - start_s) * (acc + w) / total))
        acc += w
    return spans


# --- file-level repairs ---------------------------------------------------------------------------------------


def plain_lines(raw: str) -> list[str]:
    return strip_markup(raw)[0]


#: A cue this short that repeats the text before it is an auto-caption "flash" (YouTube's are 10 ms).
FLASH_S = 0.05


def collapse_rolling(bodies: list[str], durations: list[float]) -> tuple[list[str | None], int]:
    """Rolling auto-captions (YouTube's): each cue shows the line before it again above its new line, a flash
    cue (about 10 ms) shows the new line once more, and the file may end with a cue that shows the last phrase
    alone again, for a second or two. Returns the bodies with the carried-over lines
    removed (None for a flash cue that only repeats), and how many cues were changed or dropped.

    A file is rolling when at least a third of its cues (and at least 2) carry the line before over above new
    text; other files are returned unchanged, so "No." said twice, even as two short cues, stays twice."""
    lines = [plain_lines(b) for b in bodies]
    carried = sum(1 for a, b in zip(lines, lines[1:]) if len(b) >= 2 and b[0] in a)
    if carried < 2 or carried * 3 < len(bodies):
        return list(bodies), 0
    out: list[str | None] = []
    previous: list[str] = []
    collapsed = 0
    for body, current, duration in zip(bodies, lines, durations):
        fresh = list(current)
        while len(fresh) > 1 and fresh[0] in previous:
            fresh.pop(0)
        if fresh and fresh[0] in previous and (duration < FLASH_S or len(current) > 1):
            fresh.pop(0)
        if len(current) == 1 and previous and current[0] == previous[-1]:
            fresh = []  # only shows again the line the cue before ended on (YouTube's last phrase, 1-2 s long)
        if current:
            previous = current
        if not fresh:
            out.append(None)
            collapsed += 1
        elif fresh != current:
            out.append("\n".join(fresh))
            collapsed += 1
        else:
            out.append(body)
    return out, collapsed


#: The longest time given to a cue that had no length of its own (it ends at the next cue, at most this).
MAX_FILLED_S = 5.0


def fill_zero_lengths(times: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], int]:
    """When most cues have no length (start == end, a few broadcast and hand-made files), each such cue ends
    where the next one starts, at most MAX_FILLED_S later. Returns the new times and how many were filled;
    files where zero-length cues are the exception are unchanged (those cues are then skipped)."""
    zero = [abs(e - s) < 0.0005 for s, e in times]  # the same millisecond
    if not times or sum(zero) * 2 <= len(times):
        return times, 0
    starts = sorted({s for s, _ in times})
    out, filled = [], 0
    for (s, e), z in zip(times, zero):
        if z:
            k = bisect.bisect_right(starts, s + 1e-6)
            e = min(starts[k], s + MAX_FILLED_S) if k < len(starts) else s + MAX_FILLED_S
            filled += 1
        out.append((s, e))
    return out, filled
