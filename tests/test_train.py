"""train / evaluate: on a slice of the real MELD annotations, and on synthetic MELD clips with all modalities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.cli import app
from emocli.training.meld import load_split, repair_text
from emocli.synth import make_media, write_srt

from conftest import MELD_DIR

runner = CliRunner()
needs_meld = pytest.mark.skipif(not (MELD_DIR / "train_sent_emo.csv").is_file(),
                                reason=f"MELD annotations not found at {MELD_DIR}")


def invoke(*args) -> object:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def test_mojibake_is_repaired_not_dropped():
    assert repair_text("I\u00e2\u0080\u0099m fine") == "I’m fine"
    assert repair_text("Iâ€™m sure") == "I’m sure"
    assert repair_text("Café – “quoted”") == "Café – “quoted”"


@needs_meld
def test_meld_loader_reads_every_split_with_context():
    sizes = {s: len(load_split(MELD_DIR, s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 9989, "dev": 1109, "test": 2610}
    dev = load_split(MELD_DIR, "dev", context=2)
    start = next(i for i in range(len(dev)) if dev[i].dialogue_id == dev[i + 2].dialogue_id)
    first, second, third = dev[start:start + 3]
    assert first.context == "" and second.context == f"{first.speaker}: {first.text}"
    assert third.context.startswith(f"{second.speaker}: {second.text} | ")
    assert all(0 <= u.label < len(LABELS) for u in dev)
    both = load_split(MELD_DIR, "dev", context=1, context_after=1)
    assert both[start].context == f" || {second.speaker}: {second.text}"  # first turn: only what follows
    assert both[start + 1].context == f"{first.speaker}: {first.text} || {third.speaker}: {third.text}"
    last = max(i for i in range(len(both)) if both[i].dialogue_id == both[start].dialogue_id)
    assert " || " not in both[last].context  # nothing follows the dialogue's last turn
    assert {u.sentiment for u in both} == {0, 1, 2}


@needs_meld
def test_train_and_evaluate_on_a_meld_slice_then_annotate(tmp_path, encoders, media_dir, monkeypatch):
    run = tmp_path / "run"
    # the shipped recipe's text options, on a slice
    result = invoke("train", "--meld", MELD_DIR, "--out", run, "--text-encoder", encoders["text"], "--context", "1",
                    "--context-after", "1", "--pooling", "utterance", "--ascii-quotes", "--finetune-layers", "1",
                    "--finetune-embeddings", "--sentiment-weight", "0.5", "--epochs", "2", "--limit-dialogues", "8",
                    "--cache", tmp_path / "cache", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["modalities"] == ["text"] and config["text"]["finetuned"]
    assert (config["text"]["context"], config["text"]["context_after"], config["text"]["pooling"],
            config["text"]["ascii_quotes"]) == (1, 1, "utterance", True)
    stored = load_file(str(run / "model.safetensors"))
    encoder_keys = [k for k in stored if k.startswith("text_encoder.")]
    assert any("embeddings.word_embeddings" in k for k in encoder_keys)  # --finetune-embeddings
    assert any("layer.1." in k for k in encoder_keys) and not any("layer.0." in k for k in encoder_keys)
    assert all(stored[k].dtype == torch.float16 for k in encoder_keys)  # stored at half size
    assert all(v.dtype == torch.float32 for k, v in stored.items() if k.startswith("head."))
    assert not any("sentiment" in k for k in stored)  # the auxiliary head is training-only
    assert 0.0 <= config["provenance"]["dev_weighted_f1"] <= 1.0

    result = invoke("evaluate", run, "--meld", MELD_DIR, "--split", "dev", "--cache", tmp_path / "cache", "-q",
                    "--record")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "eval-dev/metrics.json").read_text())
    recorded = json.loads((run / "config.json").read_text())["provenance"]["dev_metrics"]
    assert recorded["weighted_f1"] == metrics["weighted_f1"]
    assert f"| dev | {metrics['n']} | {metrics['accuracy']:.4f}" in (run / "README.md").read_text()
    # the slice the run was trained on: evaluation rebuilds the same features and gets the same score
    assert metrics["weighted_f1"] == pytest.approx(config["provenance"]["dev_weighted_f1"], abs=1e-4)
    assert set(metrics["per_class"]) == set(LABELS)
    matrix = pd.read_csv(run / "eval-dev/confusion_matrix.csv", index_col=0)
    assert matrix.to_numpy().sum() == metrics["n"]
    assert (run / "eval-dev/confusion_matrix.png").stat().st_size > 10_000

    # what annotate --precision int8 costs is measurable the same way, with features cached apart
    monkeypatch.setenv("EMOCLI_CACHE", str(tmp_path / "emocli-cache"))
    result = invoke("evaluate", run, "--meld", MELD_DIR, "--split", "dev", "--cache", tmp_path / "cache", "-q",
                    "--precision", "int8", "-o", tmp_path / "eval-int8")
    assert result.exit_code == 0, result.output
    assert "encoders in int8" in result.output
    quantized = json.loads((tmp_path / "eval-int8/metrics.json").read_text())
    assert quantized["precision"] == "int8" and quantized["n"] == metrics["n"]
    assert quantized["weighted_f1"] == pytest.approx(metrics["weighted_f1"], abs=0.1)
    assert len(list((tmp_path / "emocli-cache/int8").glob("*.onnx"))) == 1
    assert len(list((tmp_path / "cache").glob("dev-text-*.safetensors"))) == 2  # float32 and int8 features

    subs = write_srt(tmp_path / "s.srt", [(0.5, 2.0, "I hate you!"), (2.5, 4.0, "Oh, that's wonderful news!")])
    result = invoke("annotate", media_dir / "both.mp4", "--subs", subs, "--model", run, "-o", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "both.emotions.csv")) == 2


@needs_meld
def test_same_seed_same_dev_score(tmp_path, encoders):
    scores = []
    for name in ("a", "b"):
        invoke("train", "--meld", MELD_DIR, "--out", tmp_path / name, "--text-encoder", encoders["text"],
               "--epochs", "2", "--limit-dialogues", "6", "--cache", tmp_path / "cache", "--seed", "3",
               "--device", "cpu", "-q")
        scores.append(json.loads((tmp_path / name / "config.json").read_text())["provenance"]["history"])
    assert scores[0] == scores[1]


def synthetic_meld(root: Path, dialogues: int = 3, turns: int = 4) -> Path:
    """A MELD-shaped folder: CSVs for train/dev/test and a clip per utterance (one clip missing, one corrupt)."""
    from emocli.training.meld import SPLITS

    rows = []
    for d in range(dialogues):
        for u in range(turns):
            label = LABELS[(d * turns + u) % len(LABELS)]
            rows.append({"Sr No.": len(rows) + 1, "Utterance": f"utterance {u} of dialogue {d}, feeling {label}",
                         "Speaker": "Ross" if u % 2 else "Rachel", "Emotion": label, "Sentiment": "neutral",
                         "Dialogue_ID": d, "Utterance_ID": u, "Season": 1, "Episode": 1,
                         "StartTime": "00:00:01,000", "EndTime": "00:00:02,000"})
    table = pd.DataFrame(rows)
    template = root / "template.mp4"
    make_media(template, 0.6, size="64x48")
    for split, (csv, clips) in SPLITS.items():
        table.to_csv(root / csv, index=False)
        (root / clips).mkdir(parents=True)
        for row in rows:
            shutil.copy(template, root / clips / f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}.mp4")
        (root / clips / "dia0_utt0.mp4").unlink()  # missing clip: its audio and video are masked
        (root / clips / "dia0_utt1.mp4").write_bytes(b"corrupt")  # unreadable clip: masked too
    return root


def test_trimodal_training_on_synthetic_clips_and_ablations(tmp_path, encoders):
    meld = synthetic_meld(tmp_path / "meld")
    run = tmp_path / "tav"
    result = invoke("train", "--meld", meld, "--out", run, "--modalities", "text,audio,video",
                    "--text-encoder", encoders["text"], "--audio-encoder", encoders["audio"],
                    "--video-encoder", encoders["video"], "--epochs", "2", "--cache", tmp_path / "cache",
                    "--vad", "energy", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    assert "2 of 12 utterances have no usable audio" in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["provenance"]["data"]["modalities_with_data"] == {"text": 12, "audio": 10, "video": 10}

    result = invoke("evaluate", run, "--meld", meld, "--split", "test", "--ablations", "--cache", tmp_path / "cache",
                    "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("| ") and "modalities" not in line]
    assert [line.split("|")[1].strip() for line in table] == [
        "text", "audio", "video", "text+audio", "text+video", "audio+video", "text+audio+video"]
    metrics = json.loads((run / "eval-test/metrics.json").read_text())
    assert len(metrics["ablations"]) == 7 and metrics["n"] == 12

    # an ensemble evaluates through the same path; a model twice over scores exactly as the model alone
    shutil.copytree(run, tmp_path / "copy")  # the same checkpoint twice is refused as a likely mistake
    result = invoke("ensemble", run, tmp_path / "copy", "--out", tmp_path / "twice")
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", tmp_path / "twice", "--meld", meld, "--split", "test", "--ablations", "--cache",
                    tmp_path / "cache", "--vad", "energy", "-q")
    assert result.exit_code == 0 and "an ensemble of 2" in result.output, result.output
    twice = json.loads((tmp_path / "twice/eval-test/metrics.json").read_text())
    assert twice["members"] == 2
    assert twice["ablations"] == metrics["ablations"] and twice["per_class"] == metrics["per_class"]


def test_media_modalities_without_clips_are_refused(tmp_path, encoders):
    (tmp_path / "meld").mkdir()
    pd.DataFrame(columns=["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"]).to_csv(
        tmp_path / "meld/train_sent_emo.csv", index=False)
    result = invoke("train", "--meld", tmp_path / "meld", "--out", tmp_path / "x", "--modalities", "text,audio")
    assert result.exit_code == 2 and "MELD.Raw clip folders" in result.output


def interrupted_in_epoch(epoch: int, real):
    """compute_metrics that raises KeyboardInterrupt (Ctrl-C) in epoch `epoch`'s dev evaluation."""
    calls = {"n": 0}

    def metrics(*args):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt
        return real(*args)

    return metrics


