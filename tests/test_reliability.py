"""Hostile inputs, each with its expected outcome; the subtitle reader under hypothesis; kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emocli.labels import LABELS
from emocli.errors import EmocliError
from emocli.media.ffmpeg import ffmpeg_exe
from emocli.text.subtitles import parse_subtitles, read_subtitles
from emocli.text.encoding import decode_subtitle_bytes
from emocli.synth import make_media, write_ass, write_srt, write_vtt

from conftest import build_checkpoint

GOOD = [(0.1, 0.9, "Hello there."), (1.0, 1.8, "How are you?"), (2.0, 2.9, "Fine, thanks!")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Bad videos and bad subtitle files, built here (nothing downloaded)."""
    root = tmp_path_factory.mktemp("corpus")
    make_media(root / "good.mp4", 4.0)
    data = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("hello, I am a text file pretending to be a video\n" * 20)
    write_srt(root / "only.srt", GOOD)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(root / "only.srt"), "-map", "0", "-c", "copy",
                    str(root / "nostreams.mkv")], check=True)  # a container holding only a subtitle stream
    make_media(root / "noaudio.mp4", 4.0, audio=None)
    make_media(root / "novideo.mp4", 4.0, video=False)
    make_media(root / "short.mp4", 0.2)
    make_media(root / "long.wav", 135.0, video=False)  # for the 10,000-cue file
    srt = "1\n00:00:00,100 --> 00:00:00,900\nHello there.\n\n2\n00:00:01,000 --> 00:00:01,800\nHow are you?\n"
    subs = root / "subs"
    subs.mkdir()
    (subs / "empty.srt").write_bytes(b"")
    (subs / "binary.srt").write_bytes(os.urandom(4096))
    (subs / "utf16_nobom.srt").write_bytes(srt.encode("utf-16-le"))
    (subs / "cp1252.srt").write_bytes(srt.replace("Hello there.", "Café “déjà vu”…").encode("cp1252"))
    (subs / "bom.srt").write_bytes(b"\xef\xbb\xbf" + srt.encode())
    (subs / "broken_times.srt").write_text(srt + "\n3\n00:00:zz,000 --> 00:00:03,000\nBad.\n\n4\n00:00:02 --> "
                                           "00:00:03,000\nAlso bad.\n")
    (subs / "negative_overlap.srt").write_text(
        "1\n00:00:01,000 --> 00:00:00,500\nNegative.\n\n2\n00:00:00,100 --> 00:00:01,500\nA.\n\n"
        "3\n00:00:00,800 --> 00:00:02,000\nOverlaps A.\n")
    write_srt(subs / "tenthousand.srt", [(i * 0.013, i * 0.013 + 0.011, f"line {i}") for i in range(10_000)])
    write_srt(subs / "bigcue.srt", [(0.1, 1.5, "word " * 390)])  # a 1,950-character cue: the longest read
    write_srt(subs / "hugecue.srt", [(0.1, 1.5, "word " * 10_000)])  # a 50 KB cue: no subtitle is that long
    (subs / "only_tags.srt").write_text("1\n00:00:00,100 --> 00:00:00,900\n<i></i>{\\an8}\n\n2\n00:00:01,000 --> "
                                        "00:00:01,800\n<b> </b>\n")
    (subs / "windows.srt").write_bytes(srt.replace("\n", "\r\n").encode())
    (subs / "oldmac.srt").write_bytes(srt.replace("\n", "\r").encode())
    write_srt(subs / "past_end.srt", [(0.1, 1.0, "In."), (3.5, 6.0, "Clipped."), (5.0, 6.0, "After the end.")])
    return root


