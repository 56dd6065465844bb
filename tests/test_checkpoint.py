"""Checkpoints: save/load round trip, and clear refusals of mismatched, truncated or foreign files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from emocli.model.checkpoint import load_checkpoint, read_config
from emocli.errors import UsageError
from emocli.model.network import UtteranceInput

from conftest import build_checkpoint


@pytest.fixture
def ckpt(tmp_path, encoders):
    return build_checkpoint(tmp_path / "ckpt", encoders, ["text", "audio"], context=1)


def test_round_trip_gives_the_same_predictions(ckpt, tmp_path):
    model = load_checkpoint(ckpt)
    inputs = [UtteranceInput("Oh my God!", "Ross: hi", np.sin(np.arange(16000) / 5).astype(np.float32) * 0.2,
                             np.ones(16000, bool)), UtteranceInput("Fine.")]
    first, _, present = model.predict(inputs)
    again, _, _ = load_checkpoint(ckpt).predict(inputs)
    assert np.allclose(first, again) and np.allclose(first.sum(1), 1.0, atol=1e-5)
    assert present.tolist() == [[True, True], [True, False]]  # no audio given for the second utterance
    assert read_config(ckpt).text.context == 1


def edit_config(ckpt, **changes):
    data = json.loads((ckpt / "config.json").read_text())
    data.update(changes)
    (ckpt / "config.json").write_text(json.dumps(data))


@pytest.mark.parametrize("change,phrase", [
    ({"format_version": 99}, "format version 99 is not supported"),
    ({"labels": ["happy", "sad"]}, "labels"),
    ({"modalities": ["smell"]}, "modalities must be"),
    ({"fusion": {"hidden": 64}}, "does not match config.json"),
])
def test_config_problems_are_refused_clearly(ckpt, change, phrase):
    edit_config(ckpt, **change)
    with pytest.raises(UsageError, match=phrase):
        load_checkpoint(ckpt)


def test_truncated_weights_are_refused(ckpt):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        load_checkpoint(ckpt)


def test_pickle_or_foreign_weights_are_refused(ckpt, tmp_path):
    torch.save({"head.x": torch.zeros(1)}, ckpt / "model.safetensors")  # a pickle under the safetensors name
    with pytest.raises(UsageError, match="truncated or corrupt"):
        load_checkpoint(ckpt)
    save_file({"head.unknown": torch.zeros(3)}, str(ckpt / "model.safetensors"))
    with pytest.raises(UsageError, match="does not match"):
        load_checkpoint(ckpt)


def test_missing_pieces(ckpt, tmp_path):
    with pytest.raises(UsageError, match="model directory not found"):
        load_checkpoint(tmp_path / "nope")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(UsageError, match="has no model.safetensors"):
        load_checkpoint(ckpt)
    shutil.rmtree(ckpt)
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{broken")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_checkpoint(ckpt)


def finetuned_checkpoint(directory, encoders, seed):
    """A text+audio checkpoint whose text encoder weights were changed (as fine-tuning would) and are stored."""
    from emocli.model.checkpoint import save_checkpoint
    from emocli.model.network import EmotionModel, FusionConfig, make_config

    config = make_config(["text", "audio"], encoders["text"], encoders["audio"],
                         fusion=FusionConfig(hidden=16, heads=2, lstm_hidden=8, frame_heads=2))
    config.text.finetuned = True
    torch.manual_seed(seed)
    model = EmotionModel(config)
    for p in model.encoders["text"].model.parameters():
        p.requires_grad_(True)
        p.data += 0.05 * torch.randn_like(p)
    return save_checkpoint(model, directory)


def test_an_ensemble_averages_its_members(tmp_path, encoders):
    from emocli.model.checkpoint import save_ensemble
    from emocli.model.network import EnsembleModel

    runs = [finetuned_checkpoint(tmp_path / f"seed{s}", encoders, s) for s in (0, 1)]
    out = save_ensemble(runs, tmp_path / "ensemble", notes=["two seeds"])
    model = load_checkpoint(out)
    assert isinstance(model, EnsembleModel) and len(model.members) == 2 and read_config(out).members == 2
    first, second = model.members
    assert first.encoders["audio"] is second.encoders["audio"]  # frozen encoders are loaded once
    assert first.encoders["text"] is not second.encoders["text"]  # each member's fine-tuned text encoder
    inputs = [UtteranceInput("Oh my God!", "", np.sin(np.arange(16000) / 5).astype(np.float32) * 0.2,
                             np.ones(16000, bool)), UtteranceInput("Fine.")]
    singles = [load_checkpoint(r).predict(inputs) for r in runs]
    assert not np.allclose(singles[0][0], singles[1][0], atol=1e-3)  # the members do differ
    probs, attention, present = model.predict(inputs)
    assert np.allclose(probs, (singles[0][0] + singles[1][0]) / 2, atol=1e-5)
    assert np.allclose(attention["text"], (singles[0][1]["text"] + singles[1][1]["text"]) / 2, atol=1e-5)
    assert present.tolist() == [[True, True], [True, False]]
    card = (out / "README.md").read_text()
    assert "## Ensemble" in card and "two seeds" in card


def test_ensembles_of_different_configs_are_refused(tmp_path, encoders):
    from emocli.model.checkpoint import save_ensemble

    a = build_checkpoint(tmp_path / "a", encoders, ["text", "audio"])
    b = build_checkpoint(tmp_path / "b", encoders, ["text"])
    with pytest.raises(UsageError, match="differ in .*modalities"):
        save_ensemble([a, b], tmp_path / "e")
    with pytest.raises(UsageError, match="at least two"):
        save_ensemble([a], tmp_path / "e")
    pair = save_ensemble([a, build_checkpoint(tmp_path / "c", encoders, ["text", "audio"], seed=1)], tmp_path / "e")
    with pytest.raises(UsageError, match="already an ensemble"):
        save_ensemble([pair, a], tmp_path / "f")
    edit_config(pair, members=3)
    with pytest.raises(UsageError, match="no weights for member 2 of 3"):
        load_checkpoint(pair)


@pytest.fixture(scope="module")
def other_text_encoder(tmp_path_factory) -> str:
    """A second tiny text encoder (other random weights), standing in for a different encoder such as mpnet."""
    from emocli.synth import make_encoders

    return make_encoders(tmp_path_factory.mktemp("other-encoders"), "tiny", seed=1)["text"]


def text_checkpoint(directory, text_encoder, seed, context=2):
    from emocli.model.checkpoint import save_checkpoint
    from emocli.model.network import EmotionModel, FusionConfig, make_config

    config = make_config(["text"], text_encoder, context=context, context_after=1,
                         fusion=FusionConfig(hidden=16, heads=2, lstm_hidden=8, frame_heads=2))
    torch.manual_seed(seed)
    return save_checkpoint(EmotionModel(config), directory)


@pytest.fixture
def shipped(tmp_path, encoders, other_text_encoder):
    """weights/: a MiniLM-like pair (ensemble) and a `large` blend of another encoder's checkpoint with it."""
    from emocli.model.checkpoint import save_blend, save_ensemble

    weights = tmp_path / "weights"
    pair = save_ensemble([text_checkpoint(tmp_path / f"seed{s}", encoders["text"], s) for s in (0, 1)],
                         weights / "default")
    big = text_checkpoint(tmp_path / "big", other_text_encoder, 5)
    large = save_blend([big, pair], [3, 2], weights / "large", notes=["weights chosen on dev"])
    return weights, big, pair, large