@needs_meld
def test_a_run_stopped_after_epoch_1_and_resumed_gives_the_same_checkpoint(tmp_path, encoders, monkeypatch):
    """train --resume: a run interrupted in epoch 2 (Ctrl-C in its dev evaluation) continues from epoch 1's saved
    state and ends with the same weights and history as the same run uninterrupted (same seed, CPU), fine-tuned
    text layer, optimizer, schedule and dropout included."""
    import emocli.training.train as training

    recipe = ["--text-encoder", encoders["text"], "--context", "1", "--finetune-layers", "1", "--epochs", "3",
              "--patience", "3", "--limit-dialogues", "6", "--seed", "5", "--cache", tmp_path / "cache",
              "--device", "cpu", "-q"]
    result = invoke("train", "--meld", MELD_DIR, "--out", tmp_path / "whole", *recipe)
    assert result.exit_code == 0, result.output

    real = training.compute_metrics
    monkeypatch.setattr(training, "compute_metrics", interrupted_in_epoch(2, real))
    run = tmp_path / "stopped"
    result = invoke("train", "--meld", MELD_DIR, "--out", run, *recipe)
    assert result.exit_code == 130 and f"--resume {run}" in result.output
    assert (run / training.RESUME_FILE).is_file() and not (run / "model.safetensors").exists()
    monkeypatch.setattr(training, "compute_metrics", real)

    bad = invoke("train", "--resume", run, "--epochs", "4")  # the recipe is the run's own
    assert bad.exit_code == 2 and "drop --epochs" in bad.output
    result = invoke("train", "--resume", run, "--device", "cpu", "-q")  # --meld and --cache: the run's own
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "after epoch 1 of 3" in result.output
    assert not (run / training.RESUME_FILE).exists()
    whole, resumed = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert whole.keys() == resumed.keys() and any(k.startswith("text_encoder.") for k in whole)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    provenance = [json.loads((d / "config.json").read_text())["provenance"] for d in (tmp_path / "whole", run)]
    assert provenance[0]["history"] == provenance[1]["history"] and len(provenance[0]["history"]) == 3
    assert provenance[0]["dev_metrics"] == provenance[1]["dev_metrics"]

    done = invoke("train", "--resume", run)
    assert done.exit_code == 2 and "finished run" in done.output
    assert invoke("train", "--meld", MELD_DIR, "--out", tmp_path / "y", "--finish").exit_code == 2
    missing = invoke("train", "--out", tmp_path / "x")
    assert missing.exit_code == 2 and "--meld and --out" in missing.output