def run(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emocli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


# (video, subtitles, model, expected rows or None, phrase in the error line, exit code)
CASES = [
    ("truncated.mp4", "only.srt", "tav", None, "cannot decode", 1),
    ("zero.mp4", "only.srt", "tav", None, "empty file", 1),
    ("text.mp4", "only.srt", "tav", None, "cannot decode", 1),
    ("nostreams.mkv", "only.srt", "tav", None, "no audio or video stream", 1),
    ("noaudio.mp4", "only.srt", "tav", 3, None, 0),
    ("novideo.mp4", "only.srt", "tav", 3, None, 0),
    ("short.mp4", "only.srt", "tav", 1, None, 0),  # 0.2 s: the first cue is clipped, the others start after
    ("good.mp4", "subs/past_end.srt", "tav", 2, None, 0),
    ("good.mp4", "subs/empty.srt", "text", None, "no usable cues", 1),
    ("good.mp4", "subs/binary.srt", "text", None, "binary data", 1),
    ("good.mp4", "subs/utf16_nobom.srt", "text", 2, None, 0),
    ("good.mp4", "subs/cp1252.srt", "text", 2, None, 0),
    ("good.mp4", "subs/bom.srt", "text", 2, None, 0),
    ("good.mp4", "subs/broken_times.srt", "text", 2, None, 0),
    ("good.mp4", "subs/negative_overlap.srt", "text", 2, None, 0),
    ("long.wav", "subs/tenthousand.srt", "text", 10_000, None, 0),
    ("good.mp4", "subs/bigcue.srt", "text", 1, None, 0),
    ("good.mp4", "subs/hugecue.srt", "text", None, "1 longer than 2,000 characters (not a subtitle)", 1),
    ("good.mp4", "subs/only_tags.srt", "text", None, "no usable cues", 1),
    ("good.mp4", "subs/windows.srt", "text", 2, None, 0),
    ("good.mp4", "subs/oldmac.srt", "text", 2, None, 0),
    ("missing.mp4", "only.srt", "text", None, "no such file", 2),
    ("good.mp4", "subs/missing.srt", "text", None, "subtitle file not found", 2),  # a missing path is a usage error
]


@pytest.mark.parametrize("video,subs,model,rows,phrase,code", CASES, ids=[f"{c[0]}+{c[1]}" for c in CASES])
def test_hostile_input(corpus, text_model, trimodal_model, tmp_path, video, subs, model, rows, phrase, code):
    proc = run("annotate", corpus / video, "--subs", corpus / subs, "--model",
               text_model if model == "text" else trimodal_model, "-o", tmp_path, "-q", "-f", "csv")
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / f"{Path(video).stem}.emotions.csv"
    if rows is None:
        errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(errors) == 1 and errors[0].startswith("emocli: error:") and phrase in errors[0], proc.stderr
        assert not out.exists()
    else:
        table = pd.read_csv(out)
        assert len(table) == rows
        assert np.allclose(table[[f"p_{x}" for x in LABELS]].sum(axis=1), 1.0, atol=1e-3)


def test_cp1252_text_survives(corpus, text_model, tmp_path):
    run("annotate", corpus / "good.mp4", "--subs", corpus / "subs/cp1252.srt", "--model", text_model, "-o",
        tmp_path, "-q")
    assert pd.read_csv(tmp_path / "good.emotions.csv")["text"][0] == "Café “déjà vu”…"


# --- the subtitle reader under hypothesis ----------------------------------------------------------------------

@settings(max_examples=2000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_our_error(raw):
    try:
        text = decode_subtitle_bytes(raw).text
        for fmt in (None, "srt", "vtt", "ass"):
            parse_subtitles(text, fmt)
    except EmocliError:
        pass


_word = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="é’?!,."),
                min_size=1, max_size=12)
_cue = st.tuples(st.integers(0, 10_000_000), st.integers(1, 60_000),
                 st.lists(_word, min_size=1, max_size=8).map(" ".join))


def _triples(cues: list[tuple[int, int, str]], unit_ms: int = 1) -> list[tuple[float, float, str]]:
    return [(round(start * unit_ms / 1000, 3), round((start + length) * unit_ms / 1000, 3), text)
            for start, length, text in cues]


