"""End to end: the CLI on synthetic media with tiny random-weight encoders; every format read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pysrt
import pytest
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.cli import app
from emocli.text.subtitles import read_subtitles
from emocli.synth import make_media, write_srt

from conftest import SIX_CUES, season

runner = CliRunner()
CSV_COLUMNS = (["index", "turn", "start", "end", "speaker", "text", "emotion", "confidence"]
               + [f"p_{x}" for x in LABELS] + ["non_speech", "source", "asr_confidence", "no_speech_prob"])


def run_cli(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def annotate(video: Path, model: Path, out: Path, *extra: str):
    return run_cli("annotate", video, "--model", model, "-o", out, "--device", "cpu", "-q", *extra)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_trimodal_every_format_round_trips(media_dir, trimodal_model, six_cue_srt, tmp_path):
    result = annotate(media_dir / "both.mp4", trimodal_model, tmp_path, "--subs", six_cue_srt, "-f", "all",
                      "--vad", "energy")
    assert result.exit_code == 0, result.output
    stem = tmp_path / "both.emotions"

    table = pd.read_csv(f"{stem}.csv")
    assert list(table.columns) == CSV_COLUMNS
    assert len(table) == len(SIX_CUES)
    assert np.allclose(table[[f"p_{x}" for x in LABELS]].sum(axis=1), 1.0, atol=1e-3)
    assert set(table["emotion"]) <= set(LABELS)
    assert np.allclose(table["start"], [c[0] for c in SIX_CUES]) and np.allclose(table["end"], [c[1] for c in SIX_CUES])
    assert table.loc[1, "speaker"] == "JOEY" and table.loc[1, "text"] == "How you doin'?"
    assert table.loc[2, "text"] == "Oh my God."  # tags stripped

    doc = read_json(Path(f"{stem}.json"))
    assert doc["duration"] == pytest.approx(6.0, abs=0.1)
    assert doc["model"]["modalities"] == ["text", "audio", "video"]
    assert len(doc["utterances"]) == len(SIX_CUES)
    for utt in doc["utterances"]:
        assert sum(utt["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert utt["emotion"] == max(utt["probabilities"], key=utt["probabilities"].get)
        assert utt["modalities"] == ["text", "audio", "video"]  # sine tone is loud: energy VAD keeps audio

    srt = pysrt.open(f"{stem}.srt")
    assert len(srt) == len(SIX_CUES)
    for item, (start, end, _), row in zip(srt, SIX_CUES, table.itertuples()):
        assert item.start.ordinal == round(start * 1000) and item.end.ordinal == round(end * 1000)
        assert item.text.startswith(f"[{row.emotion} {row.confidence:.2f}] ")

    vtt = read_subtitles(f"{stem}.vtt", keep_sound_cues=True)  # its labels read as bracketed sound otherwise
    assert vtt.unreadable == 0 and len(vtt.cues) == len(SIX_CUES)
    assert vtt.cues[0].text.startswith("[") and [c.index for c in vtt.cues] == list(range(1, 7))


def test_vtt_output_escapes_cue_text_and_reads_back(tmp_path):
    """WebVTT cue text may not hold a raw & or <, and --> ends a cue: they are written as entities, and emocli
    (like any WebVTT reader) reads the same text back."""
    from emocli.outputs.result import Prediction, VideoResult
    from emocli.outputs.writers import VttWriter

    texts = ["Tom & Jerry <3", "He said --> go", "1 < 2 & 3 > 0", "x<y>z"]
    probs = np.eye(len(LABELS))[4]
    preds = [Prediction(k + 1, 2.0 * k, 2.0 * k + 1.5, t, None, probs, ["text"]) for k, t in enumerate(texts)]
    path = VttWriter().write(VideoResult(Path("v.mp4"), 10.0, {}, preds), tmp_path)
    body = path.read_text(encoding="utf-8").split("\n", 1)[1]
    assert "&amp;" in body and "&lt;3" in body and "--&gt; go" in body
    assert body.count("-->") == len(texts) and " < " not in body and " & " not in body
    back = read_subtitles(path, keep_sound_cues=True)
    assert back.unreadable == 0 and [c.text for c in back.cues] == [f"[neutral 1.00] {t}" for t in texts]


def test_folder_finds_subtitles_in_any_case_and_skips_hidden_files(tmp_path):
    from emocli.pipeline.jobs import find_jobs

    for name in ("a.mp4", "a.Srt", "b.MKV", "b.vtt", "c.mp4", "._a.mp4", ".hidden.mp4", ".hidden.srt"):
        (tmp_path / name).write_bytes(b"")
    jobs = {job.video.name: job.subs.name if job.subs else None for job in find_jobs(tmp_path)}
    assert jobs == {"a.mp4": "a.Srt", "b.MKV": "b.vtt", "c.mp4": None}


def test_same_input_gives_same_output(media_dir, trimodal_model, six_cue_srt, tmp_path):
    for out in ("a", "b"):
        assert annotate(media_dir / "both.mp4", trimodal_model, tmp_path / out, "--subs", six_cue_srt,
                        "--vad", "energy").exit_code == 0
    assert (tmp_path / "a/both.emotions.csv").read_text() == (tmp_path / "b/both.emotions.csv").read_text()


@pytest.mark.parametrize("name,atol", [
    ("noaudio.mp4", 1e-4),  # text and video: padding is masked, batches agree to float noise
    # Wav2Vec2-base normalises its first conv layer over the whole padded input (group norm), so zero padding
    # moves its vectors slightly; sorting batches by length keeps that small.
    ("both.mp4", 1e-2),
])
def test_batch_size_does_not_change_results(media_dir, trimodal_model, six_cue_srt, tmp_path, name, atol):
    for bs in ("1", "5"):
        assert annotate(media_dir / name, trimodal_model, tmp_path / bs, "--subs", six_cue_srt,
                        "--batch-size", bs, "--vad", "energy", "--precision", "fp32").exit_code == 0
    stem = Path(name).stem
    a = pd.read_csv(tmp_path / f"1/{stem}.emotions.csv")
    b = pd.read_csv(tmp_path / f"5/{stem}.emotions.csv")
    assert np.allclose(a[[f"p_{x}" for x in LABELS]], b[[f"p_{x}" for x in LABELS]], atol=atol)


@pytest.mark.parametrize("name,vad,expected", [
    ("noaudio.mp4", "silero", ["text", "video"]),  # no audio stream: audio masked
    ("silent.mp4", "silero", ["text", "video"]),  # silent track: silero finds no voice
    ("silent.mp4", "energy", ["text", "video"]),
    ("audioonly.wav", "energy", ["text", "audio"]),  # no video stream: video masked
])
def test_missing_or_silent_modality_is_masked(media_dir, trimodal_model, six_cue_srt, tmp_path, name, vad,
                                              expected):
    result = annotate(media_dir / name, trimodal_model, tmp_path, "--subs", six_cue_srt, "-f", "json",
                      "--vad", vad)
    assert result.exit_code == 0, result.output
    doc = read_json(tmp_path / f"{Path(name).stem}.emotions.json")
    assert len(doc["utterances"]) == len(SIX_CUES)
    assert all(u["modalities"] == expected for u in doc["utterances"])
    assert all(sum(u["probabilities"].values()) == pytest.approx(1.0, abs=1e-3) for u in doc["utterances"])


BAD_SRT = """1
00:00:00,500 --> 00:00:01,500
Fine cue.