@needs_meld
def test_finish_writes_the_best_epoch_so_far_of_an_interrupted_run(tmp_path, encoders, monkeypatch):
    """train --resume RUN --finish: no more epochs; the checkpoint is the best saved epoch's state, and its card
    says where the run ended."""
    import emocli.training.train as training

    real = training.compute_metrics
    monkeypatch.setattr(training, "compute_metrics", interrupted_in_epoch(3, real))
    run = tmp_path / "cut"
    result = invoke("train", "--meld", MELD_DIR, "--out", run, "--text-encoder", encoders["text"], "--context", "1",
                    "--finetune-layers", "1", "--epochs", "4", "--limit-dialogues", "6", "--seed", "3",
                    "--cache", tmp_path / "cache", "--device", "cpu", "-q")
    assert result.exit_code == 130
    monkeypatch.setattr(training, "compute_metrics", real)
    saved = torch.load(run / training.RESUME_FILE, weights_only=False)
    assert saved["epoch"] == 2
    result = invoke("train", "--resume", run, "--finish", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    assert "after epoch 2 of 4" in result.output and not (run / training.RESUME_FILE).exists()
    written = load_file(str(run / "model.safetensors"))
    assert written.keys() == saved["best_state"].keys()
    assert all(torch.equal(written[k], v.half() if k.startswith("text_encoder.") else v)
               for k, v in saved["best_state"].items())
    provenance = json.loads((run / "config.json").read_text())["provenance"]
    assert [h["epoch"] for h in provenance["history"]] == [1, 2]
    assert provenance["dev_metrics"]["epoch"] == saved["best"]["epoch"]
    assert "ended after epoch 2 of 4" in (run / "README.md").read_text()
