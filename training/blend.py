"""Issue 19: does averaging models with different text encoders beat each alone? Dev chooses; test once, afterwards.

Each checkpoint's class probabilities on a split (an ensemble's already averaged over its members) are computed once
and kept in runs/probs/<name>-<split>.npy. The candidates are declared here, before any score is seen, so dev picks
between few options and is not tuned on:
  - each checkpoint alone;
  - all given checkpoints, one equal vote per checkpoint (e.g. mpnet 1/2, the MiniLM pair 1/2);
  - all given checkpoints, one equal vote per member network (e.g. mpnet 1/3, each MiniLM 1/3);
  - where two or more checkpoints share a text encoder (seeds of one recipe): one equal vote per text encoder, split
    equally among its checkpoints (e.g. mpnet seed 0 1/4, mpnet seed 1 1/4, the MiniLM pair 1/2).
Then, for the candidate dev chose only (`--prior-shift`): does shifting its log-probabilities by alpha x the log of
train's class frequencies (partly undoing the square-root class weights of training, which favour rare classes)
help weighted F1? Scored honestly by cross-fitting on dev: 5 folds grouped by dialogue, alpha (0, 0.05, .., 1) chosen
on four folds and applied to the fifth; it ships only if that cross-fitted score beats the unshifted one, with the
alpha chosen on the whole of dev.

    python training/blend.py --meld ../shared/data/meld weights/default runs/mpnet-ft6            # dev
    python training/blend.py --meld ../shared/data/meld --prior-shift "per checkpoint" weights/default ...   # dev
    python training/blend.py --meld ../shared/data/meld --split test --only "per checkpoint" weights/default ...

Writes training/results/blend-<split>.json (every candidate's accuracy, weighted and macro F1, per-class F1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def probabilities(model_dir: Path, meld: Path, split: str, cache: Path, store: Path) -> tuple[np.ndarray, np.ndarray,
                                                                                               int]:
    """[N, 7] probabilities, labels, and the number of member networks of one checkpoint on one split."""
    from emocli.model.checkpoint import load_checkpoint, read_config
    from emocli.training.evaluate import split_predictor

    members = read_config(model_dir).members
    name = f"{model_dir.resolve().name}-{split}"
    path_p, path_y = store / f"{name}.npy", store / f"{name}.labels.npy"
    if path_p.is_file() and path_y.is_file():
        return np.load(path_p), np.load(path_y), members
    model = load_checkpoint(model_dir, "cpu")
    predict, present, labels = split_predictor(model, model_dir, meld, split, cache, progress=False, log=print)
    probs = predict(present).numpy()
    store.mkdir(parents=True, exist_ok=True)
    np.save(path_p, probs)
    np.save(path_y, labels)
    return probs, labels, members


def candidates(names: list[str], members: list[int], encoders: list[str]) -> dict[str, np.ndarray]:
    """The declared blends: name -> one weight per checkpoint (summing to 1)."""
    out = {f"{n} alone": np.eye(len(names))[i] for i, n in enumerate(names)}
    if len(names) > 1:
        out["per checkpoint"] = np.full(len(names), 1 / len(names))
        votes = np.asarray(members, dtype=float)
        out["per member"] = votes / votes.sum()
    if len(set(encoders)) < len(encoders):
        kinds = sorted(set(encoders))
        out["per encoder"] = np.array([1 / len(kinds) / encoders.count(e) for e in encoders])
    return out


ALPHAS = np.round(np.arange(0, 1.0001, 0.05), 2)


def best_alpha(log_probs: np.ndarray, labels: np.ndarray, counts: list[int]) -> float:
    """The prior shift (smallest of the best) that maximises weighted F1 on these utterances."""
    from sklearn.metrics import f1_score

    from emocli.model.prior import class_bias

    scores = [f1_score(labels, (log_probs + class_bias(counts, a)).argmax(1), average="weighted") for a in ALPHAS]
    return float(ALPHAS[int(np.argmax(scores))])


def cross_fitted_shift(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray, counts: list[int],
                       folds: int = 5) -> dict:
    """Each fold of dev (grouped by dialogue) predicted with the alpha chosen on the other folds."""
    from sklearn.model_selection import GroupKFold

    from emocli.training.metrics import compute_metrics

    from emocli.model.prior import class_bias

    log_probs = np.log(np.clip(probs, 1e-12, None))
    preds, chosen = np.zeros_like(labels), []
    for fit, held in GroupKFold(folds).split(log_probs, labels, groups):
        alpha = best_alpha(log_probs[fit], labels[fit], counts)
        chosen.append(alpha)
        preds[held] = (log_probs[held] + class_bias(counts, alpha)).argmax(1)
    return {"fold_alphas": chosen, "cross_fitted": compute_metrics(labels, preds),
            "alpha_on_all_of_dev": best_alpha(log_probs, labels, counts)}


def main() -> None:
    from emocli.model.checkpoint import read_config
    from emocli.training.metrics import compute_metrics

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--meld", type=Path, required=True)
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--only", help="Score this candidate alone (for test: the one dev chose).")
    ap.add_argument("--prior-shift", metavar="NAME", help="Dev: cross-fit the prior shift for this candidate (the "
                    "one dev chose).")
    ap.add_argument("--alpha", type=float, default=0.0, help="With --only: the prior shift to apply (test).")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emocli")
    ap.add_argument("--store", type=Path, default=ROOT / "runs" / "probs")
    args = ap.parse_args()
    if args.split == "test" and not args.only:
        ap.error("test is scored once, for the candidate dev chose: pass --only NAME")
    runs = [probabilities(m, args.meld, args.split, args.cache, args.store) for m in args.models]
    labels = runs[0][1]
    if any(not np.array_equal(r[1], labels) for r in runs):
        sys.exit("the checkpoints' utterances differ (another MELD folder or limit?)")
    from emocli.training.meld import load_split
    from emocli.model.prior import apply_class_bias, class_bias
    from emocli.training.meld import train_class_counts

    if args.prior_shift and args.split != "dev":
        ap.error("the prior shift is chosen on dev")
    names = [m.name for m in args.models]
    encoders = [read_config(m).text.encoder for m in args.models]
    counts = train_class_counts(args.meld)
    report = {"split": args.split, "models": [str(m) for m in args.models], "candidates": {}}

    def show(name: str, metrics: dict) -> None:
        per_class = " ".join(f"{k[:4]} {v['f1-score']:.3f}" for k, v in metrics["per_class"].items())
        print(f"{name:<28} weighted F1 {metrics['weighted_f1']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
              f"accuracy {metrics['accuracy']:.4f}  | {per_class}")

    for name, weights in candidates(names, [r[2] for r in runs], encoders).items():
        if args.only and name != args.only:
            continue
        probs = sum(w * r[0] for w, r in zip(weights, runs))
        if args.alpha:
            probs = apply_class_bias(probs, class_bias(counts, args.alpha))
        metrics = compute_metrics(labels, probs.argmax(1))
        report["candidates"][name] = {"weights": dict(zip(names, map(float, weights))), "alpha": args.alpha,
                                      **metrics}
        show(name, metrics)
        if name == args.prior_shift:
            groups = np.array([u.dialogue_id for u in load_split(args.meld, args.split)])
            shift = cross_fitted_shift(probs, labels, groups, counts)
            report["candidates"][name]["prior_shift"] = shift
            show("  + prior shift, cross-fitted", shift["cross_fitted"])
            print(f"  fold alphas {shift['fold_alphas']}; on all of dev {shift['alpha_on_all_of_dev']}")
    if not report["candidates"]:
        sys.exit(f"no candidate named {args.only!r}")
    if args.prior_shift and "prior_shift" not in report["candidates"].get(args.prior_shift, {}):
        sys.exit(f"no candidate named {args.prior_shift!r}")
    out = ROOT / "training" / "results" / f"blend-{args.split}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
