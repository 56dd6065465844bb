"""Subtitle tracks inside a video: list them with `ffmpeg -i`, choose one, and extract it as SRT or ASS text."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import EmocliError, UsageError
from ..media.ffmpeg import ffmpeg_exe, stream_listing

#: Containers that may hold subtitle tracks (others are not listed for them: an .mp3 has none).
TRACK_CONTAINERS = (".mkv", ".mk3d", ".mp4", ".m4v", ".mov", ".webm", ".ts", ".m2ts", ".mts", ".avi", ".ogv",
                    ".ogg", ".mxf", ".3gp")

#: Subtitle codecs ffmpeg can decode to text (and so convert to SRT); every other codec is image-based or unknown.
TEXT_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "subviewer", "subviewer1",
                         "microdvd", "mpl2", "jacosub", "realtext", "sami", "stl", "pjs", "vplayer", "ttml"})
#: Bitmap subtitle codecs: Blu-ray PGS, DVD VobSub, DVB, XSUB.
IMAGE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub"})
_ASS_CODECS = ("ass", "ssa")
_OCR_HINT = "emocli reads text subtitles; pass --subs FILE (OCR it first, e.g. with Subtitle Edit)"

# Common languages as (ISO 639-1, 639-2/B, 639-2/T, English name): any of these spells the same language.
_LANGUAGES = [
    ("en", "eng", "eng", "english"), ("fr", "fre", "fra", "french"), ("de", "ger", "deu", "german"),
    ("es", "spa", "spa", "spanish"), ("it", "ita", "ita", "italian"), ("pt", "por", "por", "portuguese"),
    ("nl", "dut", "nld", "dutch"), ("ru", "rus", "rus", "russian"), ("ja", "jpn", "jpn", "japanese"),
    ("zh", "chi", "zho", "chinese"), ("ko", "kor", "kor", "korean"), ("ar", "ara", "ara", "arabic"),
    ("pl", "pol", "pol", "polish"), ("sv", "swe", "swe", "swedish"), ("da", "dan", "dan", "danish"),
    ("no", "nor", "nor", "norwegian"), ("nb", "nob", "nob", "bokmal"), ("fi", "fin", "fin", "finnish"),
    ("tr", "tur", "tur", "turkish"), ("el", "gre", "ell", "greek"), ("he", "heb", "heb", "hebrew"),
    ("hi", "hin", "hin", "hindi"), ("cs", "cze", "ces", "czech"), ("hu", "hun", "hun", "hungarian"),
    ("ro", "rum", "ron", "romanian"), ("uk", "ukr", "ukr", "ukrainian"), ("vi", "vie", "vie", "vietnamese"),
    ("th", "tha", "tha", "thai"), ("id", "ind", "ind", "indonesian"), ("ms", "may", "msa", "malay"),
    ("fa", "per", "fas", "persian"), ("bg", "bul", "bul", "bulgarian"), ("hr", "hrv", "hrv", "croatian"),
    ("sr", "srp", "srp", "serbian"), ("sk", "slo", "slk", "slovak"), ("sl", "slv", "slv", "slovenian"),
    ("ca", "cat", "cat", "catalan"), ("et", "est", "est", "estonian"), ("lv", "lav", "lav", "latvian"),
    ("lt", "lit", "lit", "lithuanian"), ("is", "ice", "isl", "icelandic"), ("ta", "tam", "tam", "tamil"),
]
_LANGUAGE_KEY = {spelling: row[0] for row in _LANGUAGES for spelling in row}
_LANGUAGE_NAME = {row[0]: row[3] for row in _LANGUAGES}


def language_key(language: str | None) -> str | None:
    """One spelling per language: "fre", "fra", "fr", "fr-CA" and "French" all give "fr"; an unknown tag is
    kept lower-cased; None, "" and "und" (undetermined) give None."""
    if not language:
        return None
    tag = language.strip().lower()
    base = re.split(r"[-_]", tag, maxsplit=1)[0]
    if base in ("", "und", "unk", "mis", "mul", "zxx"):
        return None
    return _LANGUAGE_KEY.get(tag) or _LANGUAGE_KEY.get(base) or tag


def check_track_spec(option: str, spec: str | None) -> str | None:
    """A --subs-track / --audio-track value, checked before any work: a track number from 0, or a language
    (en, fre, French, fr-CA). A negative number or a word that names no language is a usage error."""
    if spec is None:
        return None
    value = str(spec).strip()
    if re.fullmatch(r"[+-]?\d+", value):
        if not value.isdigit():
            raise UsageError(f"{option} {spec}: tracks are numbered from 0 (or name a language, e.g. en)")
        return value
    if not re.fullmatch(r"[A-Za-z][A-Za-z_-]*", value) or language_key(value) is None:
        raise UsageError(f"{option} {spec!r}: give a track number from 0, or a language (en, fre, French)")
    return value


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle stream of a media file, as `ffmpeg -i` lists it."""

    stream_index: int  # absolute stream index in the file (the N of "Stream #0:N")
    subtitle_index: int  # index among subtitle streams only (the N of ffmpeg's -map 0:s:N); "track N" in messages
    codec: str  # ffmpeg's codec name: subrip, ass, mov_text, webvtt, hdmv_pgs_subtitle, dvd_subtitle...
    language: str | None = None  # the stream's language tag as written ("eng", "fre", "en-US"); None if untagged
    title: str | None = None  # the stream's "title" (mkv) or "name" (mp4) metadata
    default: bool = False
    forced: bool = False
    kind: str = "subtitle"  # or "audio": an audio stream, listed the same way (subtitle_index: its 0:a:N)

    @property
    def is_text(self) -> bool:
        """Whether ffmpeg can turn this track into SRT/ASS text (image-based and unknown codecs cannot)."""
        return self.codec in TEXT_CODECS

    def _parts(self) -> list[str]:
        parts = [f"stream #0:{self.stream_index}", self.codec]
        if self.language:
            parts.append(self.language)
        if self.title:
            parts.append(f'"{self.title}"')
        parts += [flag for flag, on in (("default", self.default), ("forced", self.forced)) if on]
        return parts

    def describe(self) -> str:
        """The track for messages and JSON: 'track 1 (stream #0:3, subrip, fre, "French")'; audio streams as
        'audio track 1 (...)'."""
        return f"{'audio ' if self.kind == 'audio' else ''}track {self.subtitle_index} ({', '.join(self._parts())})"

    def _inline(self) -> str:
        return ", ".join([f"track {self.subtitle_index}"] + self._parts())