def _read_back(path: Path) -> list[tuple]:
    # keep_sound_cues: fidelity of the reader; what counts as speech is tested on its own (a random "x.com" is
    # an address)
    parsed = read_subtitles(path, keep_sound_cues=True)
    assert parsed.unreadable == 0
    return [(c.index, round(c.start_s, 3), round(c.end_s, 3), c.speaker, c.text) for c in parsed.cues]


@settings(max_examples=2000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_cue, min_size=1, max_size=12))
def test_valid_srt_round_trips(tmp_path_factory, cues):
    triples = _triples(cues)
    path = write_srt(tmp_path_factory.getbasetemp() / "roundtrip.srt", triples)
    assert _read_back(path) == [(i, s, e, None, t) for i, (s, e, t) in enumerate(triples, start=1)]


_ident = st.one_of(st.none(), st.integers(0, 10_000).map(str),
                   st.text(alphabet="abcdefghij-_0123456789", min_size=1, max_size=10).filter(
                       lambda x: not x.isdigit()))


@settings(max_examples=500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(_cue, _ident), min_size=1, max_size=12))
def test_valid_webvtt_round_trips_with_identifiers(tmp_path_factory, cues):
    triples = _triples([c for c, _ in cues])
    ids = [i for _, i in cues]
    path = write_vtt(tmp_path_factory.getbasetemp() / "roundtrip.vtt", triples, ids=[i or "" for i in ids])
    expected = [(int(i) if i and i.isdigit() else (i or k), s, e, None, t)
                for k, ((s, e, t), i) in enumerate(zip(triples, ids), start=1)]
    assert _read_back(path) == expected


_name = st.one_of(st.none(), st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1,
                                     max_size=10))


@settings(max_examples=500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.tuples(st.integers(0, 1_000_000), st.integers(1, 6000),
                                    st.lists(_word, min_size=1, max_size=8).map(" ".join)), _name),
                min_size=1, max_size=12))
def test_valid_ass_round_trips_with_names(tmp_path_factory, cues):
    triples = _triples([c for c, _ in cues], unit_ms=10)  # ASS keeps centiseconds
    names = [n for _, n in cues]
    path = write_ass(tmp_path_factory.getbasetemp() / "roundtrip.ass", triples, names=[n or "" for n in names])
    assert _read_back(path) == [(k, s, e, n, t) for k, ((s, e, t), n) in enumerate(zip(triples, names), start=1)]


# --- SIGKILL mid-run, then resume -----------------------------------------------------------------------------