INPUTS = [UtteranceInput("Oh my God!", "Ross: hi"), UtteranceInput("Fine.", "Oh my God! Fine."),
          UtteranceInput("Get out!")]


def test_a_blend_averages_its_parts_with_its_weights(shipped):
    from emocli.model.network import BlendModel

    weights, big, pair, large = shipped
    config = read_config(large)
    assert config.blend == [{"checkpoint": ".", "weight": 0.6}, {"checkpoint": "../default", "weight": 0.4}]
    assert (large / "model.safetensors").read_bytes() == (big / "model.safetensors").read_bytes()
    model = load_checkpoint(large)
    assert isinstance(model, BlendModel) and [p.resolve() for p in model.part_dirs] == [large.resolve(),
                                                                                           pair.resolve()]
    parts = [load_checkpoint(d).predict(INPUTS)[0] for d in (big, pair)]
    assert not np.allclose(parts[0], parts[1], atol=1e-3)
    probs, attention, present = model.predict(INPUTS)
    assert np.allclose(probs, 0.6 * parts[0] + 0.4 * parts[1], atol=1e-5)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and present.all()
    card = (large / "README.md").read_text()
    assert "## Blend" in card and "`../default` | 0.400" in card and "weights chosen on dev" in card
    # the folder of shipped models moves as a whole: the relative reference still holds
    moved = shutil.move(str(weights), str(weights.parent / "elsewhere"))
    assert np.allclose(load_checkpoint(f"{moved}/large").predict(INPUTS)[0], probs, atol=1e-6)
    shutil.rmtree(f"{moved}/default")
    with pytest.raises(UsageError, match="blends in .*default, which is not an emocli checkpoint"):
        load_checkpoint(f"{moved}/large")