# "  Stream #0:3[0x4](fre): Subtitle: mov_text (tx3g / 0x67337874), 0 kb/s (default)"; the [0x..] id (mp4, ts)
# and the (language) are optional.
_STREAM_LINE = re.compile(r"^(\s*)Stream #(\d+):(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): (.*)$")
_METADATA_LINE = re.compile(r"^\s*(\w+)\s*:\s?(.*)$")


def parse_tracks(listing: str, kind: str = "Subtitle") -> list[SubtitleTrack]:
    """The subtitle (or, with kind="Audio", audio) streams of input 0 in `ffmpeg -i`'s stderr listing (a
    stream's metadata lines are the more indented lines below its Stream line)."""
    tracks: list[SubtitleTrack] = []
    current: dict | None = None
    indent = 0
    for line in listing.splitlines():
        m = _STREAM_LINE.match(line)
        if m or (current is not None and len(line) - len(line.lstrip()) <= indent):
            if current is not None:
                tracks.append(SubtitleTrack(**current))
            current = None
        if m:
            if m.group(2) != "0" or m.group(5) != kind:
                continue
            indent = len(m.group(1))
            desc = m.group(6)
            current = {"stream_index": int(m.group(3)), "subtitle_index": len(tracks),
                       "codec": desc.split(" ", 1)[0].rstrip(","),
                       "language": m.group(4) if language_key(m.group(4)) else None,
                       "title": None, "default": "(default)" in desc, "forced": "(forced)" in desc,
                       "kind": kind.lower()}
        elif current is not None:
            meta = _METADATA_LINE.match(line)
            if meta and meta.group(2).strip():
                key, value = meta.group(1).lower(), meta.group(2).strip()
                if key == "title" or (key == "name" and current["title"] is None):
                    current["title"] = value
    if current is not None:
        tracks.append(SubtitleTrack(**current))
    return tracks


