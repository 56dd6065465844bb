"""Probe for issue 19's dialogue lever: does a layer over the whole dialogue, on top of a fine-tuned text model's
per-utterance probabilities, add anything to the model's own 2+1 turns of context? Dev only (test untouched).

Features per utterance (log-probabilities of the shipped model, averaged over its members): its own; the previous
and the next utterance's (zeros and a flag at the dialogue's edges); the mean over the speaker's own last 3 turns
and over the other speakers' last 3; whether the speaker changed. A multinomial logistic regression on them is
  A. trained on the train split's probabilities (which the fine-tuned model has seen: overconfident), scored on dev;
  B. cross-validated on dev alone, 5 folds grouped by dialogue (so no dialogue is in its own training fold).
Both are compared with the model's own argmax on the same utterances.

    python training/dialogue_probe.py --meld ../shared/data/meld [--model weights/default]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def probabilities(model_dir: Path, meld: Path, split: str, cache: Path):
    from emocli.model.checkpoint import load_checkpoint
    from emocli.training.evaluate import split_predictor
    from emocli.training.meld import load_split

    model = load_checkpoint(model_dir, "cpu")
    predict, present, labels = split_predictor(model, model_dir, meld, split, cache, progress=True, log=print)
    cfg = model.config
    utts = load_split(meld, split, context=cfg.text.context, limit=cfg.provenance.get("limit_dialogues"),
                      context_after=cfg.text.context_after)
    return predict(present).numpy(), labels, utts


def features(probs: np.ndarray, utts) -> np.ndarray:
    """The features of the shipped dialogue stage (emocli/model/dialogue.py), which grew out of this probe."""
    from emocli.model.dialogue import dialogue_features

    return dialogue_features(probs, [u.dialogue_id for u in utts], [u.speaker for u in utts])


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from emocli.training.metrics import compute_metrics

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meld", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=Path("weights/default"))
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emocli")
    args = ap.parse_args()
    train_p, train_y, train_u = probabilities(args.model, args.meld, "train", args.cache)
    dev_p, dev_y, dev_u = probabilities(args.model, args.meld, "dev", args.cache)
    x_train, x_dev = features(train_p, train_u), features(dev_p, dev_u)
    report = {"model": str(args.model),
              "train_accuracy_of_the_model": compute_metrics(train_y, train_p.argmax(1))["accuracy"],
              "dev_model_argmax": compute_metrics(dev_y, dev_p.argmax(1))}
    for c in (0.1, 1.0):
        lr = LogisticRegression(C=c, max_iter=2000).fit(x_train, train_y)
        report[f"A_train_then_dev_C{c}"] = compute_metrics(dev_y, lr.predict(x_dev))
    groups = np.array([u.dialogue_id for u in dev_u])
    for c in (0.1, 1.0):
        cv_pred, base_pred = np.zeros_like(dev_y), dev_p.argmax(1)
        for fit, held in GroupKFold(n_splits=5).split(x_dev, dev_y, groups):
            lr = LogisticRegression(C=c, max_iter=2000, class_weight=None).fit(x_dev[fit], dev_y[fit])
            cv_pred[held] = lr.predict(x_dev[held])
        report[f"B_dev_5fold_C{c}"] = compute_metrics(dev_y, cv_pred)
    for name, m in report.items():
        if isinstance(m, dict):
            print(f"{name:<26} weighted F1 {m['weighted_f1']:.4f}  macro F1 {m['macro_f1']:.4f}  "
                  f"accuracy {m['accuracy']:.4f}")
        else:
            print(f"{name}: {m}")
    out = Path(__file__).parent / "results" / "dialogue_probe.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
