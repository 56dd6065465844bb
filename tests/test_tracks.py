"""Subtitle tracks inside videos: listing with ffmpeg -i, choosing one, extracting it as SRT or ASS."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from emocli.text import tracks
from emocli.errors import EmocliError, UsageError
from emocli.media.ffmpeg import ffmpeg_exe

FRENCH_SRT = "1\n00:00:00,500 --> 00:00:01,500\nBonjour tout le monde\n\n"
ENGLISH_SRT = ("1\n00:00:01,000 --> 00:00:02,500\nHello there\n\n"
               "2\n00:00:03,000 --> 00:00:03,800\nI'm so happy!\n\n")
GERMAN_SRT = "1\n00:00:02,000 --> 00:00:03,000\nGuten Tag\n\n"
ASS_SCRIPT = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,Alice,0,0,0,,{\\i1}I am so happy{\\i0}
Dialogue: 0,0:00:03.00,0:00:03.80,Default,Bob,0,0,0,,Why?
"""
VIDEO = ["-f", "lavfi", "-i", "color=c=gray:s=64x48:d=4"]
AUDIO = ["-f", "lavfi", "-i", "anullsrc=d=4"]


def pgs_sup() -> bytes:
    """A minimal valid PGS stream: two display sets (an epoch start at 1 s, a clear at 2.5 s), each a
    Presentation Composition Segment with no objects followed by an END segment."""
    def segment(pts_s: float, kind: int, payload: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", round(pts_s * 90_000), 0, kind, len(payload)) + payload

    def composition(number: int, state: int) -> bytes:  # width, height, frame rate, number, state, palette, objects
        return struct.pack(">HHBHBBBB", 64, 48, 0x10, number, state, 0, 0, 0)

    return b"".join(segment(t, 0x16, composition(i, state)) + segment(t, 0x80, b"")
                    for i, (t, state) in enumerate([(1.0, 0x80), (2.5, 0x00)]))


def mux(out: Path, inputs: list[str], subtitle_files: list[Path], options: list[str], audio: bool = False) -> Path:
    """A 4 s gray video (with silent audio if asked) muxed with the given subtitle files, in that order."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *VIDEO, *(AUDIO if audio else [])]
    for sub in subtitle_files:
        args += [*inputs, "-i", str(sub)]
    args += ["-map", "0:v"] + (["-map", "1:a"] if audio else [])
    first = 2 if audio else 1
    for i in range(len(subtitle_files)):
        args += ["-map", str(first + i)]
    args += ["-c:v", "libx264", "-preset", "ultrafast", *(["-c:a", "aac"] if audio else []), *options, str(out)]
    subprocess.run(args, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tracks")
    for name, text in (("fr.srt", FRENCH_SRT), ("en.srt", ENGLISH_SRT), ("de.srt", GERMAN_SRT),
                       ("dialog.ass", ASS_SCRIPT)):
        (root / name).write_text(text, encoding="utf-8")
    (root / "signs.sup").write_bytes(pgs_sup())
    fr, en, de, ass, sup = (root / n for n in ("fr.srt", "en.srt", "de.srt", "dialog.ass", "signs.sup"))
    return {
        "two": mux(root / "two.mkv", [], [fr, en], ["-c:s", "srt", "-metadata:s:s:0", "language=fre",
                                                     "-metadata:s:s:0", "title=French",
                                                     "-metadata:s:s:1", "language=eng",
                                                     "-disposition:s:0", "0", "-disposition:s:1", "default"],
                     audio=True),
        "mp4": mux(root / "movtext.mp4", [], [de, en], ["-c:s", "mov_text", "-metadata:s:s:0", "language=ger",
                                                         "-metadata:s:s:1", "language=eng"]),
        "ass": mux(root / "ass.mkv", [], [ass], ["-c:s", "copy"]),
        "untagged": mux(root / "untagged.mkv", [], [fr, de], ["-c:s", "srt", "-metadata:s:s:1", "language=deu"]),
        "und_mp4": mux(root / "und.mp4", [], [fr], ["-c:s", "mov_text"]),
        "pgs": mux(root / "pgs.mkv", [], [sup], ["-c:s", "copy", "-metadata:s:s:0", "language=eng"]),
        "pgs_text": mux(root / "pgs_text.mkv", [], [sup, de], ["-c:s:0", "copy", "-c:s:1", "srt",
                                                               "-metadata:s:s:0", "language=eng"]),
        "plain": mux(root / "plain.mkv", [], [], [], audio=True),
    }


def srt_cues(text: str) -> list[tuple[str, str]]:
    """(timing line, text) of each block of an SRT document."""
    blocks = [b.strip().splitlines() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return [(b[1], "\n".join(b[2:])) for b in blocks]


def test_lists_tracks_with_languages_titles_and_both_indices(videos):
    french, english = tracks.list_tracks(videos["two"])
    assert (french.stream_index, french.subtitle_index, french.codec) == (2, 0, "subrip")  # 0 video, 1 audio
    assert (english.stream_index, english.subtitle_index, english.codec) == (3, 1, "subrip")
    assert (french.language, french.title, english.language, english.title) == ("fre", "French", "eng", None)
    assert french.is_text and english.is_text and english.default and not french.default
    assert french.describe() == 'track 0 (stream #0:2, subrip, fre, "French")'


def test_chooses_english_by_default_and_french_by_number_or_code(videos):
    listed = tracks.list_tracks(videos["two"])
    assert tracks.choose_track(listed, None, videos["two"]).language == "eng"
    for spec in ("0", "fr", "fre", "fra", "French", " fr-CA "):
        assert tracks.choose_track(listed, spec, videos["two"]).subtitle_index == 0, spec
    assert tracks.choose_track(listed, "1", videos["two"]).language == "eng"
    assert tracks.choose_track(listed, "en-US", videos["two"]).language == "eng"


def test_extracts_the_english_track_as_srt(videos):
    listed = tracks.list_tracks(videos["two"])
    text, fmt = tracks.extract_track(videos["two"], tracks.choose_track(listed, None, videos["two"]))
    assert fmt == "srt"
    assert srt_cues(text) == [("00:00:01,000 --> 00:00:02,500", "Hello there"),
                              ("00:00:03,000 --> 00:00:03,800", "I'm so happy!")]
    french_text, _ = tracks.extract_track(videos["two"], listed[0])
    assert srt_cues(french_text) == [("00:00:00,500 --> 00:00:01,500", "Bonjour tout le monde")]


def test_mov_text_in_mp4_is_extracted_as_srt(videos):
    listed = tracks.list_tracks(videos["mp4"])
    assert [(t.codec, t.language, t.stream_index) for t in listed] == [("mov_text", "ger", 1), ("mov_text", "eng", 2)]
    assert listed[0].default and not listed[1].default  # the mp4 muxer marks the first one default: English wins
    assert tracks.choose_track(listed, "de", videos["mp4"]).subtitle_index == 0
    text, fmt = tracks.extract_track(videos["mp4"], tracks.choose_track(listed, None, videos["mp4"]))
    assert fmt == "srt"
    assert srt_cues(text) == [("00:00:01,000 --> 00:00:02,500", "Hello there"),
                              ("00:00:03,000 --> 00:00:03,800", "I'm so happy!")]


def test_ass_track_is_extracted_as_ass_with_names_and_tags(videos):
    (track,) = tracks.list_tracks(videos["ass"])
    assert (track.codec, track.language, track.is_text) == ("ass", None, True)
    text, fmt = tracks.extract_track(videos["ass"], tracks.choose_track([track], None, videos["ass"]))
    assert fmt == "ass"
    dialogue = [ln for ln in text.splitlines() if ln.startswith("Dialogue:")]
    assert dialogue == ["Dialogue: 0,0:00:01.00,0:00:02.50,Default,Alice,0,0,0,,{\\i1}I am so happy{\\i0}",
                        "Dialogue: 0,0:00:03.00,0:00:03.80,Default,Bob,0,0,0,,Why?"]
    assert "Format: Layer, Start, End, Style, Name" in text


def test_untagged_track_has_no_language_and_is_chosen_when_there_is_no_english(videos):
    untagged, german = tracks.list_tracks(videos["untagged"])
    assert untagged.language is None and german.language == "deu"
    assert tracks.choose_track([untagged, german], None, videos["untagged"]) == untagged
    assert tracks.choose_track([untagged, german], "ger", videos["untagged"]) == german  # 639-2/B finds /T
    (und,) = tracks.list_tracks(videos["und_mp4"])  # mp4 writes "und" for an untagged track
    assert und.language is None and und.codec == "mov_text"


def test_pgs_only_video_is_refused_as_image_based(videos):
    (track,) = tracks.list_tracks(videos["pgs"])
    assert (track.codec, track.language, track.is_text) == ("hdmv_pgs_subtitle", "eng", False)
    for spec in (None, "0", "en"):
        with pytest.raises(EmocliError) as caught:
            tracks.choose_track([track], spec, videos["pgs"])
        assert not isinstance(caught.value, UsageError) and caught.value.exit_code == 1
        assert "image-based" in str(caught.value) and "track 0, stream #0:1, hdmv_pgs_subtitle" in str(caught.value)
        assert "--subs FILE" in str(caught.value)
    with pytest.raises(EmocliError, match="image-based"):
        tracks.extract_track(videos["pgs"], track)


def test_text_track_is_preferred_over_an_english_image_track(videos):
    pgs, german = tracks.list_tracks(videos["pgs_text"])
    assert not pgs.is_text and german.is_text and german.subtitle_index == 1
    assert tracks.choose_track([pgs, german], None, videos["pgs_text"]) == german
    with pytest.raises(EmocliError, match="subtitle track 0 is image-based"):
        tracks.choose_track([pgs, german], "0", videos["pgs_text"])


@pytest.mark.parametrize("spec, expected", [("7", "no subtitle track 7"), ("de", "no subtitle track in language 'de'"),
                                            ("und", "not a subtitle track number or language")])
def test_bad_spec_is_a_usage_error_listing_the_tracks(videos, spec, expected):
    listed = tracks.list_tracks(videos["two"])
    with pytest.raises(UsageError) as caught:
        tracks.choose_track(listed, spec, videos["two"])
    message = str(caught.value)
    assert caught.value.exit_code == 2 and expected in message and "\n" not in message
    assert 'track 0 (stream #0:2, subrip, fre, "French")' in message
    assert "track 1 (stream #0:3, subrip, eng, default)" in message


def test_video_without_subtitles_has_no_tracks(videos):
    assert tracks.list_tracks(videos["plain"]) == []
    assert tracks.choose_track([], None, videos["plain"]) is None
    with pytest.raises(UsageError, match="no subtitle tracks"):
        tracks.choose_track([], "0", videos["plain"])


def test_unreadable_or_missing_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video\n" * 50)
    with pytest.raises(EmocliError, match="cannot read the subtitle tracks"):
        tracks.list_tracks(bad)
    with pytest.raises(EmocliError, match="file not found"):
        tracks.list_tracks(tmp_path / "missing.mkv")


def test_listing_parser_handles_ids_dispositions_programs_and_other_inputs():
    listing = """Input #0, mpegts, from 'x.ts':
  Duration: 00:00:04.00, start: 1.4, bitrate: 5 kb/s
  Program 1
    Stream #0:0[0x100]: Video: h264, yuv420p, 64x48, 25 fps
    Stream #0:1[0x101](spa): Subtitle: dvb_subtitle ([6][0][0][0] / 0x0006) (hearing impaired)
  Stream #0:2[0x3](fre): Subtitle: mov_text (tx3g / 0x67337874), 0 kb/s (default) (forced)
    Metadata:
      handler_name    : SubtitleHandler
      name            : Forced French
  Stream #0:3: Subtitle: webvtt
    Metadata:
      title           : English SDH
  Chapters:
    Chapter #0:0: start 0.000000, end 4.000000
      Metadata:
        title           : Chapter 1
Input #1, srt, from 'y.srt':
  Stream #1:0: Subtitle: subrip (srt)
"""
    dvb, french, english = tracks.parse_tracks(listing)
    assert (dvb.stream_index, dvb.subtitle_index, dvb.codec, dvb.language, dvb.is_text) == (1, 0, "dvb_subtitle",
                                                                                            "spa", False)
    assert (french.codec, french.language, french.title, french.default, french.forced) == (
        "mov_text", "fre", "Forced French", True, True)
    assert (english.stream_index, english.language, english.title, english.default) == (3, None, "English SDH", False)
    assert tracks.choose_track([dvb, french, english], None, Path("x.ts")) == english  # untagged, titled English
    assert tracks.choose_track([dvb, french, english], "fr", Path("x.ts")) == french  # forced, but the only one


# --- end to end: annotate reads the track once, with the sibling file and --subs taking precedence ------------

def _annotate(*args) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "emocli", "annotate", *map(str, args), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_annotate_reads_the_english_track_and_says_which(videos, text_model, tmp_path):
    import json

    video = tmp_path / "two.mkv"
    video.symlink_to(videos["two"])
    proc = _annotate(video, "--model", text_model, "-o", tmp_path / "out", "-f", "csv,json")
    assert proc.returncode == 0, proc.stderr
    rows = _csv(tmp_path / "out" / "two.emotions.csv")
    assert [(r["index"], r["start"], r["end"], r["text"]) for r in rows] == [
        ("1", "1.0", "2.5", "Hello there"), ("2", "3.0", "3.8", "I'm so happy!")]
    doc = json.loads((tmp_path / "out" / "two.emotions.json").read_text(encoding="utf-8"))
    assert doc["subtitles"]["track"].startswith("track 1 (stream #0:3, subrip, eng")
    assert doc["subtitles"]["file"] == str(video)

    french = _annotate(video, "--model", text_model, "-o", tmp_path / "fr", "-q", "--subs-track", "fre")
    assert french.returncode == 0, french.stderr
    assert [r["text"] for r in _csv(tmp_path / "fr" / "two.emotions.csv")] == ["Bonjour tout le monde"]

    # precedence: a sibling file beats the track, --subs beats the sibling, --subs-track beats the sibling
    (tmp_path / "two.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nFrom the sibling file.\n")
    (tmp_path / "other.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nFrom --subs.\n")
    for extra, text in (([], "From the sibling file."), (["--subs", tmp_path / "other.srt"], "From --subs."),
                        (["--subs-track", "0"], "Bonjour tout le monde")):
        out = tmp_path / f"p{len(extra)}{text[:4]}"
        proc = _annotate(video, "--model", text_model, "-o", out, "-q", *extra)
        assert proc.returncode == 0, proc.stderr
        assert _csv(out / "two.emotions.csv")[0]["text"] == text


def test_annotate_mov_text_and_ass_tracks(videos, text_model, tmp_path):
    for key, expected in (("mp4", [("", "Hello there"), ("", "I'm so happy!")]),
                          ("ass", [("Alice", "I am so happy"), ("Bob", "Why?")])):
        proc = _annotate(videos[key], "--model", text_model, "-o", tmp_path / key, "-q")
        assert proc.returncode == 0, proc.stderr
        rows = _csv(tmp_path / key / f"{videos[key].stem}.emotions.csv")
        assert [(r["speaker"], r["text"]) for r in rows] == expected


def test_annotate_a_pgs_only_video_fails_in_one_line_naming_the_track(videos, text_model, tmp_path):
    for extra in ([], ["--transcribe", "never"]):  # auto: it would transcribe, but this video has no audio
        proc = _annotate(videos["pgs"], "--model", text_model, "-o", tmp_path, *extra)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "image-based" in lines[0] and "hdmv_pgs_subtitle" in lines[0] and "Traceback" not in proc.stderr
    plain = _annotate(videos["plain"], "--model", text_model, "-o", tmp_path, "--transcribe", "never")
    assert plain.returncode == 1 and "no subtitles found" in plain.stderr and "track inside" in plain.stderr