def _ffmpeg_detail(video: Path, stderr: str) -> str:
    """The informative line of ffmpeg's stderr: the last one that is not a generic "Error opening..." trailer,
    without its "[component @ 0x...]" prefix and with the file shown by name."""
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    generic = re.compile(r"^(Error (opening|parsing|while)|Conversion failed|Exiting|At least one output)", re.I)
    useful = [ln for ln in lines if not generic.match(ln)]
    detail = (useful or lines or ["unknown error"])[-1]
    return detail.replace(str(video), video.name)


def list_tracks(video: str | Path) -> list[SubtitleTrack]:
    """The subtitle tracks of a video in file order (empty if it has none); raises EmocliError if ffmpeg cannot
    open it. Reads only the file's header (`ffmpeg -i` with no output, which exits non-zero by design)."""
    video = Path(video)
    if not video.is_file():
        raise EmocliError(f"file not found: {video}")
    listing = stream_listing(video)
    if "Input #0" not in listing:
        raise EmocliError(f"cannot read the subtitle tracks of {video}: {_ffmpeg_detail(video, listing)}")
    return parse_tracks(listing)


def _is_language(track: SubtitleTrack, key: str) -> bool:
    """A track of language `key`: by its language tag, or, when untagged, by its title naming the language."""
    if track.language:
        return language_key(track.language) == key
    name = _LANGUAGE_NAME.get(key)
    return bool(name and track.title and re.search(rf"\b{name}\b", track.title, re.I))


def _preferred(tracks: Sequence[SubtitleTrack]) -> SubtitleTrack:
    """A non-forced track before a forced one (forced tracks hold only foreign-language lines), then a default
    one, then file order."""
    return min(tracks, key=lambda t: (t.forced, not t.default, t.subtitle_index))


def _listing(tracks: Sequence[SubtitleTrack]) -> str:
    return "; ".join(t.describe() for t in tracks) if tracks else "no subtitle tracks"


def _image_error(video: Path, tracks: Sequence[SubtitleTrack], what: str) -> EmocliError:
    if len(tracks) == 1:
        return EmocliError(f"{video}: {what} is image-based ({tracks[0]._inline()}): {_OCR_HINT}")
    listed = "; ".join(t._inline() for t in tracks)
    return EmocliError(f"{video}: {what} are image-based ({listed}): {_OCR_HINT}")


def choose_track(tracks: Sequence[SubtitleTrack], spec: str | None, video: str | Path) -> SubtitleTrack | None:
    """The track to read, or None when the video has no subtitle tracks at all (and spec is None).

    spec None: an English text track (tag eng/en/en-US..., or an untagged one titled "English"), non-forced
    and then default ones first; else the first non-forced text track, else the first text track.
    spec "N" (digits): the N-th subtitle track counting from 0 among subtitle streams only, as ffmpeg's
    -map 0:s:N (not the absolute stream number of "Stream #0:N").
    spec LANG: a language code (ISO 639-1 "fr", 639-2/B "fre", 639-2/T "fra", "fr-CA") or English name
    ("French"): the first text track of that language (non-forced first).
    Raises UsageError when spec matches no track, EmocliError when the tracks it would use are image-based."""
    video = Path(video)
    text = [t for t in tracks if t.is_text]
    if spec is None:
        if not tracks:
            return None
        if not text:
            raise _image_error(video, tracks, "its only subtitle track" if len(tracks) == 1
                               else "all its subtitle tracks")
        english = [t for t in text if _is_language(t, "en")]
        return _preferred(english) if english else _preferred([t for t in text if not t.forced] or text[:1])
    spec = spec.strip()
    if spec.isdigit():
        n = int(spec)
        if n >= len(tracks):
            raise UsageError(f"{video}: no subtitle track {n} (tracks count from 0); it has {_listing(tracks)}")
        if not tracks[n].is_text:
            raise _image_error(video, tracks[n:n + 1], f"subtitle track {n}")
        return tracks[n]
    key = language_key(spec)
    if key is None:
        raise UsageError(f"{video}: {spec!r} is not a subtitle track number or language; it has {_listing(tracks)}")
    matching = [t for t in tracks if _is_language(t, key)]
    if not matching:
        raise UsageError(f"{video}: no subtitle track in language {spec!r}; it has {_listing(tracks)}")
    matching_text = [t for t in matching if t.is_text]
    if not matching_text:
        raise _image_error(video, matching, f"its {spec} subtitle track" if len(matching) == 1
                           else f"its {spec} subtitle tracks")
    return _preferred([t for t in matching_text if not t.forced] or matching_text[:1])