2
00:00:02,000 --> 00:00:02,000
Zero length.

3
00:00:03,000 --> 00:00:02,500
Negative length.

4
00:00:01,200 --> 00:00:02,200
Overlaps the first one.

5
00:00:04,000 --> 00:00:04,800
<i></i>

6
00:00:05,500 --> 00:00:07,000
Runs past the end (clipped).

7
00:00:03,500 --> 00:00:04,500
Out of order.

8
00:00:09,000 --> 00:00:10,000
Starts after the end.

9
00:00:xx,000 --> 00:00:05,000
Broken timestamp.
"""


def test_bad_cues_are_counted_not_fatal(media_dir, trimodal_model, tmp_path):
    subs = tmp_path / "bad.srt"
    subs.write_text(BAD_SRT, encoding="utf-8")
    result = annotate(media_dir / "both.mp4", trimodal_model, tmp_path, "--subs", subs, "-f", "csv,srt",
                      "--vad", "none")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "both.emotions.csv")
    assert list(table["index"]) == [1, 4, 7, 6]  # sorted by start; bad ones skipped
    assert table["end"].max() == pytest.approx(7.0)  # decoded up to the media's end, written as in the file
    shown = pysrt.open(tmp_path / "both.emotions.srt")
    assert len(shown) == 4 and str(shown[-1].end) == "00:00:07,000"
    warning = [line for line in result.output.splitlines() if line.startswith("emocli: warning:")]
    assert len(warning) == 1
    for phrase in ("5 of 9 cues skipped", "1 empty", "2 zero or negative length", "1 past the end",
                   "1 with unreadable timing", "overlapping", "out of order", "clipped"):
        assert phrase in warning[0]


def make_folder(root: Path) -> Path:
    folder = root / "season"
    folder.mkdir()
    for name in ("ep1", "ep2"):
        make_media(folder / f"{name}.mp4", 4.0)
        write_srt(folder / f"{name}.srt", SIX_CUES[:3])
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    write_srt(folder / "corrupt.srt", SIX_CUES[:3])
    make_media(folder / "nosubs.mp4", 2.0)
    return folder


def test_folder_mode_reports_failures_and_resumes(trimodal_model, tmp_path):
    folder = make_folder(tmp_path)  # nosubs.mp4 fails here: --transcribe never (its sine tone holds no speech)
    out = tmp_path / "out"
    result = annotate(folder, trimodal_model, out, "-f", "csv,json", "--transcribe", "never")
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["ep1.emotions.csv", "ep1.emotions.json",
                                                      "ep2.emotions.csv", "ep2.emotions.json"]
    assert "4 video(s): 2 annotated, 0 already done (skipped), 2 failed" in result.output
    assert "corrupt.mp4" in result.output and "no subtitles found" in result.output
    assert "Traceback" not in result.output
    assert len(pd.read_csv(out / "ep1.emotions.csv")) == 3

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = annotate(folder, trimodal_model, out, "-f", "csv,json", "--transcribe", "never")
    assert again.exit_code == 1
    assert "2 already done (skipped)" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    (out / "ep2.emotions.json").unlink()  # an interrupted run: one format missing -> that video is redone
    third = annotate(folder, trimodal_model, out, "-f", "csv,json", "--transcribe", "never")
    assert "1 annotated, 1 already done" in third.output
    assert (out / "ep2.emotions.json").is_file()

    forced = annotate(folder, trimodal_model, out, "-f", "csv,json", "--overwrite", "--transcribe", "never")
    assert "2 annotated, 0 already done" in forced.output
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_folder_outputs_are_written_as_videos_finish(media_dir, trimodal_model, tmp_path, monkeypatch):
    """Batches mix videos and are sorted by length, but a video's last cues must not wait for the end of the run:
    outputs are written as videos finish, so an interrupted season keeps them (picking the leftovers of each
    window by length once held back every video's longest cues, and so all outputs, until the run ended)."""
    import queue
    import types

    import emocli.pipeline.annotate as annotate_module
    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.model.checkpoint import load_model
    from emocli.pipeline.annotate import annotate as annotate_jobs

    events: list[str] = []

    class Recorded(queue.Queue):
        def get(self, *args, **kwargs):
            message = super().get(*args, **kwargs)
            if message is None:
                events.append("run over")
            return message

    real_write = annotate_module.write_outputs

    def write(result, *args, **kwargs):
        events.append(result.video.name)
        return real_write(result, *args, **kwargs)

    monkeypatch.setattr(annotate_module, "queue", types.SimpleNamespace(Queue=Recorded, Full=queue.Full))
    monkeypatch.setattr(annotate_module, "write_outputs", write)
    model = load_model(trimodal_model)
    folder = season(media_dir, tmp_path / "season", 8)
    write_srt(folder / "ep0.srt", [(0.1, 5.9, "The longest cue of the run.")] + SIX_CUES[1:])
    # batches of 5 in windows of 20: with 6 cues a video, 4 cues are left over after the fourth video's and 2
    # after the seventh's; the first video's long cue must not be one of them
    options = AnnotateOptions(formats=["csv"], output_dir=tmp_path / "out", progress=False, batch_size=5,
                              vad="energy")
    summary = annotate_jobs(find_jobs(folder, None, options.output_dir), model, options)
    assert [o.status for o in summary.outcomes] == ["done"] * 8
    assert len(events) == 9 and events.index("ep0.mp4") < events.index("run over")
    assert events.index("run over") >= 6  # the run wrote six of its eight videos while it went on


def test_videos_of_one_stem_get_outputs_of_their_own(trimodal_model, tmp_path):
    """ep1.mp4 beside ep1.mkv (an original and its transcode) share ep1.srt; each gets its own outputs, and
    resuming does not take one for the other (they used to write, and then skip, the same ep1.emotions.csv)."""
    folder = tmp_path / "season"
    folder.mkdir()
    make_media(folder / "ep1.mp4", 4.0)
    make_media(folder / "ep1.mkv", 3.0)
    make_media(folder / "ep2.mp4", 4.0)
    for name in ("ep1", "ep2"):
        write_srt(folder / f"{name}.srt", SIX_CUES[:3])
    out = tmp_path / "out"
    result = annotate(folder, trimodal_model, out, "-f", "csv,json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "ep1.mkv.emotions.csv", "ep1.mkv.emotions.json", "ep1.mp4.emotions.csv", "ep1.mp4.emotions.json",
        "ep2.emotions.csv", "ep2.emotions.json"]
    assert read_json(out / "ep1.mkv.emotions.json")["duration"] == pytest.approx(3.0, abs=0.1)
    assert read_json(out / "ep1.mp4.emotions.json")["duration"] == pytest.approx(4.0, abs=0.1)
    again = annotate(folder, trimodal_model, out, "-f", "csv,json")
    assert "0 annotated, 3 already done" in again.output


def cli_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMOCLI_MODEL": os.environ.get("EMOCLI_MODEL_TEST", "")}
    return subprocess.run([sys.executable, "-m", "emocli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_one_clean_error(proc: subprocess.CompletedProcess, phrase: str) -> None:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("emocli: error:") and phrase in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_video_is_one_clean_line(tmp_path, trimodal_model):
    proc = cli_subprocess("annotate", "missing.mp4", "--model", trimodal_model, cwd=tmp_path)
    assert_one_clean_error(proc, "missing.mp4")
    assert proc.returncode == 2


def test_corrupt_video_is_one_clean_line(tmp_path, trimodal_model, six_cue_srt):
    (tmp_path / "corrupt.mp4").write_bytes(b"this is not a video at all\n" * 100)
    shutil.copy(six_cue_srt, tmp_path / "ok.srt")
    proc = cli_subprocess("annotate", "corrupt.mp4", "--subs", "ok.srt", "--model", trimodal_model, "-q",
                          cwd=tmp_path)
    assert_one_clean_error(proc, "corrupt.mp4")
    assert proc.returncode == 1
    assert not list(tmp_path.glob("*.emotions.*"))


def test_no_model_installed_says_how_to_get_one(tmp_path, monkeypatch, media_dir, six_cue_srt):
    import emocli.model.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "WEIGHTS_DIR", tmp_path / "empty")
    monkeypatch.delenv("EMOCLI_MODEL", raising=False)
    result = runner.invoke(app, ["annotate", str(media_dir / "both.mp4"), "--subs", str(six_cue_srt)])
    assert result.exit_code == 2
    assert "no emotion model is installed" in result.output and "--model" in result.output


def test_python_api_returns_predictions(media_dir, trimodal_model, six_cue_srt):
    from emocli import annotate as annotate_files
    from emocli.model.checkpoint import load_model

    model = load_model(trimodal_model)
    result = annotate_files(media_dir / "both.mp4", six_cue_srt, model=model, vad="energy")[0]
    assert [p.index for p in result.predictions] == [1, 2, 3, 4, 5, 6]
    assert all(abs(p.probabilities.sum() - 1) < 1e-4 for p in result.predictions)


def test_info_lists_ffmpeg_and_model(trimodal_model):
    result = run_cli("info", "--model", trimodal_model, "--json")
    data = json.loads(result.output)
    assert data["ffmpeg"] and "not found" not in data["ffmpeg"]
    assert data["model"]["modalities"] == ["text", "audio", "video"]
    assert data["device"] in ("cpu", "cuda")
    assert data["onnxruntime"].endswith("(for --precision int8)")  # a core dependency


def test_parallel_chunk_decoding_matches_serial(media_dir, trimodal_model, six_cue_srt, monkeypatch):
    """Several segments decoding at once (each its own ffmpeg passes, chunks interleaving) give the same inputs as
    one pass over the whole video."""
    import emocli.pipeline.decode as decode_mod
    from emocli import annotate as annotate_files
    from emocli.model.checkpoint import load_model

    monkeypatch.setattr(decode_mod, "CHUNK_MAX_CUES", 2)  # six cues -> three chunks
    monkeypatch.setattr(decode_mod, "SEGMENT_MIN_S", 1.0)  # a 6-second video -> three segments with 3 workers
    model = load_model(trimodal_model)
    runs = {}
    for workers in (1, 3):
        result = annotate_files(media_dir / "both.mp4", six_cue_srt, model=model, batch_size=1,
                                decode_workers=workers)[0]
        runs[workers] = result.predictions
    assert [p.index for p in runs[3]] == [p.index for p in runs[1]] == [1, 2, 3, 4, 5, 6]
    assert np.allclose(np.stack([p.probabilities for p in runs[1]]),
                       np.stack([p.probabilities for p in runs[3]]), atol=1e-6)


def test_precision_bf16_stays_close_to_fp32_and_is_recorded(media_dir, trimodal_model, six_cue_srt):
    import torch

    from emocli.device import amp_dtype, cpu_has_native_bf16
    from emocli import annotate as annotate_files
    from emocli.model.checkpoint import load_model

    assert amp_dtype(torch.device("cpu"), "auto") == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert amp_dtype(torch.device("cpu"), "fp32") is None
    model = load_model(trimodal_model)
    probs = {}
    for precision in ("fp32", "bf16"):
        result = annotate_files(media_dir / "both.mp4", six_cue_srt, model=model, vad="energy",
                                precision=precision)[0]
        assert result.model["precision"] == {"fp32": "float32", "bf16": "bfloat16"}[precision]
        probs[precision] = np.stack([p.probabilities for p in result.predictions])
    assert np.allclose(probs["fp32"], probs["bf16"], atol=0.05)
    assert not np.array_equal(probs["fp32"], probs["bf16"])  # bf16 really ran


def test_out_of_memory_halves_the_batch_and_keeps_every_result(trimodal_model, monkeypatch):
    import torch

    from emocli.pipeline.predict import BatchPredictor
    from emocli.model.checkpoint import load_model
    from emocli.model.network import UtteranceInput

    model = load_model(trimodal_model)
    items = [UtteranceInput(text=f"line {i}, said loudly" * (i % 3 + 1)) for i in range(7)]
    expected, _ = BatchPredictor(model, 1, "fp32")(items)
    real_predict, sizes = model.predict, []

    def predict(batch, amp=None):  # a GPU that holds at most 2 utterances at once
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_predict(batch, amp)

    monkeypatch.setattr(model, "predict", predict)
    predictor = BatchPredictor(model, 8, "fp32")
    probs, _ = predictor(items)
    assert predictor.batch_size == 2 and sizes[:3] == [7, 4, 2]
    assert np.allclose(probs, expected, atol=1e-5)
