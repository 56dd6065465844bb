"""The dialogue stage (emocli/model/dialogue.py): its features, what it learns, and where it runs (evaluate; annotate only
when speakers are known)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.model.checkpoint import load_checkpoint, read_config, save_dialogue
from emocli.cli import app
from emocli.model.dialogue import FEATURES, apply_dialogue, dialogue_features
from emocli.training.dialogue import fit_dialogue
from emocli.errors import UsageError
from emocli.synth import write_srt

from test_checkpoint import edit_config, write_meld_split

K = len(LABELS)


def peaked(labels: list[int], height: float = 0.9) -> np.ndarray:
    probs = np.full((len(labels), K), (1 - height) / (K - 1))
    probs[np.arange(len(labels)), labels] = height
    return probs


def test_the_features_are_the_neighbours_and_each_speakers_last_turns():
    probs = peaked([0, 1, 2, 3, 4, 5, 6])
    logp = np.log(probs)
    dialogues = [7, 7, 7, 7, 7, 8, 8]
    speakers = ["Ross", "Monica", "ross ", "Joey", "Ross", "Ross", "Rachel"]
    x = dialogue_features(probs, dialogues, speakers)
    assert x.shape == (7, FEATURES) and FEATURES == 5 * K + 3
    own, prev, nxt, mine, others, flags = (x[:, :K], x[:, K:2 * K], x[:, 2 * K:3 * K], x[:, 3 * K:4 * K],
                                           x[:, 4 * K:5 * K], x[:, 5 * K:])
    assert np.allclose(own, logp)
    assert np.allclose(prev[1:5], logp[0:4]) and not prev[0].any() and not prev[5].any()  # not across dialogues
    assert np.allclose(nxt[:4], logp[1:5]) and not nxt[4].any() and not nxt[6].any()
    # utterance 4 (Ross): his own earlier turns are 0 and 2 ("ross " is the same speaker), the others' 1 and 3
    assert np.allclose(mine[4], logp[[0, 2]].mean(0)) and np.allclose(others[4], logp[[1, 3]].mean(0))
    assert not mine[5].any() and not others[5].any()  # a new dialogue starts with no history
    assert np.allclose(others[6], logp[5]) and not mine[6].any()
    assert flags[0].tolist() == [1, 0, 0] and flags[2].tolist() == [0, 0, 1] and flags[4].tolist() == [0, 1, 1]
    assert flags[5].tolist() == [1, 0, 0] and flags[6].tolist() == [0, 1, 1]


def persistent_speakers(dialogues: int, seed: int) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Dialogues where each speaker keeps one emotion throughout, and the model is sure only of first turns."""
    rng = np.random.default_rng(seed)
    probs, labels, ids, speakers = [], [], [], []
    for d in range(dialogues):
        mood = {"A": int(rng.integers(K)), "B": int(rng.integers(K))}
        for turn in range(8):
            who = "AB"[turn % 2]
            labels.append(mood[who])
            ids.append(d)
            speakers.append(who)
            probs.append(peaked([mood[who]])[0] if turn < 2 else rng.dirichlet(np.full(K, 5.0)))
    return np.array(probs), np.array(labels), ids, speakers


def test_the_stage_learns_that_speakers_keep_their_emotion():
    probs, labels, ids, speakers = persistent_speakers(120, 0)
    layer = fit_dialogue(probs, labels, ids, speakers)
    assert np.array(layer["weight"]).shape == (K, FEATURES) and len(layer["bias"]) == K
    probs2, labels2, ids2, speakers2 = persistent_speakers(40, 1)
    out = apply_dialogue(probs2, ids2, speakers2, layer)
    assert out.shape == probs2.shape and np.allclose(out.sum(1), 1, atol=1e-5)
    later = np.array([i % 8 >= 2 for i in range(len(labels2))])  # turns where the model itself is guessing
    assert (probs2.argmax(1) == labels2)[later].mean() < 0.4
    assert (out.argmax(1) == labels2)[later].mean() > 0.9
    # the same turns without knowing who speaks: the history mixes both speakers' moods
    blind = apply_dialogue(probs2, ids2, ["?"] * len(labels2), layer)
    assert (blind.argmax(1) == labels2)[later].mean() < 0.8
    with pytest.raises(UsageError, match="every emotion; none of fear"):
        fit_dialogue(probs, np.where(labels == 2, 0, labels), ids, speakers)


