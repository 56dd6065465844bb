"""Hostile but realistic inputs, second round: frames and audio that were never decoded, a full disk, duplicated
gold rows, a 10 MB cue, negative track numbers, a read-only folder, stray NUL bytes, mistyped timing arrows, a
YouTube file's repeated last phrase, EMOCLI_MODEL by name, a file ffmpeg cannot open. Every input is built here."""

from __future__ import annotations

import csv
import errno
import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SIX_CUES, season
from emocli.cli import app
from emocli.media.ffmpeg import ffmpeg_exe
from emocli.synth import write_srt
from emocli.text.subtitles import MAX_CUE_CHARS, parse_subtitles, read_subtitles

runner = CliRunner()
FACE = Path(__file__).parent / "fixtures" / "face.jpg"


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def face_then_gray(out: Path, face_s: float, gray_s: float, audio_s: float, faststart: bool = True) -> Path:
    """The test face for `face_s`, then gray for `gray_s`, 25 fps, beside a tone of `audio_s` (no -shortest: a
    picture stream shorter than the audio stays so)."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-t", str(face_s), "-r", "25", "-i", str(FACE),
                    "-f", "lavfi", "-i", f"color=c=gray:s=384x384:r=25:d={gray_s}", "-f", "lavfi", "-i",
                    f"sine=f=300:r=16000:d={audio_s}", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                    "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", *(["-movflags", "+faststart"] if faststart else []), str(out)],
                   check=True, capture_output=True)
    return out


CUES = [(1.0, 3.0, "Look at me."), (10.0, 12.0, "Are you still there?"), (15.0, 17.0, "Hello?")]


@pytest.fixture(scope="module")
def truncated(tmp_path_factory) -> Path:
    """20 s: a face for 8 s, then gray; cut at 45% of its bytes, so it decodes to about 4 s only."""
    folder = tmp_path_factory.mktemp("truncated")
    whole = face_then_gray(folder / "whole.mp4", 8, 12, 20)
    data = whole.read_bytes()
    cut = folder / "cut.mp4"
    cut.write_bytes(data[:len(data) * 45 // 100])
    write_srt(folder / "cut.srt", CUES)
    return cut


@pytest.fixture(scope="module")
def short_picture(tmp_path_factory) -> Path:
    """A picture stream of 6 s (face, then gray) beside 20 s of audio: no truncation."""
    folder = tmp_path_factory.mktemp("short_picture")
    video = face_then_gray(folder / "short.mp4", 3, 3, 20, faststart=False)
    write_srt(folder / "short.srt", [(1.0, 2.5, "Look at me."), (10.0, 12.0, "Are you still there?"),
                                     (15.0, 17.0, "Hello?")])
    return video


# --- 1. frames that were never decoded -----------------------------------------------------------------------

@pytest.mark.parametrize("video_fixture", ["truncated", "short_picture"])
@pytest.mark.parametrize("model_fixture", ["text_model", "trimodal_model"])
def test_utterances_past_the_decodable_video_get_no_face_and_no_video(request, tmp_path, video_fixture,
                                                                       model_fixture):
    video = request.getfixturevalue(video_fixture)
    result = cli("annotate", video, "--model", request.getfixturevalue(model_fixture), "--face", "-f", "csv,json",
                 "-o", tmp_path, "--device", "cpu", "--vad", "energy")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("emocli: warning:")]
    assert any(f"{video.name}: video decodes only to " in w and "2 utterance(s) without frames" in w
               and "nothing from 10.0 s on" in w for w in warning), result.output
    table = rows(tmp_path / f"{video.stem}.emotions.csv")
    assert [(r["face_emotion"], r["face_frames"]) for r in table] == [("joy", "8"), ("", ""), ("", "")]
    assert all(r["face_confidence"] == "" for r in table[1:])
    doc = json.loads((tmp_path / f"{video.stem}.emotions.json").read_text())
    first, *rest = doc["utterances"]
    assert "media_missing" not in first and first["face"]["frames"] == 8
    for u in rest:
        assert u["media_missing"]["video"].startswith("no frame decoded") and u["face"] is None
        assert "video" not in u["modalities"]  # masked, not fed a stale frame
    if "video" in first["modalities"]:  # the trimodal model saw the face where it was decoded
        assert first["modalities"] == ["text", "audio", "video"]
    gaps = doc["media_gaps"]["video"]
    assert gaps["utterances_without_frames"] == 2 and gaps["missing_from_s"] == 10.0
    assert gaps["last_decoded_s"] < 8


def test_the_whole_file_gives_every_cue_its_frames(tmp_path_factory, tmp_path, text_model):
    folder = tmp_path_factory.mktemp("whole")
    video = face_then_gray(folder / "whole.mp4", 8, 12, 20)
    write_srt(folder / "whole.srt", CUES)
    result = cli("annotate", video, "--model", text_model, "--face", "-f", "csv,json", "-o", tmp_path)
    assert result.exit_code == 0 and "warning" not in result.output
    assert [r["face_frames"] for r in rows(tmp_path / "whole.emotions.csv")] == ["8", "0", "0"]
    assert "media_gaps" not in json.loads((tmp_path / "whole.emotions.json").read_text())


def test_audio_past_its_end_is_masked_and_counted(tmp_path, trimodal_model):
    video = tmp_path / "short_audio.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=8", "-f",
                    "lavfi", "-i", "sine=f=300:r=16000:d=3", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(video)], check=True, capture_output=True)
    write_srt(tmp_path / "short_audio.srt", [(0.5, 2.0, "I hear you."), (5.0, 7.0, "Now it is quiet.")])
    result = cli("annotate", video, "--model", trimodal_model, "-f", "json", "-o", tmp_path / "out", "--vad",
                 "none")
    assert result.exit_code == 0, result.output
    assert "audio decodes only to 3.0 s of 8.0 s (nothing from 5.0 s on): 1 utterance(s) without audio" in \
        result.output
    first, second = json.loads((tmp_path / "out" / "short_audio.emotions.json").read_text())["utterances"]
    assert "audio" in first["modalities"] and "audio" not in second["modalities"]
    assert second["media_missing"] == {"audio": "no audio decoded for it (past the end of the decodable audio)"}


# --- 2. a full disk ---------------------------------------------------------------------------------------------

def full_disk_on(names: tuple[str, ...], monkeypatch) -> None:
    """Writing any file whose name ends with one of `names` fails as a full disk does (no file named)."""
    import emocli.files as files

    real = files._write_temp

    def write(path, data):
        if Path(path).name.endswith(names):
            raise files._named(OSError(errno.ENOSPC, "No space left on device"), Path(path))
        return real(path, data)

    monkeypatch.setattr(files, "_write_temp", write)


def test_a_full_disk_loses_one_videos_outputs_whole_and_the_summary_is_printed(media_dir, text_model, tmp_path,
                                                                              monkeypatch):
    folder = season(media_dir, tmp_path / "season", 3)
    full_disk_on(("ep1.emotions.html",), monkeypatch)
    out = tmp_path / "out"
    result = cli("annotate", folder, "--model", text_model, "-f", "all", "-o", out, "--plot")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any("ep1.mp4: cannot write outputs (No space left on device: " in line and "ep1.emotions.html" in line
               for line in lines), result.output
    assert lines[-2] == "3 video(s): 2 annotated, 0 already done (skipped), 1 failed"
    written = sorted(p.name for p in out.iterdir())
    assert not [n for n in written if n.startswith("ep1") or n.startswith(".")], written  # all or none, no temps
    for ep in ("ep0", "ep2"):
        assert {f"{ep}.emotions.{x}" for x in ("csv", "json", "srt", "vtt", "ass", "html", "png")} <= set(written)
    assert "index.html" in written


def test_an_index_that_cannot_be_written_is_one_line_and_the_summary_follows(media_dir, text_model, tmp_path,
                                                                            monkeypatch):
    folder = season(media_dir, tmp_path / "season", 2)
    full_disk_on(("index.html",), monkeypatch)
    result = cli("annotate", folder, "--model", text_model, "-f", "html", "-o", tmp_path / "out")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "emocli: error: cannot write the review pages' index (No space left on device: " in result.output
    assert "index.html" in result.output and lines[-1] == "2 video(s): 2 annotated, 0 already done (skipped), 0 failed"


# --- 3. duplicated gold rows ------------------------------------------------------------------------------------

def test_score_refuses_a_gold_file_with_repeated_rows(media_dir, text_model, tmp_path, six_cue_srt):
    assert cli("annotate", media_dir / "both.mp4", "--subs", six_cue_srt, "--model", text_model, "-o",
               tmp_path).exit_code == 0
    predictions = tmp_path / "both.emotions.csv"
    gold = tmp_path / "gold.csv"
    body = [f"{r['index']},{r['turn']},{r['emotion']}" for r in rows(predictions)]
    gold.write_text("index,turn,corrected\n" + "\n".join(body + [body[2].replace(body[2].split(",")[2], "fear")])
                    + "\n")
    result = cli("score", predictions, gold)
    assert result.exit_code == 2
    assert result.output.strip() == (f"emocli: error: {gold}: row 8 repeats row 4 (index 3, turn 1): each cue may "
                                     f"be labelled once; remove the duplicate rows")
    gold.write_text("index,turn,corrected\n" + "\n".join(body) + "\n")
    assert cli("score", predictions, gold).exit_code == 0  # the same file without the repeat scores


# --- 4. a 10 MB cue ----------------------------------------------------------------------------------------------

def test_a_cue_longer_than_any_subtitle_is_skipped_before_cleaning():
    huge = "word " * (10_000_000 // 5)
    text = f"1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n2\n00:00:03,000 --> 00:00:04,000\n{huge}\n\n" \
           f"3\n00:00:05,000 --> 00:00:06,000\nBye.\n"
    subs = parse_subtitles(text)
    assert [c.text for c in subs.cues] == ["Hello.", "Bye."]
    assert dict(subs.skipped) == {f"longer than {MAX_CUE_CHARS:,} characters (not a subtitle)": 1}


def test_annotate_names_the_long_cue_in_its_warning(media_dir, text_model, tmp_path):
    subs = write_srt(tmp_path / "long.srt", [(0.2, 1.0, "Hi."), (1.5, 2.5, "x" * (MAX_CUE_CHARS + 1)),
                                             (3.0, 4.0, "Bye.")])
    result = cli("annotate", media_dir / "both.mp4", "--subs", subs, "--model", text_model, "-o", tmp_path,
                 "-f", "csv,json")
    assert result.exit_code == 0
    assert "1 of 3 cues skipped (1 longer than 2,000 characters (not a subtitle))" in result.output
    assert [r["text"] for r in rows(tmp_path / "both.emotions.csv")] == ["Hi.", "Bye."]
    assert json.loads((tmp_path / "both.emotions.json").read_text())["subtitles"]["cues"] == 3


# --- 5. negative track numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--audio-track", "--subs-track"])
def test_a_negative_track_number_is_a_usage_error(media_dir, text_model, tmp_path, option):
    result = cli("annotate", media_dir / "both.mp4", "--model", text_model, "-o", tmp_path, option, "-1")
    assert result.exit_code == 2
    assert result.output.strip() == (f"emocli: error: {option} -1: tracks are numbered from 0 (or name a "
                                     f"language, e.g. en)")
    assert not list(tmp_path.iterdir())


# --- 6. a read-only folder -----------------------------------------------------------------------------------------

def test_a_folder_that_takes_no_files_fails_before_any_work(media_dir, text_model, tmp_path, monkeypatch):
    import emocli.pipeline.jobs as jobs

    folder = season(media_dir, tmp_path / "season", 2)
    folder.chmod(0o555)  # as root the permission alone does not stop a write: the probe is what the check uses
    monkeypatch.setattr(jobs, "can_create_files", lambda path: OSError(errno.EROFS, "Read-only file system")
                        if Path(path) == folder else None)
    try:
        result = cli("annotate", folder, "--model", text_model)
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 2
    assert result.output.strip() == (f"emocli: error: cannot write next to ep0.mp4: its folder {folder} takes no "
                                     f"files (Read-only file system); pass -o DIR to write the outputs elsewhere")
    assert sorted(p.name for p in folder.iterdir()) == ["ep0.mp4", "ep0.srt", "ep1.mp4", "ep1.srt"]


# --- 7. stray NUL bytes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_stray_nuls_are_dropped_with_a_warning(media_dir, text_model, tmp_path, encoding):
    srt = write_srt(tmp_path / "nul.srt", SIX_CUES).read_bytes()
    (tmp_path / "nul.srt").write_bytes(srt.replace(b"Okay.", b"Ok\x00ay.") + b"\x00" * 3000)
    result = cli("annotate", media_dir / "both.mp4", "--subs", tmp_path / "nul.srt", "--model", text_model, "-o",
                 tmp_path / "out", *(["--encoding", encoding] if encoding else []))
    assert result.exit_code == 0, result.output
    assert "3001 NUL bytes dropped (the file was padded or cut by a broken tool)" in result.output
    out = (tmp_path / "out" / "both.emotions.csv").read_text(encoding="utf-8")
    assert "\x00" not in out and rows(tmp_path / "out" / "both.emotions.csv")[-1]["text"] == "Okay."


def test_mostly_binary_data_is_still_refused(tmp_path):
    path = tmp_path / "photo.srt"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    with pytest.raises(Exception, match="binary data, not a subtitle file"):
        read_subtitles(path)
    path.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nHi.\n" + b"\x00ab" * 500)  # NULs all through it
    with pytest.raises(Exception, match="binary data, not a subtitle file"):
        read_subtitles(path)


# --- 8. mistyped arrows ----------------------------------------------------------------------------------------------

def test_every_cue_block_is_read_or_counted():
    arrows = ["-->", "->", "-- >", "\u2014>", "-->", "\u2013>", "-->", "-->", "-->", "-->"]
    blocks = [f"{k}\n00:00:{k:02d},000 {arrow} 00:00:{k:02d},800\nLine {k}." for k, arrow in enumerate(arrows, 1)]
    blocks[7] = "8\n00:00:08,000 --> 00:00:xx,800\nLine 8."  # a timing that cannot be read
    subs = parse_subtitles("\n\n".join(blocks) + "\n")
    assert [c.index for c in subs.cues] == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert subs.notes["with a mistyped timing arrow (read)"] == 4 and subs.unreadable == 1
    from emocli.text.subtitles import validate_cues

    _, report = validate_cues(subs.cues, 60.0, subs.unreadable, subs.skipped)
    assert report.total == 10 and "1 of 10 cues skipped (1 with unreadable timing)" in report.warning()


def test_a_mistyped_arrow_needs_whole_timestamps_around_it():
    subs = parse_subtitles("1\n00:00:01,000 --> 00:00:02,000\nFrom 10:30 -> 11:00 today.\n")
    assert [c.text for c in subs.cues] == ["From 10:30 -> 11:00 today."] and not subs.notes


# --- also seen ---------------------------------------------------------------------------------------------------------

def test_a_youtube_files_repeated_last_phrase_is_kept_once():
    """YouTube's rolling captions (each cue carries the line before, a 10 ms flash repeats the new one), ending
    with the last phrase shown alone again for 1.7 s."""
    phrases = ["Today I'm going", "to show you", "how to cook", "a very good", "pasta sauce"]

    def stamp(t: float) -> str:
        return f"00:00:{int(t):02d}.{round(t % 1 * 1000):03d}"

    blocks, t, before = [], 0.2, ""
    for phrase in phrases:
        blocks.append(f"{stamp(t)} --> {stamp(t + 1.5)}\n{before}\n{phrase}" if before else
                      f"{stamp(t)} --> {stamp(t + 1.5)}\n \n{phrase}")
        blocks.append(f"{stamp(t + 1.5)} --> {stamp(t + 1.51)}\n{phrase}\n ")
        before, t = phrase, t + 1.51
    blocks.append(f"{stamp(t)} --> {stamp(t + 1.7)}\n{phrases[-1]}\n ")
    subs = parse_subtitles("WEBVTT\nKind: captions\n\n" + "\n\n".join(blocks) + "\n")
    assert [c.text for c in subs.cues] == phrases


def test_emocli_model_takes_a_shipped_models_name(media_dir, text_model, tmp_path, monkeypatch, six_cue_srt):
    import shutil

    from emocli.model import checkpoint

    weights = tmp_path / "weights"
    shutil.copytree(text_model, weights / "tiny")
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", weights)
    monkeypatch.setenv("EMOCLI_MODEL", "tiny")
    result = cli("annotate", media_dir / "both.mp4", "--subs", six_cue_srt, "-o", tmp_path / "out", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "both.emotions.json").read_text())
    assert doc["model"]["path"] == str(weights / "tiny")
    monkeypatch.setenv("EMOCLI_MODEL", "nonesuch")
    result = cli("annotate", media_dir / "both.mp4", "--subs", six_cue_srt, "-o", tmp_path / "out2")
    assert result.exit_code == 2 and "'nonesuch' is neither a folder nor an installed model" in result.output


def test_a_file_ffmpeg_cannot_open_is_explained(tmp_path, text_model):
    video = tmp_path / "fake.mp4"
    video.write_bytes(b"not a video\n" * 100)
    write_srt(tmp_path / "fake.srt", [(0.0, 1.0, "Hi.")])
    result = cli("annotate", video, "--model", text_model)
    assert result.exit_code == 1
    assert result.output.startswith(f"emocli: error: cannot decode {video}: not a video or audio file ffmpeg can "
                                    f"open (ffmpeg recognises no media format in it;")