def extract_track(video: str | Path, track: SubtitleTrack) -> tuple[str, str]:
    """The track's cues as (text, format): "ass" (the script as stored) for ASS/SSA tracks, else "srt" (ffmpeg
    converts subrip, mov_text, webvtt... to SRT). One ffmpeg pass over the file with video and audio not
    decoded; raises EmocliError with ffmpeg's message when it fails."""
    video = Path(video)
    if not track.is_text:
        raise _image_error(video, [track], f"subtitle track {track.subtitle_index}")
    fmt = "ass" if track.codec in _ASS_CODECS else "srt"
    codec = "copy" if track.codec == "ass" else fmt  # ssa is re-encoded: the ass muxer takes ASS packets only
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(video),
            "-map", f"0:s:{track.subtitle_index}", "-vn", "-an", "-c:s", codec, "-f", fmt, "pipe:1"]
    proc = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = _ffmpeg_detail(video, proc.stderr.decode("utf-8", "replace"))
        raise EmocliError(f"cannot extract {track.describe()} from {video}: {detail}")
    return proc.stdout.decode("utf-8", "replace"), fmt


def read_track(video: str | Path, spec: str | None = None, keep_sound_cues: bool = False):
    """The cues of the video's chosen text subtitle track (`choose_track`) and the track's description, read in
    one ffmpeg pass; None when the video has no subtitle tracks at all."""
    from .encoding import DecodedText
    from .subtitles import parse_subtitles

    track = choose_track(list_tracks(video), spec, video)
    if track is None:
        return None
    text, fmt = extract_track(video, track)
    parsed = parse_subtitles(text, fmt, keep_sound_cues)
    parsed.encoding = DecodedText(text, "utf-8", True)  # ffmpeg writes the tracks it extracts as UTF-8
    return parsed, track.describe()


def list_audio_tracks(video: str | Path) -> list[SubtitleTrack]:
    """The audio streams of a media file (kind "audio"; `subtitle_index` is the N of `-map 0:a:N`)."""
    return parse_tracks(stream_listing(video), "Audio")


def choose_audio_track(tracks: Sequence[SubtitleTrack], spec: str | None, language: str | None,
                       video: str | Path) -> SubtitleTrack | None:
    """The audio track to hear: `spec` (--audio-track: a number from 0, or a language), else the first whose
    language is `language` (the subtitles' language, or the one being transcribed), else the first; None when
    there is no audio."""
    if not tracks:
        if spec is not None:
            raise UsageError(f"{video}: --audio-track {spec}: it has no audio stream")
        return None
    if spec is not None:
        listing = "; ".join(t._inline() for t in tracks)
        if spec.strip().isdigit():
            k = int(spec)
            if k >= len(tracks):
                raise UsageError(f"{video}: no audio track {k} (tracks count from 0); it has {listing}")
            return tracks[k]
        wanted = language_key(spec)
        match = [t for t in tracks if language_key(t.language) == wanted]
        if not match:
            raise UsageError(f"{video}: no audio track in language {spec!r}; it has {listing}")
        return match[0]
    wanted = language_key(language)
    return next((t for t in tracks if wanted and language_key(t.language) == wanted), tracks[0])