def write_meld_split(folder: Path, split: str, labels: list[int]) -> None:
    """A MELD-shaped CSV whose utterance i has label labels[i] (4 utterances per dialogue)."""
    import pandas as pd

    from emocli.labels import LABELS

    rows = [{"Sr No.": i + 1, "Utterance": f"line {i} {LABELS[y]}", "Speaker": "Ross" if i % 2 else "Monica",
             "Emotion": LABELS[y], "Sentiment": "neutral", "Dialogue_ID": i // 4, "Utterance_ID": i % 4,
             "Season": 1, "Episode": 1, "StartTime": "00:00:01,000", "EndTime": "00:00:02,000"}
            for i, y in enumerate(labels)]
    pd.DataFrame(rows).to_csv(folder / f"{split}_sent_emo.csv", index=False)


def test_evaluate_scores_a_blend_as_the_weighted_mean_of_its_parts(shipped, tmp_path):
    from emocli.training.evaluate import split_predictor

    write_meld_split(tmp_path, "dev", [i % 7 for i in range(10)])
    _, big, pair, large = shipped
    got = {}
    for d in (big, pair, large):
        predict, present, labels = split_predictor(load_checkpoint(d), d, tmp_path, "dev", tmp_path / "cache",
                                                   progress=False, log=lambda _: None)
        got[d.name] = predict(present).numpy()
    assert labels.tolist() == [i % 7 for i in range(10)]
    assert np.allclose(got["large"], 0.6 * got["big"] + 0.4 * got["default"], atol=1e-5)


