"""Checkpoints: save/load round trip, and clear refusals of mismatched, truncated or foreign files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from emocli.checkpoint import load_checkpoint, read_config
from emocli.errors import UsageError
from emocli.model import UtteranceInput

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
    from emocli.checkpoint import save_checkpoint
    from emocli.model import EmotionModel, FusionConfig, make_config

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
    from emocli.checkpoint import save_ensemble
    from emocli.model import EnsembleModel

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
    from emocli.checkpoint import save_ensemble

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
