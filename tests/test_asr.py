"""Media without subtitles: speech transcribed by the bundled Whisper tiny.en, cut into utterances, labelled.
The speech is tests/fixtures/speech.opus (espeak-ng, made by tools/speech_fixture.py; its truth in speech.json)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jiwer
import pytest

from emocli.text.asr import PAUSE_S, cut_utterances, utterance_batches
from emocli.media.ffmpeg import ffmpeg_exe

FIXTURES = Path(__file__).parent / "fixtures"
TRUTH = json.loads((FIXTURES / "speech.json").read_text())


def mux(out: Path, audio: list[str] | None, seconds: float = 14.0) -> Path:
    """A small gray video with the given audio input (ffmpeg arguments), or none."""
    args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s=64x48:r=10:d={seconds}"]
    args += (audio or []) + ["-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    subprocess.run(args + [str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("asr")
    return {"talk": mux(root / "talk.mp4", ["-i", str(FIXTURES / "speech.opus")]),
            "silent": mux(root / "silent.mp4", ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=8"], 8.0),
            "noise": mux(root / "noise.mp4", ["-f", "lavfi", "-i", "anoisesrc=d=8:c=pink:a=0.3"], 8.0),
            "mute": mux(root / "mute.mp4", None, 4.0)}


def annotate(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emocli", "annotate", *map(str, args), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600, env={"HF_HUB_OFFLINE": "1",
                                                                           "PATH": "/usr/bin:/bin"})


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def words(segments: list[tuple[float, float, str]], no_speech: float = 0.1):
    """Fake faster-whisper segments: one per list of (start, end, word)."""
    return [SimpleNamespace(no_speech_prob=no_speech, end=seg[-1][1] if seg else 0.0,
                            words=[SimpleNamespace(start=s, end=e, word=w, probability=0.9) for s, e, w in seg])
            for seg in segments]


def test_words_are_cut_at_pauses_and_sentence_ends_and_guarded():
    segments = words([[(0.0, 0.4, " Hi"), (0.4, 0.9, " there."), (0.9, 1.3, " How"), (1.3, 1.6, " are"),
                       (1.6 + PAUSE_S, 2.5, " you"), (2.5, 2.9, " doing?")]])
    cut = cut_utterances(segments + words([[(3.0, 3.5, " Thanks")]], no_speech=0.95)
                         + words([[(9.8, 10.5, " late")]]), end_s=10.0)
    assert [(u.start_s, u.end_s, u.text) for u in cut] == [
        (0.0, 0.9, "Hi there."), (0.9, 1.6, "How are"), (2.1, 2.9, "you doing?"), (9.8, 10.0, "late")]
    assert cut[0].confidence == pytest.approx(0.9) and cut[0].no_speech == pytest.approx(0.1)


def test_utterances_stream_out_as_whisper_finishes_segments():
    """Each batch holds the utterances finished by the end of its segment; one that goes on into the next segment
    waits for it, so the batches together are exactly the one-shot cut."""
    segments = words([[(0.0, 0.4, " Hi"), (0.4, 0.9, " there."), (1.0, 1.4, " Where")],
                      [(1.4, 1.8, " are"), (1.8, 2.2, " you?")], [(4.0, 4.5, " Fine"), (4.5, 4.8, " thanks")]])
    for seg, end in zip(segments, (1.4, 2.2, 4.8)):
        seg.end = end
    batches = list(utterance_batches(segments, end_s=10.0))
    assert [([u.text for u in b], reached) for b, reached in batches] == [
        (["Hi there."], 1.4), (["Where are you?"], 2.2), ([], 4.8), (["Fine thanks"], 10.0)]
    assert [u for b, _ in batches for u in b] == cut_utterances(segments, 10.0)


def test_speech_without_subtitles_is_transcribed_and_labelled(media, text_model, tmp_path):
    video = tmp_path / "talk.mp4"
    video.symlink_to(media["talk"])
    proc = annotate(video, "--model", text_model, "-o", tmp_path / "out", "-f", "csv,json")
    assert proc.returncode == 0, proc.stderr
    assert "transcribing talk.mp4" in proc.stderr and "annotating" in proc.stderr  # the two progress bars
    table = rows(tmp_path / "out" / "talk.emotions.csv")
    assert len(table) == len(TRUTH)  # one utterance per spoken line: none merged, none invented
    error = jiwer.wer(" ".join(t for _, _, t in TRUTH).lower(), " ".join(r["text"] for r in table).lower())
    assert error <= 0.35, (error, [r["text"] for r in table])
    for row, (start, end, _) in zip(table, TRUTH):
        assert abs(float(row["start"]) - start) <= 0.5 and float(row["end"]) <= 14.0
        assert row["source"] == "asr" and 0.5 <= float(row["asr_confidence"]) <= 1.0
        assert 0.0 <= float(row["no_speech_prob"]) < 0.8 and row["emotion"]
    doc = json.loads((tmp_path / "out" / "talk.emotions.json").read_text())
    assert doc["model"]["asr_model"] == "tiny.en (bundled)" and doc["subtitles"]["source"] == "asr"
    assert doc["utterances"][0]["source"] == "asr" and "asr_confidence" in doc["utterances"][0]
    transcript = tmp_path / "out" / "talk.transcript.srt"
    assert transcript.read_text().count("-->") == len(TRUTH)

    # a re-run reuses the transcript (here corrected by hand) instead of transcribing again
    transcript.write_text(transcript.read_text().replace(table[0]["text"], "Corrected by hand."))
    (tmp_path / "out" / "talk.emotions.csv").unlink()
    again = annotate(video, "--model", text_model, "-o", tmp_path / "out", "-f", "csv,json")
    assert again.returncode == 0, again.stderr
    assert rows(tmp_path / "out" / "talk.emotions.csv")[0]["text"] == "Corrected by hand."
    assert "transcript reused" in again.stderr


@pytest.mark.parametrize("key", ["silent", "noise"])
def test_silence_and_noise_give_no_utterances_and_a_note(media, text_model, tmp_path, key):
    proc = annotate(media[key], "--model", text_model, "-o", tmp_path, "-f", "csv,json")
    assert proc.returncode == 0, proc.stderr
    assert rows(tmp_path / f"{key}.emotions.csv") == []
    assert "no speech found" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / f"{key}.transcript.srt").read_text().strip() == ""


def test_no_audio_and_never_are_one_line_each_and_a_mixed_folder_goes_on(media, text_model, tmp_path):
    proc = annotate(media["mute"], "--model", text_model, "-o", tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "no audio stream to transcribe" in lines[0]
    never = annotate(media["talk"], "--model", text_model, "-o", tmp_path, "--transcribe", "never")
    assert never.returncode == 1 and "no subtitles found" in never.stderr

    folder = tmp_path / "mixed"
    folder.mkdir()
    for key in ("talk", "mute", "silent"):
        (folder / f"{key}.mp4").symlink_to(media[key])
    (folder / "subbed.mp4").symlink_to(media["talk"])
    (folder / "subbed.srt").write_text("1\n00:00:00,600 --> 00:00:02,700\nFrom the subtitle file.\n")
    run = annotate(folder, "--model", text_model, "-o", tmp_path / "out", "-q")
    assert run.returncode == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.emotions.csv")) == [
        "silent.emotions.csv", "subbed.emotions.csv", "talk.emotions.csv"]
    assert rows(tmp_path / "out" / "subbed.emotions.csv")[0]["source"] == "subtitles"
    assert rows(tmp_path / "out" / "talk.emotions.csv")[0]["source"] == "asr"
    assert not (tmp_path / "out" / "subbed.transcript.srt").exists()


def test_transcribe_writes_only_transcripts_and_goes_on_past_a_bad_file(media, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for key in ("talk", "mute"):
        (folder / f"{key}.mp4").symlink_to(media[key])
    proc = subprocess.run([sys.executable, "-m", "emocli", "transcribe", str(folder), "-o", str(tmp_path / "out"),
                           "-f", "srt,vtt", "--device", "cpu"], capture_output=True, text=True, timeout=600,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["talk.transcript.srt", "talk.transcript.vtt"]
    vtt = (tmp_path / "out" / "talk.transcript.vtt").read_text()
    assert vtt.startswith("WEBVTT") and vtt.count("-->") == len(TRUTH) and "00:00:0" in vtt
    assert "mute.mp4: no audio stream to transcribe" in proc.stderr and "Traceback" not in proc.stderr


def test_the_audio_track_in_the_spoken_language_is_heard(tmp_path, text_model):
    video = tmp_path / "dubbed.mkv"  # a French track of silence first, then the English speech
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10:d=14",
                    "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=14", "-i", str(FIXTURES / "speech.opus"),
                    "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "aac", "-metadata:s:a:0", "language=fre", "-metadata:s:a:1", "language=eng",
                    "-shortest", str(video)], check=True, capture_output=True)
    proc = annotate(video, "--model", text_model, "-o", tmp_path / "en", "-f", "csv,json")
    assert proc.returncode == 0, proc.stderr
    assert len(rows(tmp_path / "en" / "dubbed.emotions.csv")) == len(TRUTH)
    doc = json.loads((tmp_path / "en" / "dubbed.emotions.json").read_text())
    assert doc["subtitles"]["audio_track"].startswith("audio track 1 (stream #0:2, aac, eng")
    french = annotate(video, "--model", text_model, "-o", tmp_path / "fr", "-f", "csv", "--audio-track", "0")
    assert french.returncode == 0 and rows(tmp_path / "fr" / "dubbed.emotions.csv") == []  # silence
    bad = annotate(video, "--model", text_model, "-o", tmp_path / "x", "--audio-track", "de")
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("emocli: error")]
    assert bad.returncode == 2 and len(errors) == 1 and "no audio track in language 'de'" in errors[0]  # usage


def test_labelling_starts_while_the_speech_is_still_being_transcribed(monkeypatch, tmp_path, text_model):
    """A transcript streams through annotate: the model labels the first utterances before the transcriber has
    finished (here a stand-in for the speech model's process waits, after its first batch, for the model's first
    call; waiting for the whole transcript, as annotate did, would time out). The outputs are those of the whole
    transcript."""
    import threading

    import emocli.text.asr as asr
    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.pipeline.predict import BatchPredictor
    from emocli.pipeline.annotate import annotate as run
    from emocli.model.checkpoint import load_model

    labelling = threading.Event()
    waited = []
    real_call = BatchPredictor.__call__

    def call(self, inputs):
        labelling.set()
        return real_call(self, inputs)

    class StandIn(asr.AsrWorker):  # the worker process's answers, without the process
        def __init__(self, *args):
            self.label = None

        def transcribe(self, audio, duration_s):
            self.label = "stand-in"
            yield [asr.AsrUtterance(k, k + 0.8, f"Line number {k}.", 0.9, 0.1) for k in range(8)], 8.0
            waited.append(labelling.wait(timeout=30))
            yield [asr.AsrUtterance(9.0, 9.8, "And the last one.", 0.8, 0.2)], 10.0

        def close(self):
            pass

    monkeypatch.setattr(BatchPredictor, "__call__", call)
    monkeypatch.setattr(asr, "AsrWorker", StandIn)
    video = mux(tmp_path / "talk.mp4", ["-f", "lavfi", "-i", "sine=d=12"], 12.0)
    options = AnnotateOptions(formats=["csv"], output_dir=tmp_path / "out", progress=False, batch_size=1,
                              device="cpu")
    summary = run(find_jobs(video, None, options.output_dir), load_model(text_model), options)
    assert summary.exit_code == 0 and waited == [True]
    table = rows(tmp_path / "out" / "talk.emotions.csv")
    assert [r["text"] for r in table] == [f"Line number {k}." for k in range(8)] + ["And the last one."]
    assert all(r["emotion"] and r["source"] == "asr" for r in table)
    assert summary.outcomes[0].result.model["asr_model"] == "stand-in"
    assert (tmp_path / "out" / "talk.transcript.srt").read_text().count("-->") == 9


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_once_a_transcription_starts_the_rest_of_the_process_yields_the_cpu_to_it():
    script = """
import os, threading
from emocli.pipeline.reading import defer_to_transcription
nice = lambda tid: os.getpriority(os.PRIO_PROCESS, tid)
main, seen = threading.get_native_id(), {}
base = nice(main)
def reader():
    defer_to_transcription()
    seen["reader"] = nice(threading.get_native_id())
thread = threading.Thread(target=reader)
thread.start()
thread.join()
later = threading.Thread(target=lambda: seen.update(later=nice(threading.get_native_id())))
later.start()
later.join()
print(nice(main) - base, seen["reader"] - base, seen["later"] - base)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lowered, reader, later = map(int, proc.stdout.split())
    base = int(subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"], capture_output=True,
                              text=True).stdout)
    assert reader == 0 and lowered == later == min(10, 19 - base) and lowered > 0  # threads started later inherit it