def test_a_prior_shift_moves_a_blend_towards_the_training_frequencies(shipped, tmp_path):
    from emocli.cli import app
    from emocli.training.evaluate import split_predictor
    from typer.testing import CliRunner

    weights, big, pair, large = shipped
    train = [4] * 40 + [3] * 10 + [0] * 5 + [1, 2, 5, 6, 6]  # neutral 40, joy 10, anger 5, the others 1-2
    write_meld_split(tmp_path, "train", train)
    write_meld_split(tmp_path, "dev", [i % 7 for i in range(10)])
    out = weights / "shifted"
    run = CliRunner().invoke(app, ["blend", str(big), str(pair), "--weights", "3,2", "--out", str(out),
                                   "--prior-shift", "0.5", "--meld", str(tmp_path)])
    assert run.exit_code == 0, run.output
    counts = np.bincount(train, minlength=7)
    log_prior = np.log(counts / counts.sum())
    bias = np.array(read_config(out).class_bias)
    assert np.allclose(bias, 0.5 * (log_prior - log_prior.mean()), atol=1e-5) and bias.argmax() == 4
    # the shift is applied after the weighted average, in annotate's path and in evaluate's alike
    plain = load_checkpoint(large).predict(INPUTS)[0]
    expected = np.exp(np.log(plain) + bias)
    expected /= expected.sum(1, keepdims=True)
    probs = load_checkpoint(out).predict(INPUTS)[0]
    assert np.allclose(probs, expected, atol=1e-5) and not np.allclose(probs, plain, atol=1e-3)
    assert (probs[:, 4] > plain[:, 4]).all() and (probs[:, 2] < plain[:, 2]).all()  # neutral up, fear down
    got = {}
    for d in (large, out):
        predict, present, _ = split_predictor(load_checkpoint(d), d, tmp_path, "dev", tmp_path / "cache",
                                              progress=False, log=lambda _: None)
        got[d.name] = predict(present).numpy()
    shifted = np.exp(np.log(got["large"]) + bias)
    assert np.allclose(got["shifted"], shifted / shifted.sum(1, keepdims=True), atol=1e-5)
    card = (out / "README.md").read_text()
    assert "Prior shift: alpha 0.5" in card and "neutral +" in card
    assert read_config(out).provenance["prior_shift"]["train_counts"]["neutral"] == 40
    # refused in one line each: no MELD for the frequencies, a negative alpha, a bias on a plain checkpoint
    no_meld = CliRunner().invoke(app, ["blend", str(big), str(pair), "--out", str(tmp_path / "b"),
                                       "--prior-shift", "0.5"])
    assert no_meld.exit_code == 2 and "--prior-shift needs --meld" in no_meld.output
    assert not (tmp_path / "b").exists()
    negative = CliRunner().invoke(app, ["blend", str(big), str(pair), "--out", str(tmp_path / "b"),
                                        "--prior-shift", "-1", "--meld", str(tmp_path)])
    assert negative.exit_code == 2 and not (tmp_path / "b").exists()
    edit_config(big, class_bias=[0.0] * 7)
    with pytest.raises(UsageError, match="read only in a blend"):
        load_checkpoint(big)
    edit_config(out, class_bias=[0.1, 0.2])
    with pytest.raises(UsageError, match="7 finite numbers"):
        load_checkpoint(out)


def test_blends_that_cannot_work_are_refused(shipped, tmp_path, encoders, other_text_encoder):
    from emocli.model.checkpoint import save_blend

    _, big, pair, large = shipped
    other_context = text_checkpoint(tmp_path / "ctx0", other_text_encoder, 1, context=0)
    with pytest.raises(UsageError, match="read different inputs"):
        save_blend([other_context, pair], [1, 1], tmp_path / "b1")
    with pytest.raises(UsageError, match="not blends"):
        save_blend([large, pair], [1, 1], tmp_path / "b2")
    with pytest.raises(UsageError, match="one positive weight for each"):
        save_blend([big, pair], [1], tmp_path / "b3")
    with pytest.raises(UsageError, match="would be overwritten"):
        save_blend([big, pair], [1, 1], pair)
    edit_config(large, blend=[{"checkpoint": ".", "weight": 0.7}, {"checkpoint": "../default", "weight": 0.7}])
    with pytest.raises(UsageError, match="summing to 1"):
        load_checkpoint(large)


def test_an_installed_model_is_named_on_the_command_line(shipped, tmp_path, monkeypatch):
    from emocli.model import checkpoint
    from emocli.cli import app
    from typer.testing import CliRunner

    weights, *_ = shipped
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", weights)
    monkeypatch.chdir(tmp_path)
    assert checkpoint.installed_names() == ["default", "large"]
    assert checkpoint.resolve_model("large") == weights / "large"
    with pytest.raises(UsageError, match=r"'huge' is neither a folder nor an installed model \(installed: "
                                         r"default, large"):
        checkpoint.resolve_model("huge")
    (tmp_path / "large").mkdir()  # a folder of that name where the user is wins over the installed model
    assert checkpoint.resolve_model("large") == Path("large")
    (tmp_path / "large").rmdir()
    listed = CliRunner().invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {Path(r["path"]).name: r for r in json.loads(listed.output)}
    assert set(rows) == {"default", "large"} and rows["large"]["members"] == 1
    info = CliRunner().invoke(app, ["info", "--model", "large", "--json"])
    assert info.exit_code == 0 and json.loads(info.output)["model"]["blend"][1]["checkpoint"] == "../default"


