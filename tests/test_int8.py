"""--precision int8: text encoders exported to ONNX, quantised to int8 and run by ONNX Runtime (CPU)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emocli.pipeline.predict import BatchPredictor
from emocli.device import amp_dtype
from emocli import annotate as annotate_files
from emocli.model.checkpoint import load_model
from emocli.cli import app
from emocli.errors import UsageError
from emocli.model.network import UtteranceInput

from conftest import SIX_CUES
from test_checkpoint import finetuned_checkpoint

TEXTS = ["Oh my God, you got the job? That's amazing!", "Okay.", "Get out of my apartment right now, Joey!",
         "I miss her so much.", "What?!"]


@pytest.fixture(autouse=True)
def int8_cache(tmp_path_factory, monkeypatch):
    """Quantised graphs go to a cache folder of the test session, not the user's."""
    cache = tmp_path_factory.getbasetemp() / "emocli-cache"
    monkeypatch.setenv("EMOCLI_CACHE", str(cache))
    return cache / "int8"


def text_vectors(model, texts: list[str]) -> torch.Tensor:
    with torch.inference_mode():
        return model.encode_modality("text", [UtteranceInput(t) for t in texts])[0]


def test_int8_tracks_float32_whatever_the_padding_and_is_built_once(text_model, int8_cache, monkeypatch):
    import emocli.model.int8 as int8

    model = load_model(text_model)
    reference = text_vectors(model, TEXTS)
    paths = int8.quantize_text_encoders(model)
    assert [p.parent for p in paths] == [int8_cache] and paths[0].is_file()
    batched = text_vectors(model, TEXTS)
    cosine = torch.nn.functional.cosine_similarity(batched, reference, dim=1)
    assert cosine.min() > 0.99, cosine
    assert not torch.equal(batched, reference)  # int8 really ran
    # each text alone (no padding) gives what it gave padded in the batch: the mask was traced, not baked in
    # (not to the bit: activations are quantised with one scale per batch)
    alone = torch.cat([text_vectors(model, [t]) for t in TEXTS])
    assert torch.allclose(alone, batched, atol=5e-3)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the graph is cached")

    export = int8.export_quantized
    monkeypatch.setattr(int8, "export_quantized", no_export)
    again = load_model(text_model)
    assert int8.quantize_text_encoders(again) == paths
    assert torch.equal(text_vectors(again, TEXTS), batched)
    int8.use_pytorch(again)
    assert torch.equal(text_vectors(again, TEXTS), reference)

    # a damaged cache file is rebuilt, not fatal
    monkeypatch.setattr(int8, "export_quantized", export)
    paths[0].write_bytes(b"not an onnx graph")
    damaged = load_model(text_model)
    assert int8.quantize_text_encoders(damaged) == paths
    assert torch.allclose(text_vectors(damaged, TEXTS), batched, atol=1e-5)


def test_each_ensemble_member_gets_its_own_int8_encoder(tmp_path, encoders):
    from emocli.model.checkpoint import load_checkpoint, save_ensemble
    from emocli.model.int8 import quantize_text_encoders

    runs = [finetuned_checkpoint(tmp_path / f"seed{s}", encoders, s) for s in (0, 1)]
    model = load_checkpoint(save_ensemble(runs, tmp_path / "ensemble"))
    inputs = [UtteranceInput(t) for t in TEXTS]
    reference = model.predict(inputs)[0]
    paths = quantize_text_encoders(model)
    assert len(set(paths)) == 2  # the members' fine-tuned weights differ, so do their graphs
    probs = model.predict(inputs)[0]  # the members' int8 encoders run at once, one thread each
    assert np.allclose(probs, reference, atol=0.02)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert model._pool is not None
    one_by_one = np.mean([member.predict(inputs)[0] for member in model.members], axis=0)
    assert np.allclose(probs, one_by_one, atol=1e-6)