def test_kill_and_resume_gives_the_same_outputs(tmp_path, encoders):
    model = build_checkpoint(tmp_path / "tv", encoders, ["text", "video"])
    folder = tmp_path / "season"
    cues = [(i * 0.5 + 0.05, i * 0.5 + 0.45, f"line {i}, {LABELS[i % 7]}") for i in range(60)]
    make_media(folder / "ep0.mp4", 30.0, audio=None)
    for i in range(8):
        if i:
            (folder / f"ep{i}.mp4").write_bytes((folder / "ep0.mp4").read_bytes())
        write_srt(folder / f"ep{i}.srt", cues)
    args = [sys.executable, "-m", "emocli", "annotate", str(folder), "--model", str(model), "-q", "-f",
            "csv,json,srt", "--batch-size", "4"]
    reference = subprocess.run(args + ["-o", str(tmp_path / "reference")], capture_output=True, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "out"
    proc = subprocess.Popen(args + ["-o", str(out)], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*.emotions.csv"))) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.glob("*.emotions.*"))
    assert 0 < len(finished) < 24, "the run should have been killed part-way"
    for path in out.glob("*.emotions.csv"):
        assert len(pd.read_csv(path)) == 60  # whatever exists is complete

    resumed = subprocess.run(args + ["-o", str(out)], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "reference").iterdir())
    for ref in (tmp_path / "reference").glob("*.csv"):
        a, b = pd.read_csv(ref), pd.read_csv(out / ref.name)
        assert list(a["emotion"]) == list(b["emotion"])
        assert np.allclose(a[[f"p_{x}" for x in LABELS]], b[[f"p_{x}" for x in LABELS]], atol=1e-3)


def _one_error_line(proc: subprocess.CompletedProcess, code: int, phrase: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("emocli: error:") and phrase in lines[0], proc.stderr


def _meld_with(tmp_path: Path, column: str, value) -> Path:
    from conftest import MELD_DIR

    folder = tmp_path / f"meld-{column}"
    folder.mkdir()
    table = pd.read_csv(MELD_DIR / "dev_sent_emo.csv").head(20).astype({column: object})
    table.loc[3, column] = value
    table.to_csv(folder / "dev_sent_emo.csv", index=False)
    return folder


def test_bad_paths_and_values_fail_before_the_work_in_one_line(corpus, text_model, tmp_path):
    """Each of these used to print a traceback, most after the work was done (scoring, training), or, for an
    output that could not be written, nothing at all."""
    from conftest import MELD_DIR

    if not (MELD_DIR / "dev_sent_emo.csv").is_file():
        pytest.skip(f"MELD CSVs not found at {MELD_DIR}")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    video, subs = corpus / "good.mp4", corpus / "only.srt"
    annotate = ("annotate", video, "--subs", subs, "--model", text_model, "-q")
    _one_error_line(run(*annotate, "-o", a_file), 2, "is a file, not a folder")
    _one_error_line(run(*annotate, "-o", a_file / "out"), 2, "cannot create output folder")
    blocked = tmp_path / "blocked"
    (blocked / "good.emotions.csv").mkdir(parents=True)  # the output's name is taken by a folder
    _one_error_line(run(*annotate, "-o", blocked), 1, "cannot write outputs")
    _one_error_line(run(*annotate, "-b", "0"), 2, "--batch-size")  # option errors: one line too, not a box
    _one_error_line(run("annotat", video), 2, "No such command")
    _one_error_line(run("explain", video, "--subs", subs, "-n", "1", "--model", text_model, "-o", tmp_path), 2,
                    "is a folder")
    _one_error_line(run("evaluate", text_model, "--meld", MELD_DIR, "-o", a_file), 2, "is a file, not a folder")
    _one_error_line(run("evaluate", text_model, "--meld", _meld_with(tmp_path, "Dialogue_ID", "abc")), 2,
                    "Dialogue_ID must be a whole number; line 5 has 'abc'")
    _one_error_line(run("evaluate", text_model, "--meld", _meld_with(tmp_path, "Utterance_ID", None)), 2,
                    "Utterance_ID must be a whole number")
    _one_error_line(run("train", "--meld", MELD_DIR, "--out", tmp_path / "run", "--lr", "nan"), 2,
                    "--lr must be a positive number")
    _one_error_line(run("train", "--meld", MELD_DIR, "--out", a_file, "--epochs", "1"), 2, "is a file")
    _one_error_line(run("ensemble", text_model, text_model, "--out", tmp_path / "pair"), 2, "given twice")
    _one_error_line(run("ensemble", text_model, tmp_path / "other", "--out", text_model), 2, "would be overwritten")
    _one_error_line(run("models", tmp_path / "nope"), 2, "no such folder")
    info = run("info", "--model", tmp_path / "nope")  # the report, and a failing exit for scripts
    assert "unusable" in info.stdout
    _one_error_line(info, 2, "model directory not found")
    done = tmp_path / "done"  # a resumed run skips a finished video and clears what a killed run left beside it
    assert run(*annotate, "-o", done).returncode == 0
    stale = done / ".good.emotions.csv.abc123.tmp"
    stale.write_text("half")
    assert run(*annotate, "-o", done).returncode == 0 and not stale.exists()


def test_help_into_a_closed_pipe_is_not_a_traceback():
    """`emocli transcribe --help | head -2` closes the pipe early; that printed three chained tracebacks."""
    proc = subprocess.Popen([sys.executable, "-m", "emocli", "transcribe", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"})
    proc.stdout.read(10)
    proc.stdout.close()  # what `head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1) and "Traceback" not in err, err