def test_compact_stores_a_finetuned_encoder_as_int8_differences_that_load_back(tmp_path, encoders):
    from emocli.model.checkpoint import save_ensemble
    from emocli.cli import app
    from emocli.model.encoders import load_pretrained
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    run = finetuned_checkpoint(tmp_path / "run", encoders, 0)
    result = CliRunner().invoke(app, ["compact", str(run), "--out", str(tmp_path / "small"), "--note", "int8 test"])
    assert result.exit_code == 0, result.output
    small = tmp_path / "small"
    assert "written:" in result.output and " MB)" in result.output
    stored = load_file(str(small / "model.safetensors"))
    deltas = [k for k in stored if k.startswith("text_delta.")]
    assert deltas and all(stored[k].dtype == torch.int8 for k in deltas)
    assert not [k for k in stored if k.startswith("text_encoder.") and stored[k].dim() > 1]  # matrices as deltas
    full, compact = load_checkpoint(run), load_checkpoint(small)
    base = load_pretrained(encoders["text"]).state_dict()
    tuned = full.encoders["text"].model.state_dict()
    back = compact.encoders["text"].model.state_dict()
    for name in (k[len("text_delta."):] for k in deltas):
        step = (tuned[name] - base[name]).abs().amax(dim=1, keepdim=True) / 127
        assert (back[name] - tuned[name]).abs().le(step / 2 + 1e-6).all(), name  # within half an int8 step
        assert not torch.allclose(back[name], base[name])  # the fine-tuning is there, not the base weights
    inputs = [UtteranceInput("Oh my God!"), UtteranceInput("Fine.", "Ross: hi")]
    ours, reference = compact.predict(inputs)[0], full.predict(inputs)[0]
    assert np.abs(ours - reference).max() < 0.02
    card = (small / "README.md").read_text()
    assert "int8 differences over the base weights" in card and "int8 test" in card
    # an ensemble of compacted runs keeps each member's differences
    other = CliRunner().invoke(app, ["compact", str(finetuned_checkpoint(tmp_path / "run1", encoders, 1)),
                                     "--out", str(tmp_path / "small1")])
    assert other.exit_code == 0, other.output
    pair = load_checkpoint(save_ensemble([small, tmp_path / "small1"], tmp_path / "pair"))
    assert np.allclose(pair.members[0].predict(inputs)[0], ours, atol=1e-6)


def test_compact_refuses_what_it_cannot_do(tmp_path, encoders, ckpt):
    from emocli.model.checkpoint import compact_checkpoint

    with pytest.raises(UsageError, match="no fine-tuned text encoder: there is nothing to compact"):
        compact_checkpoint(ckpt, tmp_path / "x")
    run = finetuned_checkpoint(tmp_path / "run", encoders, 0)
    with pytest.raises(UsageError, match="would be overwritten"):
        compact_checkpoint(run, run)
    small = compact_checkpoint(run, tmp_path / "small")
    with pytest.raises(UsageError, match="already stores its text encoder as a difference"):
        compact_checkpoint(small, tmp_path / "again")
    from safetensors.torch import load_file

    state = load_file(str(small / "model.safetensors"))
    key = next(k for k in state if k.startswith("text_delta_scale."))
    state[key] = state[key][:-1]  # a step size missing: the differences cannot be rebuilt
    save_file(state, str(small / "model.safetensors"), metadata={"format_version": "1"})
    with pytest.raises(UsageError, match="fine-tuned text weights do not fit encoder"):
        load_checkpoint(small)
