"""Issue 19: does averaging models with different text encoders beat each alone? Dev chooses; test once, afterwards.

Each checkpoint's class probabilities on a split (an ensemble's already averaged over its members) are computed once
and kept in runs/probs/<name>-<split>.npy. The candidates are declared here, before any score is seen, so dev picks
between few options and is not tuned on:
  - each checkpoint alone;
  - all given checkpoints, one equal vote per checkpoint (e.g. mpnet 1/2, the MiniLM pair 1/2);
  - all given checkpoints, one equal vote per member network (e.g. mpnet 1/3, each MiniLM 1/3).

    python training/blend.py --meld ../shared/data/meld weights/default runs/mpnet-ft6            # dev
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
    from emocli.checkpoint import load_checkpoint, read_config
    from emocli.evaluate import split_predictor

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


def candidates(names: list[str], members: list[int]) -> dict[str, np.ndarray]:
    """The declared blends: name -> one weight per checkpoint (summing to 1)."""
    out = {f"{n} alone": np.eye(len(names))[i] for i, n in enumerate(names)}
    if len(names) > 1:
        out["per checkpoint"] = np.full(len(names), 1 / len(names))
        votes = np.asarray(members, dtype=float)
        out["per member"] = votes / votes.sum()
    return out


def main() -> None:
    from emocli.evaluate import compute_metrics

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--meld", type=Path, required=True)
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--only", help="Score this candidate alone (for test: the one dev chose).")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emocli")
    ap.add_argument("--store", type=Path, default=ROOT / "runs" / "probs")
    args = ap.parse_args()
    if args.split == "test" and not args.only:
        ap.error("test is scored once, for the candidate dev chose: pass --only NAME")
    runs = [probabilities(m, args.meld, args.split, args.cache, args.store) for m in args.models]
    labels = runs[0][1]
    if any(not np.array_equal(r[1], labels) for r in runs):
        sys.exit("the checkpoints' utterances differ (another MELD folder or limit?)")
    names = [m.name for m in args.models]
    report = {"split": args.split, "models": [str(m) for m in args.models], "candidates": {}}
    for name, weights in candidates(names, [r[2] for r in runs]).items():
        if args.only and name != args.only:
            continue
        probs = sum(w * r[0] for w, r in zip(weights, runs))
        metrics = compute_metrics(labels, probs.argmax(1))
        report["candidates"][name] = {"weights": dict(zip(names, map(float, weights))), **metrics}
        per_class = " ".join(f"{k[:4]} {v['f1-score']:.3f}" for k, v in metrics["per_class"].items())
        print(f"{name:<22} weighted F1 {metrics['weighted_f1']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
              f"accuracy {metrics['accuracy']:.4f}  | {per_class}")
    if not report["candidates"]:
        sys.exit(f"no candidate named {args.only!r}")
    out = ROOT / "training" / "results" / f"blend-{args.split}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
