"""What each `--precision` costs in accuracy: a checkpoint scored on a MELD split at each precision, every label
compared with the float32 reference, and the time the encoders took.

    python bench/precision.py --meld ../shared/data/meld                      # shipped model, dev, fp32/bf16/int8
    python bench/precision.py --meld ../shared/data/meld --precisions fp32,int8 --model runs/mine

Select on dev: run this on test only for a model already chosen. Prints a table, then one JSON line per precision.
Not a test: times depend on the machine (put them in docs/performance.md with the command, device and date).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from emocli.device import resolve_device  # noqa: E402
from emocli.model.checkpoint import default_model_dir, load_checkpoint  # noqa: E402
from emocli.training.metrics import compute_metrics  # noqa: E402
from emocli.training.evaluate import split_predictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meld", type=Path, required=True, help="folder with MELD's CSVs")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: the shipped model)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--precisions", default="fp32,bf16,int8", help="comma list; the first is the reference")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    run_dir = args.model or default_model_dir()
    device = str(resolve_device(args.device))
    rows, reference = [], None
    for precision in args.precisions.split(","):
        model = load_checkpoint(run_dir, device)
        start = time.perf_counter()  # no embedding cache: the encoders run every time
        predict, present, labels = split_predictor(model, run_dir, args.meld, args.split, None, progress=False,
                                                   log=lambda msg: print(msg, file=sys.stderr), precision=precision)
        seconds = time.perf_counter() - start
        preds = predict(present).argmax(1).numpy()
        reference = preds if reference is None else reference
        metrics = compute_metrics(labels, preds)
        rows.append({"precision": precision, "split": args.split, "model": str(run_dir), "n": metrics["n"],
                     "weighted_f1": metrics["weighted_f1"], "macro_f1": metrics["macro_f1"],
                     "accuracy": metrics["accuracy"],
                     "labels_differing_from_reference": int((preds != reference).sum()),
                     "encode_s": round(seconds, 1), "device": device if device != "cpu" else
                     f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
                     "date": time.strftime("%Y-%m-%d")})
    print(f"{'precision':<10}{'weighted F1':>12}{'macro F1':>10}{'accuracy':>10}{'labels changed':>16}{'encode s':>10}")
    for r in rows:
        print(f"{r['precision']:<10}{r['weighted_f1']:>12.4f}{r['macro_f1']:>10.4f}{r['accuracy']:>10.4f}"
              f"{r['labels_differing_from_reference']:>11d} / {r['n']:<4d}{r['encode_s']:>8.1f}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
