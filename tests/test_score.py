"""emocli score: predictions against a reviewer's labels give scikit-learn's metrics; every malformed or
mismatched file is one clear error line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.cli import app
from emocli.synth import make_media, write_srt

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def predictions(tmp_path_factory, text_model):
    """emocli's CSV and JSON for a 12-cue clip (two of the cues with two speakers' turns)."""
    root = tmp_path_factory.mktemp("score")
    video = make_media(root / "clip.mp4", 12.0)
    cues = [(i + 0.1, i + 0.9, f"Line number {i}, said {'loudly' if i % 3 else 'softly'}.") for i in range(12)]
    cues[4] = (4.1, 4.9, "- Are you coming?\n- No.")
    cues[8] = (8.1, 8.9, "- Really?\n- Really.")
    write_srt(root / "clip.srt", cues)
    result = cli("annotate", video, "--model", text_model, "-o", root, "-f", "csv,json", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    return root / "clip.emotions.csv", root / "clip.emotions.json"


def gold_from(csv_path, rng_seed=0):
    """A corrections file as the review page exports it: some rows relabelled, one not speech, one unreviewed."""
    table = pd.read_csv(csv_path, keep_default_na=False)
    rng = np.random.default_rng(rng_seed)
    gold = table[["index", "turn", "start", "end", "speaker", "text"]].copy()
    gold["predicted"] = table["emotion"]
    corrected = [rng.choice(LABELS) if rng.random() < 0.5 else e for e in table["emotion"]]
    corrected[0], corrected[1] = "not speech", ""
    corrected[2] = corrected[2].upper()  # labels are read case-insensitively
    gold["corrected"] = corrected
    return table, gold


def test_score_matches_scikit_learn(predictions, tmp_path):
    csv_path, json_path = predictions
    table, gold = gold_from(csv_path)
    assert len(table) == 14 and (table["turn"] == 2).sum() == 2
    gold_path = tmp_path / "clip.corrections.csv"
    gold.to_csv(gold_path, index=False)
    keep = [i for i, c in enumerate(gold["corrected"]) if c and c != "not speech"]
    y_true = [LABELS.index(gold["corrected"][i].lower()) for i in keep]
    y_pred = [LABELS.index(table["emotion"][i]) for i in keep]
    for source in (csv_path, json_path):
        out = tmp_path / source.suffix[1:]
        result = cli("score", source, gold_path, "-o", out)
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n"] == len(keep) == 12 and metrics["not_speech"] == 1 and metrics["not_reviewed"] == 1
        assert metrics["accuracy"] == round(accuracy_score(y_true, y_pred), 4)
        assert metrics["weighted_f1"] == round(f1_score(y_true, y_pred, average="weighted"), 4)
        assert metrics["macro_f1"] == round(f1_score(y_true, y_pred, average="macro"), 4)
        matrix = pd.read_csv(out / "confusion_matrix.csv", index_col=0).to_numpy()
        assert (matrix == confusion_matrix(y_true, y_pred, labels=range(len(LABELS)))).all()
        assert (out / "confusion_matrix.png").stat().st_size > 1000
        assert f"{len(keep)} scored" in result.output and f"weighted F1 {metrics['weighted_f1']:.4f}" in result.output


def test_any_csv_with_times_and_a_label_column(predictions, tmp_path):
    """A gold file of the user's own: no index, rows matched by start and end, its column named."""
    csv_path, _ = predictions
    table, gold = gold_from(csv_path, rng_seed=1)
    labelled = table[table["turn"] == 1]  # one row per time span
    mine = pd.DataFrame({"Start": labelled["start"], "End": labelled["end"],
                         "My Label": [LABELS[(i * 3) % 7].capitalize() for i in range(len(labelled))]})
    path = tmp_path / "mine.csv"
    mine.to_csv(path, index=False)
    result = cli("score", csv_path, path, "--label-column", "my label", "-o", tmp_path / "s")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    y_true = [LABELS.index(x.lower()) for x in mine["My Label"]]
    y_pred = [LABELS.index(x) for x in labelled["emotion"]]
    assert metrics["n"] == len(labelled) and metrics["accuracy"] == round(accuracy_score(y_true, y_pred), 4)


@pytest.mark.parametrize("mangle, message", [
    (lambda g: g.assign(corrected=["happy", "mad"] + list(g["corrected"][2:])),
     "unknown labels in column 'corrected': 'happy' (1 row), 'mad' (1 row)"),
    (lambda g: g.assign(start=g["start"] + 3.0), "not the same cues"),
    (lambda g: g.assign(index=g["index"] + 100), "are not in"),
    (lambda g: g.drop(columns=["corrected", "predicted"]), "no label column"),
    (lambda g: g.assign(start=["soon"] * len(g)), "is not a number of seconds"),
    (lambda g: g.assign(corrected=""), "no row to score"),
])
def test_a_mismatched_or_malformed_gold_file_is_one_error_line(predictions, tmp_path, mangle, message):
    csv_path, _ = predictions
    _, gold = gold_from(csv_path)
    path = tmp_path / "gold.csv"
    mangle(gold).to_csv(path, index=False)
    result = cli("score", csv_path, path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emocli: error:") and message in lines[0], result.output


def test_unreadable_files(predictions, tmp_path):
    csv_path, _ = predictions
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    (tmp_path / "x.json").write_text("[1, 2]")
    for path, message in ((tmp_path / "missing.csv", "not found"), (tmp_path / "empty.csv", "not a readable CSV"),
                          (tmp_path / "bin.csv", "not a readable CSV"), (tmp_path / "x.json", "not an emocli JSON")):
        result = cli("score", csv_path, path)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, \
            (path, result.output)