def test_the_cli_fits_the_stage_and_evaluate_applies_it(text_model, tmp_path):
    from emocli.training.evaluate import split_predictor

    write_meld_split(tmp_path, "train", [i % K for i in range(3 * K * 4)])
    write_meld_split(tmp_path, "dev", [(3 * i) % K for i in range(12)])
    out = tmp_path / "with-stage"
    result = CliRunner().invoke(app, ["dialogue", str(text_model), "--meld", str(tmp_path), "--out", str(out), "-q",
                                      "--note", "fitted in a test"])
    assert result.exit_code == 0, result.output
    config = read_config(out)
    assert np.array(config.dialogue["weight"]).shape == (K, FEATURES) and config.dialogue["fitted_on"] == 84
    stage = config.provenance["dialogue_stage"]
    assert stage["dev_without"]["n"] == stage["dev_with"]["n"] == 12
    assert f"{stage['dev_without']['weighted_f1']:.4f} -> {stage['dev_with']['weighted_f1']:.4f}" in result.output
    card = (out / "README.md").read_text()
    assert "## Dialogue stage" in card and "fitted in a test" in card
    assert read_config(text_model).dialogue is None  # the source is left as it was
    listed = CliRunner().invoke(app, ["models", str(tmp_path)])
    assert f"{out}  [text, dialogue stage (where speakers are named)]" in listed.output, listed.output
    got = {}
    for d in (text_model, out):
        predict, present, labels = split_predictor(load_checkpoint(d), d, tmp_path, "dev", tmp_path / "cache",
                                                   progress=False, log=lambda _: None)
        got[d.name] = predict(present).numpy()
    dialogues = [i // 4 for i in range(12)]
    speakers = ["Ross" if i % 2 else "Monica" for i in range(12)]
    assert np.allclose(got[out.name], apply_dialogue(got[text_model.name], dialogues, speakers, config.dialogue),
                       atol=1e-5)
    # evaluate --record over the stage: the card's scores are the stage's
    result = CliRunner().invoke(app, ["evaluate", str(out), "--meld", str(tmp_path), "--split", "dev", "--record",
                                      "--cache", str(tmp_path / "cache"), "-q"])
    assert result.exit_code == 0, result.output
    recorded = read_config(out).provenance["dev_metrics"]["weighted_f1"]
    assert recorded == stage["dev_with"]["weighted_f1"]


def test_a_broken_stage_or_missing_emotions_are_one_line(text_model, tmp_path):
    write_meld_split(tmp_path, "train", [i % 3 for i in range(24)])  # three emotions only
    write_meld_split(tmp_path, "dev", [i % K for i in range(8)])
    result = CliRunner().invoke(app, ["dialogue", str(text_model), "--meld", str(tmp_path), "--out",
                                      str(tmp_path / "s"), "-q"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "needs examples of every emotion; none of joy, neutral, sadness, surprise" in result.output
    layer = {"weight": [[0.0] * FEATURES] * K, "bias": [0.0] * K}
    copy = save_dialogue(text_model, tmp_path / "copy", layer, {})
    edit_config(copy, dialogue={"weight": [[0.0] * 3] * K, "bias": [0.0] * K})
    with pytest.raises(UsageError, match="'dialogue' must hold 'weight' \\(7 rows of 38 numbers\\)"):
        load_checkpoint(copy)


def test_annotate_runs_the_stage_only_when_every_cue_names_its_speaker(text_model, media_dir, tmp_path):
    # a stage that only knows the speaker's own last turns: a speaker keeps the emotion they had
    weight = np.zeros((K, FEATURES))
    weight[:, 3 * K:4 * K] = 5 * np.eye(K)
    staged = save_dialogue(text_model, tmp_path / "staged", {"weight": weight.tolist(), "bias": [0.0] * K}, {})
    cues = [(0.2, 1.0, "I can't believe you did that!"), (1.1, 2.0, "How you doin'?"), (2.1, 3.0, "Oh my God."),
            (3.2, 4.0, "That's so sad."), (4.1, 5.0, "Get out!"), (5.1, 5.9, "Okay.")]
    named = write_srt(tmp_path / "named.srt", [(a, b, f"{'ROSS' if i % 2 else 'JOEY'}: {t}")
                                               for i, (a, b, t) in enumerate(cues)])
    half = write_srt(tmp_path / "half.srt", [(a, b, f"JOEY: {t}" if i == 1 else t) for i, (a, b, t) in enumerate(cues)])
    docs = {}
    for model in (text_model, staged):
        for subs in (named, half):
            out = tmp_path / f"{model.name}-{subs.stem}"
            result = CliRunner().invoke(app, ["annotate", str(media_dir / "both.mp4"), "--subs", str(subs), "--model",
                                              str(model), "-f", "json", "-o", str(out), "--device", "cpu"])
            assert result.exit_code == 0, result.output
            docs[out.name] = json.loads((out / "both.emotions.json").read_text())
            if model == staged and subs == half:
                assert "dialogue stage was not applied: 5 of 6 utterances name no speaker" in result.output
    probs = {k: np.array([[u["probabilities"][label] for label in LABELS] for u in d["utterances"]])
             for k, d in docs.items()}
    assert "dialogue_stage" not in docs[f"{text_model.name}-named"]["model"]
    assert docs["staged-named"]["model"]["dialogue_stage"] == "applied to 6 utterances"
    speakers = [u["speaker"] for u in docs["staged-named"]["utterances"]]
    assert speakers == ["JOEY", "ROSS"] * 3
    expected = apply_dialogue(probs[f"{text_model.name}-named"], [0] * 6, speakers,
                              read_config(staged).dialogue)
    assert np.allclose(probs["staged-named"], expected, atol=2e-3)  # JSON rounds probabilities
    emotions = [u["emotion"] for u in docs["staged-named"]["utterances"]]
    own_model = [LABELS[i] for i in probs[f"{text_model.name}-named"].argmax(1)]
    assert emotions[2:4] == own_model[0:2]  # each speaker's second cue repeats what the model gave their first
    assert docs["staged-half"]["model"]["dialogue_stage"].startswith("not applied: 5 of 6")
    assert np.allclose(probs["staged-half"], probs[f"{text_model.name}-half"])  # the model's own probabilities


def test_explain_says_it_shows_the_model_before_the_stage(text_model, media_dir, tmp_path):
    weight = np.zeros((K, FEATURES))
    staged = save_dialogue(text_model, tmp_path / "staged", {"weight": weight.tolist(), "bias": [0.0] * K}, {})
    subs = write_srt(tmp_path / "named.srt", [(0.2, 1.0, "ROSS: Get out!"), (1.1, 2.0, "JOEY: Okay.")])
    shown = {}
    for model in (text_model, staged):
        result = CliRunner().invoke(app, ["explain", str(media_dir / "both.mp4"), "--subs", str(subs), "--index", "2",
                                          "--model", str(model), "-o", str(tmp_path / f"{model.name}.png"),
                                          "--device", "cpu"])
        assert result.exit_code == 0, result.output
        shown[model.name] = json.loads(result.output.splitlines()[0])
    assert "dialogue_stage" not in shown[text_model.name]
    assert shown["staged"]["dialogue_stage"].startswith("not applied: explain shows the model's own probabilities")
    assert shown["staged"]["probabilities"] == shown[text_model.name]["probabilities"]


def test_ensembles_and_blends_leave_their_parts_stages_out(encoders, tmp_path):
    """A stage is fitted to one model's probabilities; over an average of several it would be misfitted."""
    from emocli.model.checkpoint import save_blend, save_ensemble

    from test_checkpoint import text_checkpoint

    layer = {"weight": (np.ones((K, FEATURES)) / FEATURES).tolist(), "bias": [0.0] * K}
    runs = [save_dialogue(text_checkpoint(tmp_path / f"s{s}", encoders["text"], s), tmp_path / f"d{s}", layer,
                          {"dev_with": {"weighted_f1": 0.5}}) for s in (0, 1)]
    for combined in (save_ensemble(runs, tmp_path / "pair"), save_blend(runs, [1, 1], tmp_path / "blend")):
        config = read_config(combined)
        assert config.dialogue is None and "dialogue_stage" not in config.provenance
        assert "dialogue_stage" not in json.loads((combined / "config.json").read_text())
        assert "Dialogue stage" not in (combined / "README.md").read_text()