def test_annotate_in_int8_records_it_and_stays_close(media_dir, text_model, trimodal_model, six_cue_srt):
    video = media_dir / "both.mp4"
    for checkpoint, label in ((text_model, "int8"), (trimodal_model, "int8 text encoder, ")):
        model = load_model(checkpoint)
        results = {p: annotate_files(video, six_cue_srt, model=model, vad="energy", precision=p)[0]
                   for p in ("fp32", "int8")}
        assert results["int8"].model["precision"].startswith(label)
        probs = {p: np.stack([x.probabilities for x in r.predictions]) for p, r in results.items()}
        assert probs["int8"].shape == (len(SIX_CUES), 7)
        assert np.allclose(probs["fp32"], probs["int8"], atol=0.05)
    # a later float32 predictor runs the PyTorch weights again
    model = load_model(text_model)
    inputs = [UtteranceInput(t) for t in TEXTS]
    int8_probs = BatchPredictor(model, 4, "int8")(inputs)[0]
    fp32_probs = BatchPredictor(model, 4, "fp32")(inputs)[0]
    assert not np.array_equal(int8_probs, fp32_probs)
    assert np.allclose(fp32_probs, load_model(text_model).predict(inputs)[0], atol=1e-6)


def test_int8_is_refused_on_a_gpu_and_without_onnxruntime(media_dir, text_model, six_cue_srt, tmp_path,
                                                          monkeypatch):
    with pytest.raises(UsageError, match="CPU only"):
        amp_dtype(torch.device("cuda"), "int8")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    result = CliRunner().invoke(app, ["annotate", str(media_dir / "both.mp4"), "--subs", str(six_cue_srt),
                                      "--model", str(text_model), "-o", str(tmp_path / "out"), "--device", "cpu",
                                      "--precision", "int8", "-q"])
    assert result.exit_code == 2
    assert "needs ONNX Runtime: pip install onnxruntime onnx" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_an_unwritable_cache_is_one_clear_line(media_dir, text_model, six_cue_srt, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("EMOCLI_CACHE", str(blocker))
    result = CliRunner().invoke(app, ["annotate", str(media_dir / "both.mp4"), "--subs", str(six_cue_srt),
                                      "--model", str(text_model), "-o", str(tmp_path / "out"), "--device", "cpu",
                                      "--precision", "int8", "-q"])
    assert result.exit_code == 1, result.output
    assert "cannot write the int8 cache" in result.output and "EMOCLI_CACHE" in result.output
    assert "Traceback" not in result.output


def test_evaluate_refuses_to_record_non_reference_scores(text_model, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(text_model), "--meld", str(tmp_path), "--precision", "int8",
                                      "--record"])
    assert result.exit_code == 2 and "--record stores the float32 reference scores" in result.output


def test_an_encoder_without_token_types_quantises_too(tmp_path):
    """DistilBERT-style encoders take input_ids and attention_mask only: the graph's inputs follow the tokenizer."""
    from pathlib import Path

    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    from emocli.model.encoders import resolve_encoder
    from emocli.model.int8 import quantize_text_encoders
    from emocli.model.network import EmotionModel, FusionConfig, make_config

    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
                    ).save_pretrained(tmp_path / "distil")
    DistilBertTokenizerFast(vocab_file=str(Path(resolve_encoder("minilm")) / "vocab.txt")
                            ).save_pretrained(tmp_path / "distil")
    model = EmotionModel(make_config(["text"], str(tmp_path / "distil"), context=1,
                                     fusion=FusionConfig(hidden=16, heads=2)))
    inputs = [UtteranceInput(t, "Previous line.") for t in TEXTS]
    reference = model.predict(inputs)[0]
    quantize_text_encoders(model)
    assert model.encoders["text"].onnx.names == ["input_ids", "attention_mask"]
    probs = model.predict(inputs)[0]
    assert np.allclose(probs, reference, atol=0.02) and not np.array_equal(probs, reference)
