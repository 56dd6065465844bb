"""End to end on real-world subtitle shapes: what annotate writes for sound cues, two-speaker lines, the file's
cue numbers, code pages and UTF-32, non-English text; folder mode over any media; the newcomer papercuts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pysrt
import pytest

from emocli.labels import LABELS
from emocli.synth import make_media

SRT_TEXT = """100
00:00:00,200 --> 00:00:01,000
[Music]

101
00:00:01,100 --> 00:00:02,600
- You're on the air.
- Right now?

102
00:00:02,700 --> 00:00:04,000
(laughs) You're kidding me.

103
00:00:04,100 --> 00:00:05,000
Downloaded From www.example.org

104
00:00:05,000 --> 00:00:05,900
MONICA: I can't believe it!
"""


def run(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emocli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("emocli: error")]


@pytest.fixture
def episode(media_dir, tmp_path) -> Path:
    video = tmp_path / "episode.mp4"
    video.symlink_to(media_dir / "both.mp4")
    (tmp_path / "episode.srt").write_text(SRT_TEXT, encoding="utf-8")
    return video


def test_sound_cues_turns_and_cue_numbers_in_every_output(episode, text_model, tmp_path):
    out = tmp_path / "out"
    proc = run("annotate", episode, "--model", text_model, "-o", out, "-f", "all", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("emocli: warning: episode.srt")]
    assert len(warnings) == 1 and "2 cues not speech, kept unlabelled (1 credit or advertisement, 1 sound " \
                                  "description" in warnings[0], proc.stderr

    table = pd.read_csv(out / "episode.emotions.csv", keep_default_na=False)
    assert table["index"].tolist() == [100, 101, 101, 102, 103, 104]
    assert table["turn"].tolist() == [1, 1, 2, 1, 1, 1]
    assert table["text"].tolist() == ["[Music]", "You're on the air.", "Right now?", "You're kidding me.",
                                      "Downloaded From www.example.org", "I can't believe it!"]
    assert table["emotion"].tolist()[0] == "" and table["emotion"].tolist()[4] == ""
    assert all(e in LABELS for e in table["emotion"].iloc[[1, 2, 3, 5]])
    assert table["non_speech"].tolist() == ["sound description", "", "", "", "credit or advertisement", ""]
    assert table["speaker"].tolist()[5] == "MONICA"
    # the cue's 1.5 s shared by text length: 15 and 9 letters
    assert table["end"][1] == table["start"][2] == pytest.approx(1.1 + 1.5 * 15 / 24, abs=1e-3)

    doc = json.loads((out / "episode.emotions.json").read_text(encoding="utf-8"))
    subs = doc["subtitles"]
    assert subs["format"] == "srt" and subs["encoding"] == "utf-8" and subs["encoding_confident"] is True
    assert subs["cues"] == 5 and subs["annotated"] == 4 and subs["turns_split"] == 1
    assert subs["non_speech"] == {"sound description": 1, "credit or advertisement": 1}
    music = doc["utterances"][0]
    assert music["emotion"] is None and music["probabilities"] is None and music["non_speech"] == "sound description"
    assert doc["utterances"][3]["removed"] == ["(laughs)"]

    items = pysrt.open(str(out / "episode.emotions.srt"))
    assert [i.index for i in items] == [100, 101, 102, 103, 104]  # the file's numbers; one block per cue
    assert items[0].text == "[Music]"
    first, second = items[1].text.split("\n")
    assert first.startswith(f"[{table['emotion'][1]} ") and first.endswith("] - You're on the air.")
    assert second.startswith(f"[{table['emotion'][2]} ") and second.endswith("] - Right now?")
    assert (items[1].start.ordinal, items[1].end.ordinal) == (1100, 2600)  # the original cue's timing

    vtt = (out / "episode.emotions.vtt").read_text(encoding="utf-8")
    assert "\n101\n00:00:01.100 --> 00:00:02.600\n[" in vtt
    ass = (out / "episode.emotions.ass").read_text(encoding="utf-8")
    assert "] - You're on the air.\\N[" in ass and "Style: non-speech" in ass


def test_keep_sound_cues_labels_them(episode, text_model, tmp_path):
    proc = run("annotate", episode, "--model", text_model, "-o", tmp_path / "o", "-q", "--keep-sound-cues")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "o" / "episode.emotions.csv", keep_default_na=False)
    assert len(table) == 6 and all(e in LABELS for e in table["emotion"])
    assert table["text"][0] == "[Music]" and table["text"][3] == "(laughs) You're kidding me."


CROATIAN = [(0.2, 1.5, "Đurđica je rekla da ćeš doći."), (1.6, 3.0, "Čekaj, što si učinio?"),
            (3.1, 4.5, "Žao mi je, nisam znao da će se to dogoditi."), (4.6, 5.9, "Šališ se? Ništa nije gotovo!")]


def _write(path: Path, cues, encoding: str) -> Path:
    blocks = [f"{i}\n00:00:0{int(s)},{int(s * 1000) % 1000:03d} --> 00:00:0{int(e)},{int(e * 1000) % 1000:03d}\n{t}\n"
              for i, (s, e, t) in enumerate(cues, start=1)]
    path.write_bytes("\n".join(blocks).encode(encoding))
    return path


def test_a_cp1250_file_is_decoded_as_cp1250_and_says_so(media_dir, text_model, tmp_path):
    video = tmp_path / "hr.mp4"
    video.symlink_to(media_dir / "both.mp4")
    _write(tmp_path / "hr.srt", CROATIAN, "cp1250")
    proc = run("annotate", video, "--model", text_model, "-o", tmp_path / "o", "-f", "csv,json")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "o" / "hr.emotions.csv")
    assert table["text"].tolist() == [t for _, _, t in CROATIAN]
    doc = json.loads((tmp_path / "o" / "hr.emotions.json").read_text(encoding="utf-8"))
    assert doc["subtitles"]["encoding"] == "cp1250"
    language = doc["subtitles"]["language"]
    assert language["code"] in ("hr", "sr", "bs")  # four short lines: py3langid cannot tell these apart
    warning = [ln for ln in proc.stderr.splitlines() if ln.startswith("emocli: warning: hr.srt")]
    assert len(warning) == 1 and f"looks {language['name']}" in warning[0] and "reads English" in warning[0]

    forced = run("annotate", video, "--model", text_model, "-o", tmp_path / "f", "-q", "--encoding", "cp1252")
    assert forced.returncode == 0, forced.stderr
    assert pd.read_csv(tmp_path / "f" / "hr.emotions.csv")["text"][0].startswith("Ðurðica")  # as asked
    bad = run("annotate", video, "--model", text_model, "-o", tmp_path / "b", "--encoding", "klingon")
    assert bad.returncode == 2 and len(error_lines(bad)) == 1 and "klingon" in bad.stderr


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-32-be"])
def test_utf32_files_are_read(media_dir, text_model, tmp_path, encoding):
    video = tmp_path / "v.mp4"
    video.symlink_to(media_dir / "both.mp4")
    _write(tmp_path / "v.srt", [(0.2, 1.5, "Hello there, “friend”."), (2.0, 3.0, "Bye.")], encoding)
    proc = run("annotate", video, "--model", text_model, "-o", tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "v.emotions.csv")["text"].tolist() == ["Hello there, “friend”.", "Bye."]


def test_folder_mode_takes_every_media_file_and_names_the_others(media_dir, text_model, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    make_media(folder / "news.ts", 6.0)
    make_media(folder / "interview.m4a", 6.0, video=False)
    for stem in ("news", "interview"):
        (folder / f"{stem}.srt").write_text(SRT_TEXT, encoding="utf-8")
    (folder / "notes.txt").write_text("hello")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8")
    proc = run("annotate", folder, "--model", text_model, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.csv")) == ["interview.emotions.csv",
                                                                        "news.emotions.csv"]
    notes = [ln for ln in proc.stderr.splitlines() if "not media ignored" in ln]
    assert len(notes) == 1 and "cover.jpg" in notes[0] and "notes.txt" in notes[0]


def test_subs_path_problems_are_usage_errors(episode, text_model, tmp_path):
    missing = run("annotate", episode, "--subs", tmp_path / "nope.srt", "--model", text_model)
    assert missing.returncode == 2 and "subtitle file not found" in error_lines(missing)[0]
    folder = run("annotate", episode, "--subs", tmp_path, "--model", text_model)
    assert folder.returncode == 2 and "is a folder" in error_lines(folder)[0]


def test_annotate_without_a_target_names_the_missing_argument():
    proc = run("annotate")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "missing argument 'target'" in lines[0].lower()
    assert "annotate --help" in lines[0] and not proc.stdout


def test_help_shows_no_value_after_flags_and_names_the_ray_extra():
    proc = subprocess.run([sys.executable, "-m", "emocli", "annotate", "--help"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    assert "<bool>" not in proc.stdout and "emocli[ray]" in proc.stdout and "[Music]" in proc.stdout
    assert "--keep-sound-cues" in proc.stdout and "--subs-track" in proc.stdout and "--encoding" in proc.stdout
