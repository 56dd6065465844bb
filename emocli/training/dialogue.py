"""Fitting the dialogue stage (model/dialogue.py) on MELD train, over a checkpoint's own probabilities:
`emocli dialogue`. Training-side only; annotate and evaluate apply the stored stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..files import default_cache_dir
from ..labels import LABELS
from ..model.checkpoint import load_checkpoint, resolve_model, save_dialogue
from ..model.dialogue import HISTORY, TURNS, C, apply_dialogue, dialogue_features
from .evaluate import split_predictor
from .meld import load_split
from .metrics import compute_metrics


def fit_dialogue(probs: np.ndarray, labels: np.ndarray, dialogues: Sequence, speakers: Sequence[str],
                 c: float = C) -> dict:
    """Fit the stage on a model's probabilities over labelled dialogues; returns its config.json entry."""
    from sklearn.linear_model import LogisticRegression

    present = sorted(set(int(y) for y in labels))
    if present != list(range(len(LABELS))):
        missing = [LABELS[i] for i in range(len(LABELS)) if i not in present]
        raise UsageError(f"the dialogue stage needs examples of every emotion; none of {', '.join(missing)}")
    lr = LogisticRegression(C=c, max_iter=3000).fit(dialogue_features(probs, dialogues, speakers), labels)
    return {"weight": [[round(float(w), 6) for w in row] for row in lr.coef_],
            "bias": [round(float(b), 6) for b in lr.intercept_], "c": c, "history": HISTORY, "turns": TURNS,
            "fitted_on": int(len(labels))}


def add_dialogue_stage(checkpoint: str | Path, meld_dir: str | Path, out: str | Path,
                       cache_dir: str | Path | None = None, progress: bool = True,
                       log: Callable[[str], None] = print, notes: list[str] | None = None) -> dict:
    """Fit the stage on MELD train over a checkpoint's own probabilities, score dev without and with it, and
    write the checkpoint with the stage to `out` (checkpoint.save_dialogue). Returns the dev scores."""
    source, meld_dir = resolve_model(checkpoint), Path(meld_dir)
    if not meld_dir.is_dir():
        raise UsageError(f"MELD folder not found: {meld_dir}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    model = load_checkpoint(source)
    limit = model.config.provenance.get("limit_dialogues")
    scored = {}
    for split in ("train", "dev"):
        predict, present, labels = split_predictor(model, source, meld_dir, split, cache, progress=progress, log=log,
                                                   dialogue=False)
        utts = load_split(meld_dir, split, limit=limit)
        scored[split] = (predict(present).numpy(), labels, [u.dialogue_id for u in utts], [u.speaker for u in utts])
    layer = fit_dialogue(*scored["train"])
    probs, labels, dialogues, speakers = scored["dev"]
    headline = ("n", "accuracy", "weighted_f1", "macro_f1")
    scores = {name: {k: metrics[k] for k in headline} for name, metrics in (
        ("dev_without", compute_metrics(labels, probs.argmax(1))),
        ("dev_with", compute_metrics(labels, apply_dialogue(probs, dialogues, speakers, layer).argmax(1))))}
    save_dialogue(source, out, layer, scores, notes)
    return scores
